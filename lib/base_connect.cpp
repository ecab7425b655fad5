// create_connection's core (asyncio base_events.create_connection and _connect_sock): argument
// checks, resolution, binding to local_addr, the attempts (in order or staggered) and the
// error that sums up failed attempts.
#include <sys/socket.h>

#include <cctype>
#include <exception>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "asyncuv/detail/connect.hpp"
#include "asyncuv/detail/ssl_protocol.hpp"
#include "asyncuv/detail/staggered_race.hpp"
#include "asyncuv/detail/stream_transport.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/futures.hpp"
#include "asyncuv/log.hpp"
#include "asyncuv/sock_ops.hpp"
#include "asyncuv/taskgroups.hpp"
#include "stream_transport_internal.hpp"

#include <spdlog/spdlog.h>

namespace asyncuv::detail {

namespace {

/// The errors of each attempt, by attempt index (asyncio's list of per-attempt lists).
using ErrorLists = std::vector<std::vector<std::exception_ptr>>;

/// The address as Python prints the tuple: ('127.0.0.1', 80) or ('::1', 80, 0, 0).
std::string address_repr(const SockAddr& a) {
  if (a.family() == AF_INET6) {
    return "('" + a.host() + "', " + std::to_string(a.port()) + ", " +
           std::to_string(a.flowinfo()) + ", " + std::to_string(a.scope_id()) + ")";
  }
  if (a.family() == AF_INET) return "('" + a.host() + "', " + std::to_string(a.port()) + ")";
  return "'" + a.host() + "'";
}

/// Python's repr of a socket.AddressFamily: "<AddressFamily.AF_INET6: 10>".
std::string family_repr(int family) {
  const char* name = family == AF_INET    ? "AF_INET"
                     : family == AF_INET6 ? "AF_INET6"
                     : family == AF_UNIX  ? "AF_UNIX"
                                          : nullptr;
  if (name == nullptr) return std::to_string(family);
  return std::string("<AddressFamily.") + name + ": " + std::to_string(family) + ">";
}

std::string lowercase(std::string s) {
  for (char& c : s)
    c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// An exception of the same OSError subclass as `e`, with `message` as its text (Python's
/// OSError(errno, message), which picks the subclass by errno).
template <class... Subclasses>
std::exception_ptr reworded(const OSError& e, const std::string& message) {
  std::exception_ptr out;
  auto try_one = [&](auto* tag) {
    using E = std::remove_pointer_t<decltype(tag)>;
    if (!out && dynamic_cast<const E*>(&e) != nullptr) {
      out = std::make_exception_ptr(E(e.errnum(), message));
    }
  };
  (try_one(static_cast<Subclasses*>(nullptr)), ...);
  return out ? out : std::make_exception_ptr(OSError(e.errnum(), message));
}

std::exception_ptr bind_error(const OSError& e, const SockAddr& address) {
  std::string message = "error while attempting to bind on address " + address_repr(address) +
                        ": " + lowercase(e.strerror());
  // Most derived first.
  return reworded<BrokenPipeError, ConnectionAbortedError, ConnectionRefusedError,
                  ConnectionResetError, ConnectionError, BlockingIOError, ChildProcessError,
                  FileExistsError, FileNotFoundError, InterruptedError, IsADirectoryError,
                  NotADirectoryError, PermissionError, ProcessLookupError, TimeoutError>(e,
                                                                                         message);
}

/// Binds `sock` to the first local address of its family that works (asyncio _connect_sock).
/// Bind failures are added to `errors`; if none works, throws the last of them (taking it off
/// `errors`: the caller records what it catches) or OSError("no matching local address ...").
void bind_local(Socket& sock, int family, const std::vector<AddrInfo>& local,
                std::vector<std::exception_ptr>& errors) {
  for (const AddrInfo& l : local) {
    if (l.family != family) continue;  // only local addresses of the remote one's family
    try {
      sock.bind(l.address);
      return;
    } catch (const OSError& e) {
      errors.push_back(bind_error(e, l.address));
    }
  }
  if (!errors.empty()) {
    std::exception_ptr last = errors.back();
    errors.pop_back();
    std::rethrow_exception(last);
  }
  throw OSError("no matching local address with family=" + family_repr(family) + " found");
}

/// One attempt (asyncio _connect_sock): creates, binds and connects one socket. Its OSErrors
/// are recorded in (*errors)[index]; on any failure (or cancellation) the socket is closed.
Task<Socket> connect_one(EventLoop* loop, AddrInfo info,
                         std::shared_ptr<const std::vector<AddrInfo>> local,
                         std::shared_ptr<ErrorLists> errors, std::size_t index) {
  std::vector<std::exception_ptr>& mine = (*errors)[index];
  try {
    Socket sock(info.family, info.type, info.proto);
    if (local) bind_local(sock, info.family, *local, mine);
    co_await loop->sock_connect(sock, info.address);
    co_return std::move(sock);
  } catch (const OSError&) {
    mine.push_back(std::current_exception());
    throw;
  }
}

std::string what_of(const std::exception_ptr& e) {
  try {
    std::rethrow_exception(e);
  } catch (const std::exception& ex) {
    return ex.what();
  } catch (...) {
    return "unknown exception";
  }
}

/// Every attempt failed: throws what asyncio's create_connection raises then.
[[noreturn]] void raise_connect_errors(const ErrorLists& lists, bool all_errors) {
  std::vector<std::exception_ptr> errors;
  for (const auto& list : lists)
    errors.insert(errors.end(), list.begin(), list.end());
  if (all_errors && !errors.empty()) throw ExceptionGroup("create_connection failed", errors);
  if (errors.size() == 1) std::rethrow_exception(errors.front());
  if (errors.empty()) throw TimeoutError("create_connection failed");
  const std::string model = what_of(errors.front());
  bool all_same = true;
  std::string joined;
  for (const std::exception_ptr& e : errors) {
    std::string text = what_of(e);
    all_same = all_same && text == model;
    if (!joined.empty()) joined += ", ";
    joined += text;
  }
  if (all_same) std::rethrow_exception(errors.front());
  throw OSError("Multiple exceptions: " + joined);
}

/// The ValueErrors asyncio raises for the TLS arguments of create_connection.
void check_tls_arguments(const ConnectionOptions& options, bool has_host) {
  if (options.server_hostname && !options.ssl) {
    throw ValueError("server_hostname is only meaningful with ssl");
  }
  if (!options.server_hostname && options.ssl && !has_host) {
    throw ValueError("You must set server_hostname when using ssl without a host");
  }
  if (options.ssl_handshake_timeout && !options.ssl) {
    throw ValueError("ssl_handshake_timeout is only meaningful with ssl");
  }
  if (options.ssl_shutdown_timeout && !options.ssl) {
    throw ValueError("ssl_shutdown_timeout is only meaningful with ssl");
  }
  if (options.ssl) check_tls_timeouts(options.ssl_handshake_timeout, options.ssl_shutdown_timeout);
}

}  // namespace

Task<Socket> connect_to_addresses(EventLoop& loop, ConnectPlan plan) {
  if (plan.remote.empty()) throw OSError("getaddrinfo() returned empty list");
  std::vector<AddrInfo> infos = plan.interleave > 0
                                    ? interleave_addrinfos(std::move(plan.remote), plan.interleave)
                                    : std::move(plan.remote);
  std::shared_ptr<const std::vector<AddrInfo>> local;
  if (plan.local) local = std::make_shared<const std::vector<AddrInfo>>(std::move(*plan.local));
  auto errors = std::make_shared<ErrorLists>(infos.size());

  if (!plan.happy_eyeballs_delay) {
    for (std::size_t i = 0; i < infos.size(); ++i) {
      try {
        Socket sock = co_await connect_one(&loop, infos[i], local, errors, i);
        co_return std::move(sock);
      } catch (const OSError&) {
        // recorded by connect_one: try the next address
      }
    }
  } else {
    std::vector<SocketAttempt> attempts;
    attempts.reserve(infos.size());
    for (std::size_t i = 0; i < infos.size(); ++i) {
      attempts.push_back([loop_ptr = &loop, info = infos[i], local, errors, i] {
        return connect_one(loop_ptr, info, local, errors, i);
      });
    }
    StaggeredOutcome outcome =
        co_await staggered_race(loop, std::move(attempts), plan.happy_eyeballs_delay);
    if (outcome.winner) co_return std::move(*outcome.winner);
  }
  raise_connect_errors(*errors, plan.all_errors);
}

Task<Socket> open_connection_socket(EventLoop& loop, std::optional<std::string> host,
                                    std::optional<std::uint16_t> port, ConnectionOptions options) {
  check_tls_arguments(options, host && !host->empty());
  int interleave = options.interleave.value_or(options.happy_eyeballs_delay ? 1 : 0);

  if (!host && !port) {
    if (!options.sock) throw ValueError("host and port was not specified and no sock specified");
    if (options.sock->type() != SOCK_STREAM) {
      throw ValueError("A Stream Socket was expected, got " + describe_socket(*options.sock));
    }
    Socket sock = std::move(*options.sock);
    sock.setblocking(false);
    co_return std::move(sock);
  }
  if (options.sock) {
    throw ValueError("host/port and sock can not be specified at the same time");
  }

  ConnectPlan plan;
  {
    // A missing host or port is getaddrinfo's None ("").
    const std::string remote_host = host.value_or(std::string());
    Future<std::vector<AddrInfo>> resolving =
        port ? loop.getaddrinfo(remote_host, static_cast<int>(*port), options.family, SOCK_STREAM,
                                options.proto, options.flags)
             : loop.getaddrinfo(remote_host, std::string_view(), options.family, SOCK_STREAM,
                                options.proto, options.flags);
    plan.remote = co_await resolving;
  }
  if (plan.remote.empty()) throw OSError("getaddrinfo() returned empty list");
  if (options.local_addr) {
    Future<std::vector<AddrInfo>> resolving =
        loop.getaddrinfo(options.local_addr->first, static_cast<int>(options.local_addr->second),
                         options.family, SOCK_STREAM, options.proto, options.flags);
    std::vector<AddrInfo> local = co_await resolving;
    if (local.empty()) throw OSError("getaddrinfo() returned empty list");
    plan.local = std::move(local);
  }
  plan.happy_eyeballs_delay = options.happy_eyeballs_delay;
  plan.interleave = interleave;
  plan.all_errors = options.all_errors;
  Socket sock = co_await connect_to_addresses(loop, std::move(plan));
  co_return std::move(sock);
}

void log_connection_made(EventLoop& loop, const std::string& host, std::uint16_t port,
                         const std::shared_ptr<Transport>& transport) {
  if (!loop.get_debug()) return;
  auto* ours = dynamic_cast<StreamTransport*>(transport.get());
  if (ours == nullptr) return;
  logger()->debug("<Socket fd={}> connected to {}:{}: ({}, {})", ours->fd(), host, port,
                  ours->repr(), protocol_repr(ours->get_protocol().get()));
}

}  // namespace asyncuv::detail
