// asyncio's transport interfaces (asyncio/transports.py): what a protocol calls to act on its
// connection. The implementations (TCP, Unix sockets, pipes, TLS) live elsewhere.
#pragma once

#include <any>
#include <cstddef>
#include <initializer_list>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "asyncuv/sockaddr.hpp"

namespace asyncuv {

class BaseProtocol;
class EventLoop;

/// What every transport offers. Transports are handed out as std::shared_ptr; an open
/// transport also keeps itself alive (until its protocol's connection_lost() has been called),
/// so dropping every user reference never cuts a connection short or loses buffered data.
class BaseTransport {
 public:
  virtual ~BaseTransport() = default;

  /// Closes the transport: buffered data is still sent (asynchronously), then the protocol's
  /// connection_lost(nullptr) is called. Idempotent.
  virtual void close() = 0;

  /// True once close() or abort() was called, or the connection was lost.
  virtual bool is_closing() const = 0;

  /// Optional information about the transport (asyncio's get_extra_info): "peername" and
  /// "sockname" (SockAddr), "socket" (the fd, int), and for TLS "ssl_object", "peercert",
  /// "cipher", "compression", "sslcontext". Returns `default_value` for unknown names.
  std::any get_extra_info(std::string_view name, std::any default_value = {}) const {
    std::any value = extra_info(name);
    return value.has_value() ? value : default_value;
  }
  /// get_extra_info as a typed value: get_extra_info<SockAddr>("peername"). Empty when the
  /// name is unknown or holds another type.
  template <class T>
  std::optional<T> get_extra_info(std::string_view name) const {
    std::any value = extra_info(name);
    if (const T* typed = std::any_cast<T>(&value)) return *typed;
    return std::nullopt;
  }

  /// The protocol the transport calls, and replacing it (asyncio set_protocol/get_protocol).
  virtual void set_protocol(std::shared_ptr<BaseProtocol> protocol) = 0;
  virtual std::shared_ptr<BaseProtocol> get_protocol() const = 0;

  /// The loop the transport belongs to.
  virtual EventLoop& get_loop() const = 0;

 protected:
  /// One extra-info item by name; an empty std::any when unknown.
  virtual std::any extra_info(std::string_view name) const = 0;
};

/// The reading half (asyncio.ReadTransport).
class ReadTransport : public virtual BaseTransport {
 public:
  /// True unless reading is paused (or the transport is closing).
  virtual bool is_reading() const = 0;
  /// Stops calling data_received() until resume_reading(). Idempotent.
  virtual void pause_reading() = 0;
  /// Resumes delivery. Idempotent.
  virtual void resume_reading() = 0;
};

/// The writing half (asyncio.WriteTransport), with asyncio's write flow control.
class WriteTransport : public virtual BaseTransport {
 public:
  /// Default write-buffer limits: 16 KiB low, 64 KiB high, as asyncio.
  static constexpr std::size_t default_high_water = 64 * 1024;

  /// Sets the high- and low-water marks. Only high: low = high / 4. Only low: high = 4 * low.
  /// Neither: asyncio's defaults. ValueError if high < low.
  virtual void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                                       std::optional<std::size_t> low = std::nullopt) = 0;
  /// (low, high), as asyncio returns them.
  virtual std::pair<std::size_t, std::size_t> get_write_buffer_limits() const = 0;
  /// Bytes written but not yet handed to the OS.
  virtual std::size_t get_write_buffer_size() const = 0;

  /// Sends `data`; what cannot be sent at once is copied into the write buffer. Never blocks.
  virtual void write(std::string_view data) = 0;
  /// write() of bytes.
  void write(std::span<const std::byte> data) {
    write(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()));
  }
  /// Writes each piece, in order, as one write.
  virtual void writelines(std::span<const std::string_view> pieces) {
    std::size_t total = 0;
    for (std::string_view piece : pieces)
      total += piece.size();
    std::string joined;
    joined.reserve(total);
    for (std::string_view piece : pieces)
      joined.append(piece);
    write(std::string_view(joined));
  }
  void writelines(std::initializer_list<std::string_view> pieces) {
    writelines(std::span<const std::string_view>(pieces.begin(), pieces.size()));
  }

  /// Closes the write side after the buffer is flushed (half-close). RuntimeError on write()
  /// afterwards.
  virtual void write_eof() = 0;
  /// Whether write_eof() is supported (TCP and Unix stream sockets: yes; TLS: no).
  virtual bool can_write_eof() const = 0;
  /// Closes at once, dropping buffered data; connection_lost(nullptr) follows.
  virtual void abort() = 0;
};

/// A bidirectional stream (asyncio.Transport): what Protocol::connection_made receives.
class Transport : public ReadTransport, public WriteTransport {};

/// A datagram endpoint (asyncio.DatagramTransport), with asyncio's write flow control over the
/// datagrams queued because the socket could not take them at once.
class DatagramTransport : public virtual BaseTransport {
 public:
  /// Sends `data` (an empty datagram too) to `addr`, or to the connected peer when `addr` is
  /// empty. ValueError for an address other than the peer of a connected endpoint. Never
  /// blocks: what the socket cannot take now is copied and queued.
  virtual void sendto(std::string_view data, const std::optional<SockAddr>& addr) = 0;
  /// sendto() to the connected peer.
  void sendto(std::string_view data) { sendto(data, std::nullopt); }
  /// sendto() of bytes.
  void sendto(std::span<const std::byte> data,
              const std::optional<SockAddr>& addr = std::nullopt) {
    sendto(std::string_view(reinterpret_cast<const char*>(data.data()), data.size()), addr);
  }

  /// Closes at once, dropping queued datagrams; connection_lost(nullptr) follows.
  virtual void abort() = 0;

  /// As WriteTransport: the water marks, and the bytes queued but not yet sent.
  virtual void set_write_buffer_limits(std::optional<std::size_t> high = std::nullopt,
                                       std::optional<std::size_t> low = std::nullopt) = 0;
  virtual std::pair<std::size_t, std::size_t> get_write_buffer_limits() const = 0;
  virtual std::size_t get_write_buffer_size() const = 0;
};

/// A child process (asyncio.SubprocessTransport).
class SubprocessTransport : public virtual BaseTransport {
 public:
  /// The child's process id.
  virtual int get_pid() const = 0;
  /// The child's return code once it has exited (negative: killed by that signal), else empty.
  virtual std::optional<int> get_returncode() const = 0;
  /// The transport of the pipe to the child's fd 0, 1 or 2, or null when it has none.
  virtual std::shared_ptr<BaseTransport> get_pipe_transport(int fd) const = 0;
  /// Sends signal `sig` to the child. ProcessLookupError once it has exited.
  virtual void send_signal(int sig) = 0;
  /// send_signal(SIGTERM).
  virtual void terminate() = 0;
  /// send_signal(SIGKILL).
  virtual void kill() = 0;
};

}  // namespace asyncuv
