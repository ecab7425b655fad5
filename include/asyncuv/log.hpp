// The library's logger: an spdlog logger named "asyncuv".
#pragma once

#include <memory>

namespace spdlog {
class logger;
}

namespace asyncuv {

/// The "asyncuv" spdlog logger. If the program registered a logger under that name before,
/// that one is used; otherwise one writing to stderr is created on first use.
std::shared_ptr<spdlog::logger> logger();

}  // namespace asyncuv
