// Load generator for the UDP echo benchmark (bench/udp/run.sh). Single-threaded, one socket
// connected to the server.
//
//   udp_load_generator [--host H] [--port P] [--outstanding N] [--size S] [--seconds D]
//                      [--warmup W] [--wait T] [--resend T] [--server-pid PID]
//                      [--datagrams COUNT]
//       Keeps N datagrams of S bytes in flight: each carries its slot and a sequence number;
//       when its echo comes back (checked byte for byte) the slot sends the next one. An echo
//       missing for --resend seconds (default 0.2) counts as lost and the slot sends a new
//       datagram (UDP may drop; the benchmark must not stall). After W seconds of warm-up, D
//       seconds are measured (or, with --datagrams, until that many round trips completed).
//       Prints one "RESULT key=value ..." line: round trips/s, p50/p99 round-trip latency, the
//       lost datagrams, and with --server-pid the server's CPU time per round trip (utime +
//       stime of /proc/PID/stat over the measured window).
//
// Exit status: 0 on success, 2 on bad usage or a setup failure, 3 if the server misbehaved
// (a wrong echo) or never answered.
#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 9999;
  int outstanding = 16;
  std::size_t size = 64;
  double seconds = 5.0;
  double warmup = 1.0;
  double wait = 10.0;   // how long to wait for the server's first echo
  double resend = 0.2;  // an echo missing this long is lost
  long server_pid = 0;
  long datagrams = 0;  // measure this many round trips instead of a duration
};

[[noreturn]] void fail(int status, const std::string& message) {
  std::fprintf(stderr, "udp_load_generator: %s\n", message.c_str());
  std::exit(status);
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: udp_load_generator [--host H] [--port P] [--outstanding N] [--size S]\n"
               "                          [--seconds D] [--warmup W] [--wait T] [--resend T]\n"
               "                          [--server-pid PID] [--datagrams COUNT]\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (i + 1 >= argc) usage();
    const char* value = argv[++i];
    if (arg == "--host") {
      o.host = value;
    } else if (arg == "--port") {
      o.port = std::atoi(value);
    } else if (arg == "--outstanding") {
      o.outstanding = std::atoi(value);
    } else if (arg == "--size") {
      o.size = static_cast<std::size_t>(std::atol(value));
    } else if (arg == "--seconds") {
      o.seconds = std::atof(value);
    } else if (arg == "--warmup") {
      o.warmup = std::atof(value);
    } else if (arg == "--wait") {
      o.wait = std::atof(value);
    } else if (arg == "--resend") {
      o.resend = std::atof(value);
    } else if (arg == "--server-pid") {
      o.server_pid = std::atol(value);
    } else if (arg == "--datagrams") {
      o.datagrams = std::atol(value);
    } else {
      usage();
    }
  }
  if (o.outstanding < 1 || o.size < 16 || o.size > 65000) fail(2, "bad --outstanding or --size");
  return o;
}

