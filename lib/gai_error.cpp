// GaiError (socket.gaierror) and the mapping of libuv's UV_EAI_* codes back to EAI_*.
#include <uv.h>

#include "asyncuv/dns.hpp"

namespace asyncuv {

GaiError::GaiError(int eai_code) : GaiError(eai_code, ::gai_strerror(eai_code)) {}

GaiError::GaiError(int eai_code, const std::string& message) : OSError(eai_code, message) {}

int uv_status_to_eai(int uv_status) noexcept {
  switch (uv_status) {
#define ASYNCUV_EAI(name) \
  case UV_##name:         \
    return name;
#ifdef EAI_ADDRFAMILY
    ASYNCUV_EAI(EAI_ADDRFAMILY)
#endif
    ASYNCUV_EAI(EAI_AGAIN)
    ASYNCUV_EAI(EAI_BADFLAGS)
#ifdef EAI_CANCELED
    ASYNCUV_EAI(EAI_CANCELED)
#endif
    ASYNCUV_EAI(EAI_FAIL)
    ASYNCUV_EAI(EAI_FAMILY)
    ASYNCUV_EAI(EAI_MEMORY)
#ifdef EAI_NODATA
    ASYNCUV_EAI(EAI_NODATA)
#endif
    ASYNCUV_EAI(EAI_NONAME)
#ifdef EAI_OVERFLOW
    ASYNCUV_EAI(EAI_OVERFLOW)
#endif
#ifdef EAI_PROTOCOL
    ASYNCUV_EAI(EAI_PROTOCOL)
#endif
    ASYNCUV_EAI(EAI_SERVICE)
    ASYNCUV_EAI(EAI_SOCKTYPE)
#ifdef EAI_BADHINTS
    ASYNCUV_EAI(EAI_BADHINTS)
#endif
#undef ASYNCUV_EAI
    default:
      return uv_status;
  }
}

namespace {
/// True for libuv's UV_EAI_* range (libuv keeps them apart from the negated errno values).
bool is_uv_eai(int uv_status) noexcept {
  switch (uv_status) {
    case UV_EAI_ADDRFAMILY:
    case UV_EAI_AGAIN:
    case UV_EAI_BADFLAGS:
    case UV_EAI_BADHINTS:
    case UV_EAI_CANCELED:
    case UV_EAI_FAIL:
    case UV_EAI_FAMILY:
    case UV_EAI_MEMORY:
    case UV_EAI_NODATA:
    case UV_EAI_NONAME:
    case UV_EAI_OVERFLOW:
    case UV_EAI_PROTOCOL:
    case UV_EAI_SERVICE:
    case UV_EAI_SOCKTYPE:
      return true;
    default:
      return false;
  }
}
}  // namespace

std::exception_ptr make_gai_error(int uv_status) {
  if (!is_uv_eai(uv_status)) return make_os_error(uv_code_to_errno(uv_status));
  int eai = uv_status_to_eai(uv_status);
  // A code the platform's getaddrinfo does not have keeps libuv's code and message.
  if (eai == uv_status) return std::make_exception_ptr(GaiError(eai, uv_strerror(uv_status)));
  return std::make_exception_ptr(GaiError(eai));
}

}  // namespace asyncuv
