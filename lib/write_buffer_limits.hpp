// asyncio's add_flowcontrol_defaults, shared by every transport that buffers writes (stream,
// pipe, datagram, TLS).
#pragma once

#include <cstddef>
#include <optional>
#include <utility>

namespace asyncuv::detail {

/// The (high, low) water marks set_write_buffer_limits(high, low) means: high defaults to
/// 4 × low, or to `default_high` when neither is given; low to high / 4. Throws
/// ValueError("high (H) must be >= low (L) must be >= 0") when high < low.
std::pair<std::size_t, std::size_t> write_buffer_limits(std::optional<std::size_t> high,
                                                        std::optional<std::size_t> low,
                                                        std::size_t default_high);

}  // namespace asyncuv::detail