/// utime + stime of a process (all its threads), in seconds; NaN without a pid.
double process_cpu_seconds(long pid) {
  if (pid <= 0) return NAN;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  std::getline(in, line);
  std::size_t close = line.rfind(')');
  if (close == std::string::npos) fail(2, "cannot read /proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(line.substr(close + 2));
  std::string field;
  unsigned long long utime = 0, stime = 0;
  for (int n = 3; fields >> field; ++n) {  // field 3 is the state
    if (n == 14) utime = std::stoull(field);
    if (n == 15) {
      stime = std::stoull(field);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// The datagram of `slot` with sequence number `seq`: both in the first 16 bytes, then bytes
/// derived from them.
void fill(std::vector<char>& out, std::uint64_t slot, std::uint64_t seq) {
  std::memcpy(out.data(), &slot, 8);
  std::memcpy(out.data() + 8, &seq, 8);
  for (std::size_t i = 16; i < out.size(); ++i)
    out[i] = static_cast<char>((slot * 131 + seq * 31 + i) & 0xff);
}

struct Slot {
  std::uint64_t seq = 0;
  Clock::time_point sent;
};

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  addrinfo hints{};
  hints.ai_socktype = SOCK_DGRAM;
  addrinfo* res = nullptr;
  if (getaddrinfo(o.host.c_str(), std::to_string(o.port).c_str(), &hints, &res) != 0 || !res) {
    fail(2, "cannot resolve " + o.host);
  }
  int fd = ::socket(res->ai_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0 || ::connect(fd, res->ai_addr, res->ai_addrlen) != 0) {
    fail(2, std::string("socket/connect: ") + std::strerror(errno));
  }
  freeaddrinfo(res);
  int big = 4 << 20;
  ::setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &big, sizeof big);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &big, sizeof big);

  std::vector<Slot> slots(static_cast<std::size_t>(o.outstanding));
  std::vector<char> out(o.size), in(o.size + 1), expected(o.size);
  auto send_slot = [&](std::size_t i) {
    fill(out, i, slots[i].seq);
    slots[i].sent = Clock::now();
    if (::send(fd, out.data(), out.size(), 0) < 0 && errno != ECONNREFUSED) {
      fail(2, std::string("send: ") + std::strerror(errno));
    }
  };

  // Wait for the server: one datagram until it echoes.
  const auto give_up = Clock::now() + std::chrono::duration<double>(o.wait);
  for (bool answered = false; !answered;) {
    if (Clock::now() > give_up) fail(3, "the server never answered");
    send_slot(0);
    pollfd p{fd, POLLIN, 0};
    if (::poll(&p, 1, 50) == 1 && ::recv(fd, in.data(), in.size(), 0) > 0) answered = true;
  }
  while (::recv(fd, in.data(), in.size(), MSG_DONTWAIT) > 0) {
  }
  for (Slot& s : slots)
    s.seq = 1;

  for (std::size_t i = 0; i < slots.size(); ++i)
    send_slot(i);
  const auto start = Clock::now();
  const auto measure_from = start + std::chrono::duration<double>(o.warmup);
  const auto measure_until = measure_from + std::chrono::duration<double>(o.seconds);
  bool measuring = o.warmup <= 0;
  Clock::time_point t0 = start;
  double cpu0 = measuring ? process_cpu_seconds(o.server_pid) : NAN;
  long done = 0, lost = 0;
  std::vector<float> latencies;
  latencies.reserve(1 << 20);
  auto next_check = Clock::now() + std::chrono::milliseconds(50);

  for (;;) {
    pollfd p{fd, POLLIN, 0};
    int ready = ::poll(&p, 1, 50);
    Clock::time_point now = Clock::now();
    if (!measuring && now >= measure_from) {
      measuring = true;
      t0 = now;
      cpu0 = process_cpu_seconds(o.server_pid);
    }
    if (measuring && (o.datagrams > 0 ? done >= o.datagrams : now >= measure_until)) break;
    if (ready == 1) {
      for (;;) {
        ssize_t n = ::recv(fd, in.data(), in.size(), MSG_DONTWAIT);
        if (n < 0) break;
        if (static_cast<std::size_t>(n) != o.size) fail(3, "an echo of the wrong size");
        std::uint64_t slot = 0, seq = 0;
        std::memcpy(&slot, in.data(), 8);
        std::memcpy(&seq, in.data() + 8, 8);
        if (slot >= slots.size()) fail(3, "an echo of an unknown slot");
        if (seq != slots[slot].seq) continue;  // a late echo of a datagram counted as lost
        fill(expected, slot, seq);
        if (std::memcmp(expected.data(), in.data(), o.size) != 0) fail(3, "a corrupted echo");
        Clock::time_point t = Clock::now();
        if (measuring) {
          ++done;
          latencies.push_back(
              std::chrono::duration<float, std::micro>(t - slots[slot].sent).count());
        }
        ++slots[slot].seq;
        send_slot(slot);
      }
    }
    if (now >= next_check) {
      next_check = now + std::chrono::milliseconds(50);
      for (std::size_t i = 0; i < slots.size(); ++i) {
        if (std::chrono::duration<double>(now - slots[i].sent).count() > o.resend) {
          ++lost;
          ++slots[i].seq;
          send_slot(i);
        }
      }
    }
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - t0).count();
  double cpu = process_cpu_seconds(o.server_pid) - cpu0;
  std::sort(latencies.begin(), latencies.end());
  auto pct = [&](double q) {
    return latencies.empty() ? 0.0
                             : static_cast<double>(latencies[static_cast<std::size_t>(
                                   q * static_cast<double>(latencies.size() - 1))]);
  };
  std::printf("RESULT round_trips=%ld seconds=%.3f rps=%.0f p50_us=%.1f p99_us=%.1f lost=%ld", done,
              elapsed, static_cast<double>(done) / elapsed, pct(0.5), pct(0.99), lost);
  if (o.server_pid > 0 && done > 0) {
    std::printf(" server_cpu_us_per_rt=%.2f", cpu * 1e6 / static_cast<double>(done));
  }
  std::printf("\n");
  ::close(fd);
  return 0;
}
