// See lib/reuse_port.hpp.
#include "reuse_port.hpp"

#include <sys/socket.h>

#include "asyncuv/exceptions.hpp"
#include "asyncuv/socket.hpp"

namespace asyncuv::detail {

void set_reuseport(Socket& sock) {
  try {
    sock.setsockopt(SOL_SOCKET, SO_REUSEPORT, 1);
  } catch (const OSError&) {
    // asyncio's exact text, for the kernel's refusal (not an unfinished feature).
    throw ValueError(
        "reuse_port not supported by socket module, SO_REUSEPORT defined but not implemented.");
  }
}

}  // namespace asyncuv::detail
