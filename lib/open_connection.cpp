// asyncio.open_connection / open_unix_connection: create_connection with a
// StreamReaderProtocol, returning the (reader, writer) pair.
#include <utility>

#include "asyncuv/stream_connections.hpp"
#include "asyncuv/streams.hpp"

namespace asyncuv {

namespace {

using StreamPair = std::pair<StreamReader, StreamWriter>;

/// A reader and its protocol on `loop`, before the connection exists.
struct Pending {
  Pending(EventLoop& loop, std::size_t limit)
      : reader(loop, limit), protocol(std::make_shared<StreamReaderProtocol>(loop, reader)) {}
  StreamReader reader;
  std::shared_ptr<StreamReaderProtocol> protocol;

  StreamPair finish(EventLoop& loop, std::shared_ptr<Transport> transport) const {
    return StreamPair(reader, StreamWriter(std::move(transport), protocol, reader, loop));
  }
};

}  // namespace

Task<StreamPair> open_connection(std::string host, std::uint16_t port, ConnectionOptions options,
                                 std::size_t limit) {
  EventLoop& loop = get_running_loop();
  Pending pending(loop, limit);
  auto factory = [protocol = pending.protocol] { return protocol; };
  auto connecting = loop.create_connection(factory, std::move(host), port, std::move(options));
  auto connected = co_await std::move(connecting);
  co_return pending.finish(loop, std::move(connected.first));
}

Task<StreamPair> open_connection(ConnectionOptions options, std::size_t limit) {
  EventLoop& loop = get_running_loop();
  Pending pending(loop, limit);
  auto factory = [protocol = pending.protocol] { return protocol; };
  auto connecting = loop.create_connection(factory, std::move(options));
  auto connected = co_await std::move(connecting);
  co_return pending.finish(loop, std::move(connected.first));
}

Task<StreamPair> open_unix_connection(std::string path, UnixConnectionOptions options,
                                      std::size_t limit) {
  EventLoop& loop = get_running_loop();
  Pending pending(loop, limit);
  auto factory = [protocol = pending.protocol] { return protocol; };
  auto connecting = loop.create_unix_connection(factory, std::move(path), std::move(options));
  auto connected = co_await std::move(connecting);
  co_return pending.finish(loop, std::move(connected.first));
}

Task<StreamPair> open_unix_connection(UnixConnectionOptions options, std::size_t limit) {
  EventLoop& loop = get_running_loop();
  Pending pending(loop, limit);
  auto factory = [protocol = pending.protocol] { return protocol; };
  auto connecting = loop.create_unix_connection(factory, std::move(options));
  auto connected = co_await std::move(connecting);
  co_return pending.finish(loop, std::move(connected.first));
}

}  // namespace asyncuv
