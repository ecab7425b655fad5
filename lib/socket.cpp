// asyncuv::Socket: creation, adoption and the plain (synchronous) socket calls.
#include "asyncuv/socket.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <utility>

#include "asyncuv/exceptions.hpp"

namespace asyncuv {

namespace {

int socket_option(int fd, int level, int name) {
  int value = 0;
  socklen_t len = sizeof value;
  if (::getsockopt(fd, level, name, &value, &len) != 0) throw_os_error(errno);
  return value;
}

void set_nonblocking(int fd, bool nonblocking) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) throw_os_error(errno);
  int wanted = nonblocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (wanted != flags && ::fcntl(fd, F_SETFL, wanted) != 0) throw_os_error(errno);
}

}  // namespace

Socket::Socket(int family, int type, int proto) {
  int fd = ::socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, proto);
  if (fd < 0) throw_os_error(errno);
  fd_ = fd;
  family_ = family;
  type_ = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  // The kernel picks the protocol when 0 was given (IPPROTO_TCP for an AF_INET stream).
  int actual = 0;
  socklen_t len = sizeof actual;
  proto_ = ::getsockopt(fd, SOL_SOCKET, SO_PROTOCOL, &actual, &len) == 0 ? actual : proto;
}

Socket::Socket(Socket&& other) noexcept
    : fd_(std::exchange(other.fd_, -1)),
      family_(other.family_),
      type_(other.type_),
      proto_(other.proto_) {}

Socket& Socket::operator=(Socket&& other) noexcept {
  if (this != &other) {
    close();
    fd_ = std::exchange(other.fd_, -1);
    family_ = other.family_;
    type_ = other.type_;
    proto_ = other.proto_;
  }
  return *this;
}

Socket::~Socket() {
  close();
}

Socket Socket::adopt(int fd) {
  if (fd < 0) throw ValueError("negative file descriptor");
  int family = socket_option(fd, SOL_SOCKET, SO_DOMAIN);
  int type = socket_option(fd, SOL_SOCKET, SO_TYPE);
  int proto = socket_option(fd, SOL_SOCKET, SO_PROTOCOL);
  set_nonblocking(fd, true);
  return Socket(fd, family, type, proto);
}

std::pair<Socket, Socket> Socket::socketpair(int family, int type) {
  int fds[2];
  if (::socketpair(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    throw_os_error(errno);
  }
  int plain_type = type & ~(SOCK_NONBLOCK | SOCK_CLOEXEC);
  return {Socket(fds[0], family, plain_type, 0), Socket(fds[1], family, plain_type, 0)};
}

int Socket::detach() noexcept {
  return std::exchange(fd_, -1);
}

void Socket::close() noexcept {
  int fd = std::exchange(fd_, -1);
  // Linux releases the descriptor even when close(2) reports an error (EINTR included), so a
  // retry could close a descriptor another thread has just been given.
  if (fd >= 0) (void)::close(fd);
}

void Socket::bind(const SockAddr& address) {
  if (::bind(fd_, address.get(), address.size()) != 0) throw_os_error(errno);
}

void Socket::listen(int backlog) {
  if (::listen(fd_, backlog) != 0) throw_os_error(errno);
}

SockAddr Socket::getsockname() const {
  SockAddr out;
  socklen_t len = SockAddr::capacity();
  if (::getsockname(fd_, out.data(), &len) != 0) throw_os_error(errno);
  out.set_size(len);
  return out;
}

SockAddr Socket::getpeername() const {
  SockAddr out;
  socklen_t len = SockAddr::capacity();
  if (::getpeername(fd_, out.data(), &len) != 0) throw_os_error(errno);
  out.set_size(len);
  return out;
}

void Socket::setsockopt(int level, int name, int value) {
  if (::setsockopt(fd_, level, name, &value, sizeof value) != 0) throw_os_error(errno);
}

int Socket::getsockopt(int level, int name) const {
  return socket_option(fd_, level, name);
}

void Socket::shutdown(int how) {
  if (::shutdown(fd_, how) != 0) throw_os_error(errno);
}

void Socket::setblocking(bool blocking) {
  set_nonblocking(fd_, !blocking);
}

bool Socket::getblocking() const {
  int flags = ::fcntl(fd_, F_GETFL);
  if (flags < 0) throw_os_error(errno);
  return (flags & O_NONBLOCK) == 0;
}

}  // namespace asyncuv
