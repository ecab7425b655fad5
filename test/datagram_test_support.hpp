// Test support for the datagram endpoint tests: a recording DatagramProtocol, endpoint
// creation with a watchdog, and IPv6 detection.
#pragma once

#include <catch2/catch.hpp>

#include <netinet/in.h>
#include <sys/socket.h>

#include <asyncuv/asyncuv.hpp>
#include <asyncuv/datagram.hpp>

#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "loop_support.hpp"
#include "stream_test_support.hpp"

namespace datagram_test {

using asyncuv::DatagramEndpointOptions;
using asyncuv::DatagramTransport;
using asyncuv::EventLoop;
using asyncuv::SockAddr;
using asyncuv::Socket;
using stream_test::holds;
using stream_test::run_iterations;
using stream_test::run_until;
using stream_test::what;

/// A datagram protocol that records everything that happens to it.
class DgRecorder : public asyncuv::DatagramProtocol {
 public:
  struct Datagram {
    std::string data;
    SockAddr from;
  };
  std::vector<std::string> events;  // "made", "datagram", "error", "lost", "pause", "resume"
  std::vector<Datagram> datagrams;
  std::vector<std::exception_ptr> errors;
  std::shared_ptr<DatagramTransport> transport;  // from connection_made (dropped when lost)
  bool made = false;
  bool lost = false;
  int lost_calls = 0;
  std::exception_ptr lost_exc;
  int pauses = 0;
  int resumes = 0;
  bool keep_datagrams = true;
  std::function<void(DgRecorder&, std::string_view, const SockAddr&)> on_datagram;
  std::function<void(DgRecorder&, std::exception_ptr)> on_error;
  std::function<void(DgRecorder&)> on_resume;

  void connection_made(std::shared_ptr<DatagramTransport> t) override {
    events.push_back("made");
    made = true;
    transport = std::move(t);
  }
  void datagram_received(std::string_view data, const SockAddr& from) override {
    if (events.empty() || events.back() != "datagram") events.push_back("datagram");
    if (keep_datagrams) datagrams.push_back({std::string(data), from});
    if (on_datagram) on_datagram(*this, data, from);
  }
  void error_received(std::exception_ptr exc) override {
    events.push_back("error");
    errors.push_back(exc);
    if (on_error) on_error(*this, exc);
  }
  void connection_lost(std::exception_ptr exc) override {
    events.push_back("lost");
    lost = true;
    ++lost_calls;
    lost_exc = exc;
    transport.reset();
  }
  void pause_writing() override {
    events.push_back("pause");
    ++pauses;
  }
  void resume_writing() override {
    events.push_back("resume");
    ++resumes;
    if (on_resume) on_resume(*this);
  }
};

using Endpoint = std::pair<std::shared_ptr<DatagramTransport>, std::shared_ptr<DgRecorder>>;

/// create_datagram_endpoint with a new DgRecorder, run to completion (with a watchdog).
inline Endpoint open_endpoint(EventLoop& loop, DatagramEndpointOptions options) {
  auto factory = [] { return std::make_shared<DgRecorder>(); };
  return test_support::run_task(loop, loop.create_datagram_endpoint(factory, std::move(options)));
}

/// The exception create_datagram_endpoint fails with (null if it succeeded; the endpoint is
/// then closed).
inline std::exception_ptr endpoint_failure(EventLoop& loop, DatagramEndpointOptions options) {
  auto attempt = [](EventLoop* l, DatagramEndpointOptions o) -> asyncuv::Task<void> {
    auto factory = [] { return std::make_shared<DgRecorder>(); };
    auto made = co_await l->create_datagram_endpoint(factory, std::move(o));
    made.first->close();
  };
  return test_support::failure_of(loop, attempt(&loop, std::move(options)));
}

/// The endpoint's local address.
inline SockAddr sockname(const std::shared_ptr<DatagramTransport>& t) {
  auto address = t->get_extra_info<SockAddr>("sockname");
  REQUIRE(address.has_value());
  return *address;
}

/// The endpoint's descriptor.
inline int fd_of(const std::shared_ptr<DatagramTransport>& t) {
  return std::any_cast<int>(t->get_extra_info("socket"));
}

/// An integer socket option of `fd`.
inline int sockopt(int fd, int level, int name) {
  int value = 0;
  socklen_t len = sizeof value;
  REQUIRE(::getsockopt(fd, level, name, &value, &len) == 0);
  return value;
}

/// True if a UDP socket can be bound to ::1 here.
inline bool ipv6_available() {
  try {
    Socket probe(AF_INET6, SOCK_DGRAM);
    probe.bind(SockAddr::ipv6("::1", 0));
    return true;
  } catch (const asyncuv::OSError&) {
    return false;
  }
}

/// A loopback UDP port nobody listens on (bound, then released).
inline std::uint16_t closed_udp_port(const char* host) {
  Socket probe(std::string(host).find(':') != std::string::npos ? AF_INET6 : AF_INET, SOCK_DGRAM);
  probe.bind(SockAddr::parse(host, 0));
  return probe.getsockname().port();
}

/// The loopback hosts to test: 127.0.0.1 and, when available, ::1 (else a warning).
inline std::vector<std::string> loopback_hosts() {
  std::vector<std::string> hosts{"127.0.0.1"};
  if (ipv6_available()) {
    hosts.push_back("::1");
  } else {
    WARN("IPv6 loopback (::1) is not available: IPv6 cases skipped");
  }
  return hosts;
}

}  // namespace datagram_test
