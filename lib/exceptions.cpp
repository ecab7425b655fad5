// OSError construction: errno to the Python exception subclass, libuv codes to errno.
#include "asyncuv/exceptions.hpp"

#include <uv.h>

#include <cerrno>
#include <cstring>

namespace asyncuv {

namespace {
std::string errno_text(int errnum, const std::string& strerror) {
  return "[Errno " + std::to_string(errnum) + "] " + strerror;
}

template <class E>
std::exception_ptr make(int errnum, const std::string& text) {
  return std::make_exception_ptr(E(errnum, text));
}
}  // namespace

OSError::OSError(int errnum, const std::string& strerror)
    : Exception(errno_text(errnum, strerror)), errno_(errnum), strerror_(strerror) {}

OSError::OSError(const std::string& message) : Exception(message), errno_(0), strerror_(message) {}

int uv_code_to_errno(int uv_code) noexcept {
#ifdef _WIN32
  // libuv's codes are its own on Windows; the POSIX names are shared, so map by name.
  switch (uv_code) {
#define ASYNCUV_MAP(name, msg) \
  case UV_##name:              \
    return name;
    UV_ERRNO_MAP(ASYNCUV_MAP)
#undef ASYNCUV_MAP
    default:
      return -uv_code;
  }
#else
  return -uv_code;  // libuv uses negated errno values on Unix
#endif
}

std::exception_ptr make_os_error(int errnum, const std::string& what) {
  return make_os_error_with_message(errnum, what.empty() ? std::string(std::strerror(errnum))
                                                         : what + ": " + std::strerror(errnum));
}

std::exception_ptr make_os_error_with_message(int errnum, const std::string& text) {
  switch (errnum) {
    case EAGAIN:
#if EWOULDBLOCK != EAGAIN
    case EWOULDBLOCK:
#endif
    case EALREADY:
    case EINPROGRESS:
      return make<BlockingIOError>(errnum, text);
    case ECHILD:
      return make<ChildProcessError>(errnum, text);
    case EPIPE:
#ifdef ESHUTDOWN
    case ESHUTDOWN:
#endif
      return make<BrokenPipeError>(errnum, text);
    case ECONNABORTED:
      return make<ConnectionAbortedError>(errnum, text);
    case ECONNREFUSED:
      return make<ConnectionRefusedError>(errnum, text);
    case ECONNRESET:
      return make<ConnectionResetError>(errnum, text);
    case EEXIST:
      return make<FileExistsError>(errnum, text);
    case ENOENT:
      return make<FileNotFoundError>(errnum, text);
    case EINTR:
      return make<InterruptedError>(errnum, text);
    case EISDIR:
      return make<IsADirectoryError>(errnum, text);
    case ENOTDIR:
      return make<NotADirectoryError>(errnum, text);
    case EACCES:
    case EPERM:
      return make<PermissionError>(errnum, text);
    case ESRCH:
      return make<ProcessLookupError>(errnum, text);
    case ETIMEDOUT:
      return make<TimeoutError>(errnum, text);
    default:
      return make<OSError>(errnum, text);
  }
}

void throw_os_error(int errnum, const std::string& what) {
  std::rethrow_exception(make_os_error(errnum, what));
}

void throw_uv_error(int uv_code, const std::string& what) {
  throw_os_error(uv_code_to_errno(uv_code), what);
}

}  // namespace asyncuv
