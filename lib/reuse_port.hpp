// asyncio's _set_reuseport, shared by create_server and create_datagram_endpoint.
#pragma once

namespace asyncuv {
class Socket;
}

namespace asyncuv::detail {

/// Sets SO_REUSEPORT on `sock`. A kernel that refuses it gives asyncio's
/// ValueError("reuse_port not supported by socket module, SO_REUSEPORT defined but not
/// implemented.").
void set_reuseport(Socket& sock);

}  // namespace asyncuv::detail
