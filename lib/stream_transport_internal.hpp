// Helpers shared by the stream transport's implementation files (not installed).
#pragma once

#include <exception>
#include <optional>
#include <string>

#include "asyncuv/events.hpp"

namespace asyncuv {
class BaseProtocol;
}

namespace asyncuv::detail {

/// The OSError subclass for a libuv error code (UV_ECONNRESET: ConnectionResetError, ...).
std::exception_ptr uv_exception(int uv_code);

/// True if `e` is an OSError (of any subclass).
bool is_os_error(const std::exception_ptr& e) noexcept;

/// Python-like text for a protocol: "<MyProtocol object at 0x...>".
std::string protocol_repr(const BaseProtocol* protocol);

/// Makes `loop` the running loop while a libuv callback calls a protocol, when no
/// run_forever() did (a host program driving the uv loop itself).
class CallbackScope {
 public:
  explicit CallbackScope(EventLoop& loop);

 private:
  std::optional<RunningLoopScope> scope_;
};

}  // namespace asyncuv::detail
