// asyncuv::Server and its core: serving (the accept loop of asyncio's selector_events),
// closing, tracking the accepted connections, wait_closed() and serve_forever().
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "asyncuv/exception_context.hpp"
#include "asyncuv/exceptions.hpp"
#include "asyncuv/log.hpp"
#include "asyncuv/server.hpp"
#include "asyncuv/tasks.hpp"
#include "internal.hpp"
#include "server_core.hpp"
#include "server_internal.hpp"
#include "stream_transport_internal.hpp"

namespace asyncuv {

namespace detail {

// ---- the core -------------------------------------------------------------------------------

ServerCore::ServerCore(EventLoop& loop, std::vector<Socket> sockets, ServerSetup setup)
    : loop_(loop),
      retry_(sockets.size()),
      factory_(std::move(setup.protocol_factory)),
      backlog_(setup.backlog),
      keep_alive_(setup.keep_alive),
      cleanup_path_(std::move(setup.cleanup_path)),
      cleanup_dev_(setup.cleanup_dev),
      cleanup_ino_(setup.cleanup_ino) {
  tls_.context = std::move(setup.ssl);
  tls_.server_side = true;
  tls_.handshake_timeout = setup.ssl_handshake_timeout;
  tls_.shutdown_timeout = setup.ssl_shutdown_timeout;
  // Shared with the TransportSocket views sockets() hands out; closed by the core only.
  sockets_.reserve(sockets.size());
  for (Socket& sock : sockets)
    sockets_.push_back(std::make_shared<Socket>(std::move(sock)));
}

// Only reached once no watcher or timer refers to the core any more: the listening sockets
// still open are closed (a view kept by the user then reads fileno() -1).
ServerCore::~ServerCore() {
  close_sockets();
}

void ServerCore::close_sockets() noexcept {
  for (const std::shared_ptr<Socket>& sock : sockets_)
    sock->close();
  sockets_.clear();
}

std::vector<TransportSocket> ServerCore::socket_views() const {
  std::vector<TransportSocket> views;
  views.reserve(sockets_.size());
  for (const std::shared_ptr<Socket>& sock : sockets_)
    views.emplace_back(sock);
  return views;
}

void ServerCore::listen() {
  for (const std::shared_ptr<Socket>& sock : sockets_)
    sock->listen(backlog_);
}

void ServerCore::start_serving() {
  if (serving_ || closed_) return;
  listen();  // asyncio listens only now: until then connects are refused
  serving_ = true;
  for (std::size_t i = 0; i < sockets_.size(); ++i)
    watch(i);
}

void ServerCore::watch(std::size_t index) {
  loop_.add_reader(sockets_[index]->fileno(),
                   [self = shared_from_this(), index] { self->accept_ready(index); });
}

void ServerCore::accept_ready(std::size_t index) {
  // Called once per loop iteration in which the socket is readable; several connections may
  // be waiting, so up to `backlog` are accepted in a row (bpo-27906).
  const int rounds = std::max(backlog_, 1);
  for (int i = 0; i < rounds; ++i) {
    // A protocol factory may have closed the server meanwhile.
    if (!serving_ || index >= sockets_.size()) return;
    const int fd =
        ::accept4(sockets_[index]->fileno(), nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      const int err = errno;
      switch (err) {
        case EAGAIN:
#if EWOULDBLOCK != EAGAIN
        case EWOULDBLOCK:
#endif
        case EINTR:
        case ECONNABORTED:
          return;  // nothing more is pending (or the peer gave up): wait for the next round
        case EMFILE:
        case ENFILE:
        case ENOBUFS:
        case ENOMEM:
          pause_accepting(index, err);
          return;
        default:
          // As asyncio: the loop reports the callback's exception; the reader stays.
          throw_os_error(err);
      }
    }
    connection_accepted(fd);
  }
}

void ServerCore::accept_tls(Socket conn, const std::shared_ptr<BaseProtocol>& protocol) {
  Future<void> waiter = loop_.create_future<void>();
  (void)make_ssl_connection(loop_, std::move(conn), protocol, tls_, waiter, shared_from_this());
  // asyncio's _accept_connection2: a failed handshake is the client's business; it reaches
  // the exception handler in debug mode only.
  waiter.add_done_callback([protocol](Future<void> done) {
    if (done.cancelled()) return;
    std::exception_ptr e = done.exception();
    EventLoop& loop = done.get_loop();
    if (!e || !loop.get_debug()) return;
    ExceptionContext context("Error on transport creation for incoming connection", e);
    context.set("protocol", protocol, protocol_repr(protocol.get()));
    loop.call_exception_handler(context);
  });
}

void ServerCore::connection_accepted(int fd) {
  std::optional<Socket> conn;
  std::shared_ptr<BaseProtocol> protocol;
  try {
    try {
      conn.emplace(Socket::adopt(fd));
    } catch (...) {
      ::close(fd);  // adopt() leaves the descriptor to the caller when it throws
      throw;
    }
    if (loop_.get_debug()) {
      std::string peer;
      try {
        peer = conn->getpeername().to_string();
      } catch (const OSError&) {
        peer = "?";
      }
      logger()->debug("{} got a new connection from {}: <Socket fd={}>", repr(), peer, fd);
    }
    if (keep_alive_) conn->setsockopt(SOL_SOCKET, SO_KEEPALIVE, 1);
    protocol = factory_();
    if (tls_.context) {
      accept_tls(std::move(*conn), protocol);
    } else {
      (void)make_socket_transport(loop_, std::move(*conn), protocol, shared_from_this(), {});
    }
  } catch (...) {
    std::exception_ptr e = std::current_exception();
    conn.reset();  // closes the accepted socket unless the transport took it
    if (is_fatal(e)) std::rethrow_exception(e);
    ExceptionContext context("Error on transport creation for incoming connection", e);
    if (protocol) context.set("protocol", protocol, protocol_repr(protocol.get()));
    loop_.call_exception_handler(context);
  }
}

void ServerCore::pause_accepting(std::size_t index, int err) {
  // Linux keeps reporting the socket as readable: stop watching it for a while instead of
  // spinning (asyncio), rather than dropping pending connections (libuv's uv_listen).
  const Socket& sock = *sockets_[index];
  const int fd = sock.fileno();
  std::string description = describe_listening_socket(sock);
  loop_.remove_reader(fd);
  retry_[index] = loop_.call_later(
      accept_retry_delay, [self = shared_from_this(), index] { self->resume_accepting(index); });
  ExceptionContext context("socket.accept() out of system resource", make_os_error(err));
  context.set("socket", fd, std::move(description));
  loop_.call_exception_handler(context);
}

void ServerCore::resume_accepting(std::size_t index) {
  if (serving_ && index < sockets_.size()) watch(index);
}

void ServerCore::close() {
  if (closed_) return;
  // Removing the watchers may drop every other reference to the core.
  std::shared_ptr<ServerCore> keep = shared_from_this();
  closed_ = true;
  serving_ = false;
  for (TimerHandle& retry : retry_)
    retry.cancel();
  if (!loop_.is_closed()) {
    for (const std::shared_ptr<Socket>& sock : sockets_)
      (void)loop_.remove_reader(sock->fileno());
  }
  close_sockets();  // new connects are refused
  cleanup_socket_file();
  if (serving_forever_ && !serving_forever_.done()) serving_forever_.cancel();
  serving_forever_ = Future<void>();
  if (clients_.empty()) wakeup();
}

void ServerCore::loop_closed() noexcept {
  if (closed_) return;
  closed_ = true;
  serving_ = false;
  // The loop's fd watchers and timers are dropped by the loop itself; nothing may be
  // scheduled any more. Waiters stay pending, as everything else on a closed loop.
  for (TimerHandle& retry : retry_)
    retry.cancel();
  close_sockets();
  cleanup_socket_file();
  serving_forever_ = Future<void>();
}

void ServerCore::cleanup_socket_file() noexcept {
  if (cleanup_path_.empty()) return;
  std::string path = std::move(cleanup_path_);
  cleanup_path_.clear();
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (static_cast<unsigned long long>(st.st_dev) != cleanup_dev_ ||
        static_cast<unsigned long long>(st.st_ino) != cleanup_ino_) {
      return;  // another file took the name since: not ours to remove
    }
    if (::unlink(path.c_str()) == 0 || errno == ENOENT) return;
  } else if (errno == ENOENT) {
    return;
  }
  try {
    logger()->error("Unable to clean up listening UNIX socket {}: {}", py_str_repr(path),
                    describe_exception(make_os_error(errno)));
  } catch (...) {
    // Logging failed (out of memory): nothing else to do.
  }
}

void ServerCore::close_clients(bool abort) {
  std::vector<std::shared_ptr<Transport>> clients;
  clients.reserve(clients_.size());
  for (const auto& entry : clients_)
    clients.push_back(entry.second);
  for (const auto& transport : clients) {
    if (abort) {
      transport->abort();
    } else {
      transport->close();
    }
  }
}

Future<void> ServerCore::begin_serve_forever() {
  if (serving_forever_) {
    throw RuntimeError("server " + repr() + " is already being awaited on serve_forever()");
  }
  if (closed_) throw RuntimeError("server " + repr() + " is closed");
  start_serving();
  serving_forever_ = loop_.create_future<void>();
  return serving_forever_;
}

Future<void> ServerCore::closed_waiter() {
  if (woken_) return Future<void>();
  Future<void> waiter = loop_.create_future<void>();
  waiters_.push_back(waiter);
  return waiter;
}

void ServerCore::wakeup() {
  if (woken_) return;
  woken_ = true;
  std::vector<Future<void>> waiters = std::move(waiters_);
  waiters_.clear();
  for (const Future<void>& waiter : waiters) {
    if (!waiter.done()) waiter.set_result();
  }
}

void ServerCore::attach(std::shared_ptr<Transport> transport) {
  Transport* key = transport.get();
  clients_.emplace(key, std::move(transport));
}

void ServerCore::detach(Transport* transport) {
  // Moved out first: dropping the last reference must not run inside the map's erase.
  auto it = clients_.find(transport);
  if (it == clients_.end()) return;
  std::shared_ptr<Transport> gone = std::move(it->second);
  clients_.erase(it);
  // During loop.close() nothing may be scheduled: the waiters stay pending.
  if (clients_.empty() && closed_ && !loop_.is_closed()) wakeup();
}

std::string ServerCore::repr() const {
  std::string text = "<Server sockets=(";
  for (std::size_t i = 0; i < sockets_.size(); ++i) {
    if (i > 0) text += ", ";
    text += describe_listening_socket(*sockets_[i]);
  }
  if (sockets_.size() == 1) text += ",";  // a Python 1-tuple
  return text + ")>";
}

// ---- the loop's open servers ------------------------------------------------------------

void OpenServers::add(const std::shared_ptr<ServerCore>& server) {
  if (servers_.size() >= prune_at_) {
    std::erase_if(servers_, [](const std::weak_ptr<ServerCore>& s) { return s.expired(); });
    prune_at_ = std::max<std::size_t>(16, servers_.size() * 2);
  }
  servers_.push_back(server);
}

void OpenServers::close() noexcept {
  std::vector<std::weak_ptr<ServerCore>> servers = std::move(servers_);
  servers_.clear();
  for (const auto& weak : servers) {
    if (std::shared_ptr<ServerCore> server = weak.lock()) server->loop_closed();
  }
}

std::shared_ptr<Server> make_server(EventLoop& loop, std::vector<Socket> sockets,
                                    ServerSetup setup) {
  OpenServers& open = loop.service<OpenServers>();  // RuntimeError on a closed loop
  const bool start = setup.start_serving;
  auto core = std::make_shared<ServerCore>(loop, std::move(sockets), std::move(setup));
  open.add(core);
  if (start) core->start_serving();
  return std::make_shared<Server>(std::move(core));
}

}  // namespace detail

