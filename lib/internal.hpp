// Helpers shared by the library's implementation files (not installed).
#pragma once

#include <exception>
#include <new>

#include "asyncuv/exceptions.hpp"

// Thread-locals of the library read on hot paths: the initial-exec model avoids a call to
// __tls_get_addr on each access from the shared library.
#if defined(__GNUC__) && !defined(_WIN32)
#define ASYNCUV_FAST_TLS __attribute__((tls_model("initial-exec")))
#else
#define ASYNCUV_FAST_TLS
#endif

namespace asyncuv::detail {

/// True for exceptions that must not go to an exception handler: FatalError (SystemExit,
/// KeyboardInterrupt, user types) and std::bad_alloc.
inline bool is_fatal(const std::exception_ptr& e) noexcept {
  try {
    std::rethrow_exception(e);
  } catch (const FatalError&) {
    return true;
  } catch (const std::bad_alloc&) {
    return true;
  } catch (...) {
    return false;
  }
}

}  // namespace asyncuv::detail
