// Fuzz target: the datagram path fed arbitrary payloads from arbitrary source addresses. The
// input picks the kind of endpoint (UDP over 127.0.0.1, UDP over ::1, or an AF_UNIX datagram
// socket with an abstract name), then up to 8 datagrams, each with its own sender: bound to
// an input-chosen address (any 127.x.y.z, z not 0 nor 255, and port; any abstract Unix name of
// 1-107 bytes), with an input-chosen payload (empty included). The protocol must receive each
// payload exactly, with the sender's address exactly, and its sendto() back to that address must
// deliver the same payload to the sender.
#include <fuzzer/FuzzedDataProvider.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <asyncuv/asyncuv.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "fuzz_support.hpp"

namespace {

using asyncuv::SockAddr;
using asyncuv::Socket;

struct Received {
  std::string data;
  SockAddr from;
};

/// Records every datagram and sends it back where it came from.
class Echo : public asyncuv::DatagramProtocol {
 public:
  std::shared_ptr<asyncuv::DatagramTransport> transport;
  std::vector<Received> received;
  int errors = 0;
  void connection_made(std::shared_ptr<asyncuv::DatagramTransport> t) override {
    transport = std::move(t);
  }
  void datagram_received(std::string_view data, const SockAddr& addr) override {
    received.push_back({std::string(data), addr});
    transport->sendto(data, addr);
  }
  void error_received(std::exception_ptr) override { ++errors; }
};

enum Kind { UDP4, UDP6, UNIX_ABSTRACT };

/// A socket of `kind` bound to an address the input picks (falling back to one the kernel
/// picks when that one is taken or refused).
Socket bound_socket(Kind kind, FuzzedDataProvider& in) {
  if (kind == UNIX_ABSTRACT) {
    Socket sock(AF_UNIX, SOCK_DGRAM);
    std::string name = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<std::size_t>(1, 107));
    if (name.empty()) name = "x";
    try {
      sock.bind(SockAddr::unix_path(std::string(1, '\0') + name.substr(0, 106)));
    } catch (const asyncuv::OSError&) {
      sockaddr_un autobind{};
      autobind.sun_family = AF_UNIX;  // an address of the family only: the kernel picks a name
      fuzz_support::require(
          ::bind(sock.fileno(), reinterpret_cast<sockaddr*>(&autobind), sizeof(sa_family_t)) == 0,
          "autobind");
    }
    return sock;
  }
  const std::uint16_t port = in.ConsumeIntegral<std::uint16_t>();
  if (kind == UDP6) {
    Socket sock(AF_INET6, SOCK_DGRAM);
    try {
      sock.bind(SockAddr::ipv6("::1", port));
    } catch (const asyncuv::OSError&) {
      sock.bind(SockAddr::ipv6("::1", 0));
    }
    return sock;
  }
  Socket sock(AF_INET, SOCK_DGRAM);
  const std::string host = "127." + std::to_string(in.ConsumeIntegral<std::uint8_t>()) + "." +
                           std::to_string(in.ConsumeIntegral<std::uint8_t>()) + "." +
                           // 1-254: not the network (.0) nor the broadcast address (EACCES).
                           std::to_string(1 + in.ConsumeIntegral<std::uint8_t>() % 254);
  try {
    sock.bind(SockAddr::ipv4(host, port));
  } catch (const asyncuv::OSError&) {
    sock.bind(SockAddr::ipv4("127.0.0.1", 0));
  }
  return sock;
}

/// Runs the loop until `done()`, aborting (with `what`) if it never happens.
template <class Done>
void settle_until(asyncuv::EventLoop& loop, Done done, const char* what) {
  for (int round = 0; round < 1000; ++round) {
    if (done()) return;
    fuzz_support::settle(loop, 1);
  }
  std::fprintf(stderr, "never happened: %s\n", what);
  std::abort();
}

void check(bool ok, const char* what) {
  if (!ok) {
    std::fprintf(stderr, "datagram check failed: %s (errno %d)\n", what, errno);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz_support::quiet_logs();
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const Kind kind = static_cast<Kind>(in.ConsumeIntegralInRange<int>(0, 2));
  asyncuv::EventLoop loop;
  {
    Socket endpoint_sock = bound_socket(kind, in);
    const SockAddr endpoint_addr = endpoint_sock.getsockname();
    asyncuv::DatagramEndpointOptions options;
    options.sock = std::move(endpoint_sock);
    auto factory = [] { return std::make_shared<Echo>(); };
    auto made = loop.run_until_complete(loop.create_datagram_endpoint(factory, std::move(options)));
    std::shared_ptr<Echo> echo = made.second;

    const int count = in.ConsumeIntegralInRange<int>(1, 8);
    for (int i = 0; i < count; ++i) {
      Socket sender = bound_socket(kind, in);
      const SockAddr sender_addr = sender.getsockname();
      const std::string payload =
          in.ConsumeBytesAsString(in.ConsumeIntegralInRange<std::size_t>(0, 4096));
      check(::sendto(sender.fileno(), payload.data(), payload.size(), 0, endpoint_addr.get(),
                     endpoint_addr.size()) == static_cast<ssize_t>(payload.size()),
            "sendto from the sender");
      const std::size_t before = echo->received.size();
      settle_until(
          loop, [&] { return echo->received.size() > before; }, "the datagram arrives");
      check(echo->received.size() == before + 1, "one datagram per send");
      check(echo->received.back().data == payload, "the payload, exactly");
      check(echo->received.back().from == sender_addr, "the sender's address, exactly");
      // The echo comes back to the sender.
      std::string back(payload.size() + 1, '\0');
      ssize_t n = -1;
      settle_until(
          loop,
          [&] {
            n = ::recv(sender.fileno(), back.data(), back.size(), MSG_DONTWAIT);
            return n >= 0;
          },
          "the echo arrives");
      back.resize(static_cast<std::size_t>(n));
      check(back == payload, "the echo, exactly");
    }
    check(echo->errors == 0, "no error_received");
    made.first->close();
    fuzz_support::settle(loop);
  }
  loop.close();
  return 0;
}