// ---- Server -----------------------------------------------------------------------------------

namespace {

Task<void> start_serving_task(std::shared_ptr<detail::ServerCore> core) {
  core->start_serving();
  co_await sleep(0);  // as asyncio: one iteration, so that the watchers are in place
}

Task<void> wait_closed_task(std::shared_ptr<detail::ServerCore> core) {
  Future<void> waiter = core->closed_waiter();
  if (!waiter) co_return;
  co_await waiter;
}

Task<void> serve_forever_task(std::shared_ptr<detail::ServerCore> core) {
  Future<void> forever = core->begin_serve_forever();
  std::exception_ptr cancelled;
  try {
    co_await forever;
  } catch (const CancelledError&) {
    cancelled = std::current_exception();
  } catch (...) {
    core->end_serve_forever();
    throw;
  }
  if (!cancelled) {  // the future is only ever cancelled; kept for completeness
    core->end_serve_forever();
    co_return;
  }
  // Cancelled (the task, or close()): the server closes, the cancellation goes on once every
  // connection is gone.
  std::exception_ptr failure = cancelled;
  try {
    core->close();
    co_await wait_closed_task(core);
  } catch (...) {
    failure = std::current_exception();
  }
  core->end_serve_forever();
  std::rethrow_exception(failure);
}

}  // namespace

Server::Server(std::shared_ptr<detail::ServerCore> core) : core_(std::move(core)) {}

Server::~Server() = default;

EventLoop& Server::get_loop() const {
  return core_->loop();
}

bool Server::is_serving() const {
  return core_->is_serving();
}

std::vector<TransportSocket> Server::sockets() const {
  return core_->socket_views();
}

void Server::close() {
  core_->close();
}

void Server::close_clients() {
  core_->close_clients(false);
}

void Server::abort_clients() {
  core_->close_clients(true);
}

Task<void> Server::start_serving() {
  return start_serving_task(core_);
}

Task<void> Server::serve_forever() {
  return serve_forever_task(core_);
}

Task<void> Server::wait_closed() {
  return wait_closed_task(core_);
}

std::string Server::repr() const {
  return core_->repr();
}

}  // namespace asyncuv
