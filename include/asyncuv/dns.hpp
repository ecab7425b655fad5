// Name resolution: what loop.getaddrinfo() and loop.getnameinfo() deliver, and
// socket.gaierror. The EventLoop members themselves are declared in event_loop.hpp under
// "name resolution" and defined in lib/dns.cpp; include this header to call them.
//
// Semantics (asyncio's loop.getaddrinfo / loop.getnameinfo, run over libuv's thread pool):
//  - The returned Future completes on the loop's thread with the complete list, in the order
//    the system's getaddrinfo returned it.
//  - A numeric IPv4/IPv6 host with a numeric (or no) port and SOCK_STREAM/SOCK_DGRAM (or 0)
//    is answered without a thread: the Future is already done when it is returned (asyncio's
//    _ipaddr_info shortcut). Type 0 then gives one SOCK_STREAM and one SOCK_DGRAM entry.
//  - Resolver failures complete the Future with GaiError (asyncio's socket.gaierror); bad
//    arguments throw ValueError/TypeError at once; a closed loop throws
//    RuntimeError("Event loop is closed").
//  - Cancelling the Future cancels the libuv request if no worker thread has picked it up
//    yet; a resolution already running finishes in the background and its result is dropped.
//  - close() cancels the requests no worker has started and, for a loop that owns its
//    uv_loop_t, waits (at most 10 seconds) for those already running, so the uv_loop_t can be
//    closed and freed. On an adopted host loop, close() does not wait: the host's next
//    uv_run iterations finish the requests (their Futures stay pending, as asyncio's do).
#pragma once

#include <netdb.h>  // AI_*, NI_*, EAI_* constants for the flags and error codes

#include <string>
#include <vector>

#include "asyncuv/event_loop.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/sockaddr.hpp"

namespace asyncuv {

/// One getaddrinfo result: asyncio's (family, type, proto, canonname, sockaddr) tuple.
struct AddrInfo {
  /// AF_INET or AF_INET6 (or another family the system returns).
  int family = 0;
  /// SOCK_STREAM, SOCK_DGRAM, SOCK_RAW, ...
  int type = 0;
  /// IPPROTO_TCP, IPPROTO_UDP, or 0.
  int proto = 0;
  /// The canonical name when AI_CANONNAME was asked for (first entry only), else "".
  std::string canonname;
  /// The address, with the port filled in.
  SockAddr address;

  friend bool operator==(const AddrInfo&, const AddrInfo&) = default;
};

/// A getnameinfo result: asyncio's (host, service) pair.
struct NameInfo {
  std::string host;
  std::string service;

  friend bool operator==(const NameInfo&, const NameInfo&) = default;
};

/// asyncio's socket.gaierror: a resolver failure. An OSError whose errno is the (negative)
/// EAI_* code and whose message is the system's (gai_strerror), so what() reads like Python's
/// "[Errno -2] Name or service not known". Failures the resolver reports as EAI_SYSTEM are
/// plain OSErrors carrying the errno instead, as in Python.
class GaiError : public OSError {
 public:
  /// A gaierror for `eai_code` (EAI_NONAME, ...) with the system's message for it.
  explicit GaiError(int eai_code);
  /// A gaierror with an explicit message.
  GaiError(int eai_code, const std::string& message);

  /// The EAI_* code (EAI_NONAME, EAI_AGAIN, ...), as Python's gaierror.errno.
  int errno_code() const noexcept { return errnum(); }
};

/// The exception for a libuv resolver status (UV_EAI_* or a negated errno): a GaiError with
/// the matching EAI_* code, or the OSError subclass for a system error.
std::exception_ptr make_gai_error(int uv_status);

/// The EAI_* code matching libuv's UV_EAI_* code `uv_status` (unchanged if there is none).
int uv_status_to_eai(int uv_status) noexcept;

}  // namespace asyncuv
