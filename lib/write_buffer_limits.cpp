// See lib/write_buffer_limits.hpp.
#include "write_buffer_limits.hpp"

#include <string>

#include "asyncuv/exceptions.hpp"

namespace asyncuv::detail {

std::pair<std::size_t, std::size_t> write_buffer_limits(std::optional<std::size_t> high,
                                                        std::optional<std::size_t> low,
                                                        std::size_t default_high) {
  const std::size_t h = high ? *high : (low ? 4 * *low : default_high);
  const std::size_t l = low ? *low : h / 4;
  if (h < l) {
    throw ValueError("high (" + std::to_string(h) + ") must be >= low (" + std::to_string(l) +
                     ") must be >= 0");
  }
  return {h, l};
}

}  // namespace asyncuv::detail
