// asyncio's protocols: the callbacks a transport calls (asyncio/protocols.py).
#pragma once

#include <cstddef>
#include <exception>
#include <memory>
#include <span>
#include <string_view>

namespace asyncuv {

class Transport;
class DatagramTransport;
class SubprocessTransport;
class SockAddr;

/// The callbacks every protocol has. Protocols are owned through std::shared_ptr: a transport
/// holds its protocol until it has called connection_lost(), so a protocol may drop its own
/// reference to the transport (or the user every reference to both) at any time.
///
/// Exceptions thrown by these callbacks never escape into libuv: they go to the loop's
/// exception handler with "transport" and "protocol" in the context, and the transport is
/// closed (as asyncio does for data_received / eof_received failures).
class BaseProtocol {
 public:
  virtual ~BaseProtocol() = default;

  /// The connection is closed. `exc` is null for a regular EOF, close() or abort(), otherwise
  /// the error that ended it (e.g. ConnectionResetError). Called once, last.
  virtual void connection_lost(std::exception_ptr exc) { (void)exc; }

  /// The transport's write buffer went over the high-water mark. Called once per crossing.
  virtual void pause_writing() {}

  /// The transport's write buffer drained to the low-water mark or below.
  virtual void resume_writing() {}
};

/// A stream protocol receiving data as it arrives (asyncio.Protocol).
class Protocol : public BaseProtocol {
 public:
  /// The connection is made; `transport` is the connection. Called once, first.
  virtual void connection_made(std::shared_ptr<Transport> transport) { (void)transport; }

  /// Some data arrived. `data` is only valid during the call (copy what you keep).
  virtual void data_received(std::string_view data) { (void)data; }

  /// The peer sent EOF (shut down its writing side). Return false (the default) to let the
  /// transport close itself; true to keep the connection half-open (you close it later).
  virtual bool eof_received() { return false; }
};

/// A stream protocol that receives into its own buffers (asyncio.BufferedProtocol): the
/// transport asks for a buffer, reads straight into it, then reports how much it filled.
class BufferedProtocol : public BaseProtocol {
 public:
  /// The connection is made; `transport` is the connection. Called once, first.
  virtual void connection_made(std::shared_ptr<Transport> transport) { (void)transport; }

  /// Returns the buffer to read into (non-empty; `sizehint` is a hint, -1 meaning any size).
  /// It must stay valid until buffer_updated() or connection_lost() is called.
  virtual std::span<std::byte> get_buffer(std::ptrdiff_t sizehint) = 0;

  /// `nbytes` bytes were written at the start of the last buffer get_buffer() returned.
  virtual void buffer_updated(std::size_t nbytes) = 0;

  /// As Protocol::eof_received().
  virtual bool eof_received() { return false; }
};

/// A datagram (UDP, Unix datagram) protocol (asyncio.DatagramProtocol).
class DatagramProtocol : public BaseProtocol {
 public:
  /// The endpoint is ready; `transport` is it. Called once, first.
  virtual void connection_made(std::shared_ptr<DatagramTransport> transport) {
    (void)transport;
  }

  /// A datagram (possibly empty) arrived from `addr`. `data` is only valid during the call.
  virtual void datagram_received(std::string_view data, const SockAddr& addr) {
    (void)data;
    (void)addr;
  }

  /// A send or receive failed with `exc` (an OSError, e.g. ConnectionRefusedError after an
  /// ICMP port-unreachable on a connected endpoint). The transport stays open.
  virtual void error_received(std::exception_ptr exc) { (void)exc; }
};

/// The callbacks of a child process and its pipes (asyncio.SubprocessProtocol).
class SubprocessProtocol : public BaseProtocol {
 public:
  /// The child is started; `transport` controls it. Called once, first.
  virtual void connection_made(std::shared_ptr<SubprocessTransport> transport) {
    (void)transport;
  }

  /// The child wrote `data` to its stdout (fd 1) or stderr (fd 2).
  virtual void pipe_data_received(int fd, std::string_view data) {
    (void)fd;
    (void)data;
  }

  /// The pipe to the child's fd `fd` was closed; `exc` is null for a regular close.
  virtual void pipe_connection_lost(int fd, std::exception_ptr exc) {
    (void)fd;
    (void)exc;
  }

  /// The child exited (its return code is the transport's get_returncode()).
  virtual void process_exited() {}
};

}  // namespace asyncuv
