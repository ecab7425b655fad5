// Load generator for the TCP echo benchmark (bench/echo/run.sh). Single-threaded, raw epoll.
//
//   load_generator [--host H] [--port P] [--connections N] [--size S] [--seconds D]
//                  [--warmup W] [--wait T] [--timeout T] [--server-pid PID] [--rss-every S]
//       N connections in request/response lock-step: each sends an S-byte message, waits for
//       the whole S-byte echo (checked byte for byte; an echo still incomplete after --timeout
//       seconds, default 10, is an error), then sends the next. After W seconds of
//       warm-up, D seconds are measured. Prints one "RESULT key=value ..." line: requests/s,
//       p50/p99 latency, and with --server-pid the server's CPU time per request (utime+stime
//       of /proc/PID/stat over the measured window, all threads). With --rss-every S (and
//       --server-pid), every S seconds of the run it also prints a progress line
//       "SAMPLE t=... server_rss_kib=... requests=..." (the soak test, bench/soak.sh).
//   load_generator --idle N [--hold T] [--server-pid PID] [--host H] [--port P]
//       Opens N connections, each echoing one byte once (so the server has accepted and served
//       it), then leaves them idle. With --server-pid, prints the server's RSS before and after
//       and the difference per connection.
//
// Exit status: 0 on success, 2 on bad usage or a setup failure, 3 if the server misbehaved
// (wrong, missing or extra bytes, a closed connection).
#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
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
#include <random>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 8888;
  int connections = 10;
  std::size_t size = 1024;
  double seconds = 5.0;
  double warmup = 1.0;
  double wait = 10.0;     // how long to retry the first connect while the server starts
  double timeout = 10.0;  // a request not echoed in full within this many seconds is an error
  long server_pid = 0;
  int idle = 0;
  double hold = 0.0;
  double rss_every = 0.0;  // seconds between SAMPLE lines; 0: none
};

[[noreturn]] void fail(int status, const std::string& message) {
  std::fprintf(stderr, "load_generator: %s\n", message.c_str());
  std::exit(status);
}

[[noreturn]] void fail_errno(const std::string& what) {
  fail(2, what + ": " + std::strerror(errno));
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: load_generator [--host H] [--port P] [--connections N] [--size BYTES]\n"
               "                      [--seconds D] [--warmup W] [--wait T] [--timeout T]\n"
               "                      [--server-pid PID] [--rss-every S]\n"
               "       load_generator --idle N [--hold T] [--server-pid PID] [--host H] "
               "[--port P]\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if (arg == "--help" || arg == "-h") usage();
    if (i + 1 >= argc) usage();
    const char* value = argv[++i];
    if (arg == "--host") {
      o.host = value;
    } else if (arg == "--port") {
      o.port = std::atoi(value);
    } else if (arg == "--connections") {
      o.connections = std::atoi(value);
    } else if (arg == "--size") {
      o.size = static_cast<std::size_t>(std::atol(value));
    } else if (arg == "--seconds") {
      o.seconds = std::atof(value);
    } else if (arg == "--warmup") {
      o.warmup = std::atof(value);
    } else if (arg == "--wait") {
      o.wait = std::atof(value);
    } else if (arg == "--timeout") {
      o.timeout = std::atof(value);
    } else if (arg == "--server-pid") {
      o.server_pid = std::atol(value);
    } else if (arg == "--idle") {
      o.idle = std::atoi(value);
    } else if (arg == "--hold") {
      o.hold = std::atof(value);
    } else if (arg == "--rss-every") {
      o.rss_every = std::atof(value);
    } else {
      usage();
    }
  }
  if (o.port <= 0 || o.port > 65535 || o.connections <= 0 || o.size == 0 || o.seconds <= 0 ||
      o.warmup < 0 || o.idle < 0 || o.rss_every < 0)
    usage();
  return o;
}

double seconds_since(Clock::time_point start, Clock::time_point now) {
  return std::chrono::duration<double>(now - start).count();
}

// ---- the server process, read from /proc ---------------------------------------------------

/// utime + stime of a process (all its threads), in seconds; NaN without a pid.
double process_cpu_seconds(long pid) {
  if (pid <= 0) return NAN;
  std::ifstream in("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  // The command name (field 2) may hold spaces: fields are counted after its closing ')'.
  std::size_t close = text.rfind(')');
  if (close == std::string::npos) fail(2, "cannot read /proc/" + std::to_string(pid) + "/stat");
  std::istringstream fields(text.substr(close + 2));
  std::string field;
  unsigned long long utime = 0;
  unsigned long long stime = 0;
  for (int n = 3; fields >> field; ++n) {  // field 3 is the state
    if (n == 14) utime = std::stoull(field);
    if (n == 15) {
      stime = std::stoull(field);
      break;
    }
  }
  return static_cast<double>(utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

/// VmRSS of a process in KiB; -1 without a pid.
long process_rss_kib(long pid) {
  if (pid <= 0) return -1;
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  fail(2, "no VmRSS in /proc/" + std::to_string(pid) + "/status");
}

/// This process's own CPU time (user + system), in seconds.
double own_cpu_seconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto tv = [](const timeval& t) { return static_cast<double>(t.tv_sec) + t.tv_usec * 1e-6; };
  return tv(usage.ru_utime) + tv(usage.ru_stime);
}

// ---- sockets ---------------------------------------------------------------------------------

sockaddr_storage resolve(const Options& o, socklen_t& length) {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string port = std::to_string(o.port);
  int rc = getaddrinfo(o.host.c_str(), port.c_str(), &hints, &found);
  if (rc != 0) fail(2, "getaddrinfo " + o.host + ": " + gai_strerror(rc));
  sockaddr_storage address{};
  std::memcpy(&address, found->ai_addr, found->ai_addrlen);
  length = found->ai_addrlen;
  freeaddrinfo(found);
  return address;
}

void set_nonblocking(int fd) {
  int flags = fcntl(fd, F_GETFL);
  if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) < 0) fail_errno("fcntl");
}

void set_nodelay(int fd) {
  int one = 1;
  if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) < 0) fail_errno("TCP_NODELAY");
}

/// Closes with a RST (SO_LINGER 0), so thousands of benchmark connections leave no TIME_WAIT.
void close_abortive(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
  close(fd);
}

/// A blocking connect, retried on ECONNREFUSED until `deadline` (the server may be starting).
int connect_blocking(const sockaddr_storage& address, socklen_t length,
                     Clock::time_point deadline) {
  for (;;) {
    int fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) fail_errno("socket");
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address), length) == 0) return fd;
    int error = errno;
    close(fd);
    if (error != ECONNREFUSED || Clock::now() >= deadline) {
      errno = error;
      fail_errno("connect");
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

/// Raises RLIMIT_NOFILE to its hard limit; returns the new soft limit.
rlim_t raise_fd_limit() {
  rlimit limit{};
  getrlimit(RLIMIT_NOFILE, &limit);
  limit.rlim_cur = limit.rlim_max;
  setrlimit(RLIMIT_NOFILE, &limit);
  getrlimit(RLIMIT_NOFILE, &limit);
  return limit.rlim_cur;
}

class Epoll {
 public:
  Epoll() : fd_(epoll_create1(EPOLL_CLOEXEC)) {
    if (fd_ < 0) fail_errno("epoll_create1");
  }
  Epoll(const Epoll&) = delete;
  Epoll& operator=(const Epoll&) = delete;
  ~Epoll() { close(fd_); }

  void add(int fd, std::uint32_t events, std::uint64_t key) {
    control(EPOLL_CTL_ADD, fd, events, key);
  }
  void modify(int fd, std::uint32_t events, std::uint64_t key) {
    control(EPOLL_CTL_MOD, fd, events, key);
  }
  void remove(int fd) { epoll_ctl(fd_, EPOLL_CTL_DEL, fd, nullptr); }

  /// Waits up to `timeout_ms` for events; returns how many are in events().
  int wait(int timeout_ms) {
    int n = epoll_wait(fd_, events_, kMaxEvents, timeout_ms);
    if (n < 0 && errno != EINTR) fail_errno("epoll_wait");
    return std::max(n, 0);
  }
  const epoll_event& event(int i) const { return events_[i]; }

 private:
  void control(int op, int fd, std::uint32_t events, std::uint64_t key) {
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = key;
    if (epoll_ctl(fd_, op, fd, &ev) < 0) fail_errno("epoll_ctl");
  }

  static constexpr int kMaxEvents = 256;
  int fd_;
  epoll_event events_[kMaxEvents];
};

// ---- request/response load ------------------------------------------------------------------

/// One connection in lock-step: `message` goes out, the same bytes must come back.
struct Connection {
  int fd = -1;
  int id = 0;
  std::vector<char> message;
  std::size_t sent = 0;
  std::size_t received = 0;
  std::uint64_t sequence = 0;
  Clock::time_point started;
  bool want_write = false;
};

class LoadRun {
 public:
  explicit LoadRun(const Options& o)
      : options_(o), scratch_(std::max<std::size_t>(o.size, 65536)) {}

  void run() {
    // Thousands of connections (the soak test) need more than the usual 1024 descriptors.
    if (static_cast<rlim_t>(options_.connections) + 16 > raise_fd_limit())
      fail(2, "--connections " + std::to_string(options_.connections) +
                  " needs more file descriptors than RLIMIT_NOFILE allows");
    socklen_t length = 0;
    sockaddr_storage address = resolve(options_, length);
    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(options_.wait));
    std::mt19937_64 random(12345);
    connections_.resize(static_cast<std::size_t>(options_.connections));
    for (int i = 0; i < options_.connections; ++i) {
      Connection& c = connections_[static_cast<std::size_t>(i)];
      c.fd = connect_blocking(address, length, deadline);
      c.id = i;
      set_nodelay(c.fd);
      set_nonblocking(c.fd);
      c.message.resize(options_.size);
      for (char& byte : c.message)
        byte = static_cast<char>(random());
      epoll_.add(c.fd, EPOLLIN, static_cast<std::uint64_t>(i));
    }

    Clock::time_point start = Clock::now();
    measure_from_ = start + to_duration(options_.warmup);
    measure_until_ = measure_from_ + to_duration(options_.seconds);
    latencies_.reserve(1 << 20);
    for (Connection& c : connections_)
      begin_request(c, start);

    bool measuring = false;
    double server_cpu_start = 0;
    double own_cpu_start = 0;
    Clock::time_point next_stall_check = start;
    Clock::time_point next_sample = start + to_duration(options_.rss_every);
    for (;;) {
      Clock::time_point now = Clock::now();
      if (now >= next_stall_check) {
        check_stalls(now);
        next_stall_check = now + std::chrono::milliseconds(100);
      }
      if (options_.rss_every > 0 && now >= next_sample) {
        // Counted over the whole run (warm-up included): the soak test watches for growth.
        std::printf("SAMPLE t=%.1f server_rss_kib=%ld requests=%llu\n", seconds_since(start, now),
                    process_rss_kib(options_.server_pid), total_completed_);
        std::fflush(stdout);
        next_sample = now + to_duration(options_.rss_every);
      }
      if (!measuring && now >= measure_from_) {
        measuring = true;
        server_cpu_start = process_cpu_seconds(options_.server_pid);
        own_cpu_start = own_cpu_seconds();
        measure_from_ = now;
        measure_until_ = now + to_duration(options_.seconds);
      }
      if (measuring && now >= measure_until_) break;
      Clock::time_point next = measuring ? measure_until_ : measure_from_;
      auto timeout = std::chrono::duration_cast<std::chrono::milliseconds>(next - now).count() + 1;
      int n = epoll_.wait(static_cast<int>(std::min<long long>(timeout, 100)));
      for (int i = 0; i < n; ++i) {
        const epoll_event& ev = epoll_.event(i);
        Connection& c = connections_[ev.data.u64];
        if (ev.events & (EPOLLIN | EPOLLERR | EPOLLHUP)) on_readable(c, measuring);
        if ((ev.events & EPOLLOUT) && c.want_write) send_some(c);
      }
    }
    double elapsed = seconds_since(measure_from_, Clock::now());
    double server_cpu = process_cpu_seconds(options_.server_pid) - server_cpu_start;
    double own_cpu = own_cpu_seconds() - own_cpu_start;
    for (Connection& c : connections_)
      close_abortive(c.fd);
    if (completed_ == 0) fail(3, "no request completed in the measured window");
    report(elapsed, server_cpu, own_cpu);
  }

 private:
  static Clock::duration to_duration(double seconds) {
    return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  }

  /// Fails when some echo has been outstanding for longer than --timeout.
  void check_stalls(Clock::time_point now) {
    for (const Connection& c : connections_) {
      if (seconds_since(c.started, now) > options_.timeout)
        fail(3, "connection " + std::to_string(c.id) + ": " + std::to_string(c.received) + " of " +
                    std::to_string(c.message.size()) + " bytes echoed after " +
                    std::to_string(options_.timeout) + " s");
    }
  }

  /// Stamps the message with the connection id and sequence number (so a stale or misrouted
  /// echo cannot pass the check) and starts sending it.
  void begin_request(Connection& c, Clock::time_point now) {
    ++c.sequence;
    std::uint64_t stamp = (static_cast<std::uint64_t>(c.id) << 48) ^ c.sequence;
    std::memcpy(c.message.data(), &stamp, std::min(sizeof stamp, c.message.size()));
    c.sent = 0;
    c.received = 0;
    c.started = now;
    send_some(c);
  }

  void send_some(Connection& c) {
    while (c.sent < c.message.size()) {
      ssize_t n = send(c.fd, c.message.data() + c.sent, c.message.size() - c.sent, MSG_NOSIGNAL);
      if (n > 0) {
        c.sent += static_cast<std::size_t>(n);
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
      fail(3, "connection " + std::to_string(c.id) + ": send: " + std::strerror(errno));
    }
    bool want = c.sent < c.message.size();
    if (want != c.want_write) {
      c.want_write = want;
      epoll_.modify(c.fd, EPOLLIN | (want ? EPOLLOUT : 0u), static_cast<std::uint64_t>(c.id));
    }
  }

  void on_readable(Connection& c, bool measuring) {
    for (;;) {
      // Never reads past the current echo: extra bytes from the server are then read as the
      // start of the next one and fail its check.
      std::size_t want = c.message.size() - c.received;
      ssize_t n = recv(c.fd, scratch_.data(), std::min(want, scratch_.size()), 0);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
      if (n < 0) fail(3, "connection " + std::to_string(c.id) + ": recv: " + std::strerror(errno));
      if (n == 0) fail(3, "connection " + std::to_string(c.id) + ": closed by the server");
      auto got = static_cast<std::size_t>(n);
      if (c.received + got > c.sent)
        fail(3, "connection " + std::to_string(c.id) + ": echo ahead of what was sent");
      if (std::memcmp(scratch_.data(), c.message.data() + c.received, got) != 0)
        fail(3, "connection " + std::to_string(c.id) + ": echoed bytes differ at offset " +
                    std::to_string(c.received));
      c.received += got;
      if (c.received == c.message.size()) {
        Clock::time_point now = Clock::now();
        if (measuring && c.started >= measure_from_) {
          latencies_.push_back(static_cast<float>(
              std::chrono::duration<double, std::micro>(now - c.started).count()));
        }
        if (measuring && now < measure_until_) ++completed_;
        ++total_completed_;
        begin_request(c, now);
      }
    }
  }

  double percentile(double p) {
    if (latencies_.empty()) return NAN;
    auto index = static_cast<std::size_t>(p * static_cast<double>(latencies_.size() - 1));
    std::nth_element(latencies_.begin(), latencies_.begin() + static_cast<long>(index),
                     latencies_.end());
    return latencies_[index];
  }

  void report(double elapsed, double server_cpu, double own_cpu) {
    double requests = static_cast<double>(completed_);
    double p50 = percentile(0.50);
    double p99 = percentile(0.99);
    std::printf(
        "RESULT connections=%d size=%zu seconds=%.2f requests=%llu rps=%.1f p50_us=%.1f "
        "p99_us=%.1f server_cpu_us_per_req=%.2f client_cpu_us_per_req=%.2f\n",
        options_.connections, options_.size, elapsed, completed_, requests / elapsed, p50, p99,
        server_cpu * 1e6 / requests, own_cpu * 1e6 / requests);
  }

  Options options_;
  Epoll epoll_;
  std::vector<Connection> connections_;
  std::vector<char> scratch_;
  std::vector<float> latencies_;
  unsigned long long total_completed_ = 0;  // every checked echo, warm-up included
  Clock::time_point measure_from_;
  Clock::time_point measure_until_;
  unsigned long long completed_ = 0;
};

// ---- idle connections ------------------------------------------------------------------------

/// Opens `count` connections, at most kInFlight being set up at a time (so the server's listen
/// backlog never overflows); each is ready once one byte has been echoed on it.
class IdleRun {
 public:
  explicit IdleRun(const Options& o) : options_(o) {}

  void run() {
    rlim_t limit = raise_fd_limit();
    if (static_cast<rlim_t>(options_.idle) + 16 > limit)
      fail(2, "--idle " + std::to_string(options_.idle) + " needs more file descriptors than " +
                  "RLIMIT_NOFILE allows (" + std::to_string(limit) + ")");
    socklen_t length = 0;
    address_ = resolve(options_, length);
    length_ = length;
    // The first connection doubles as the wait for the server to listen.
    auto deadline = Clock::now() + std::chrono::duration_cast<Clock::duration>(
                                       std::chrono::duration<double>(options_.wait));
    close_abortive(connect_blocking(address_, length_, deadline));

    long rss_before = process_rss_kib(options_.server_pid);
    Clock::time_point start = Clock::now();
    fds_.assign(static_cast<std::size_t>(options_.idle), -1);
    state_.assign(static_cast<std::size_t>(options_.idle), State::kNone);
    int next = 0;
    int ready = 0;
    int in_flight = 0;
    while (ready < options_.idle) {
      while (next < options_.idle && in_flight < kInFlight) {
        start_connect(next++);
        ++in_flight;
      }
      int n = epoll_.wait(1000);
      if (seconds_since(start, Clock::now()) > 120)
        fail(3, "only " + std::to_string(ready) + " idle connections set up in 120 s");
      for (int i = 0; i < n; ++i) {
        const epoll_event& ev = epoll_.event(i);
        if (advance(static_cast<std::size_t>(ev.data.u64), ev.events)) {
          ++ready;
          --in_flight;
        }
      }
    }
    double setup = seconds_since(start, Clock::now());
    // Give the server a moment to finish whatever it does after the echo.
    std::this_thread::sleep_for(std::chrono::milliseconds(500));
    long rss_after = process_rss_kib(options_.server_pid);
    std::printf(
        "RESULT idle=%d setup_seconds=%.2f rss_before_kib=%ld rss_after_kib=%ld "
        "bytes_per_conn=%.0f\n",
        options_.idle, setup, rss_before, rss_after,
        rss_before < 0 ? NAN
                       : static_cast<double>(rss_after - rss_before) * 1024.0 /
                             static_cast<double>(options_.idle));
    std::fflush(stdout);
    if (options_.hold > 0) std::this_thread::sleep_for(to_seconds(options_.hold));
    for (int fd : fds_)
      close_abortive(fd);
  }

 private:
  enum class State { kNone, kConnecting, kEchoing, kIdle };
  static constexpr int kInFlight = 64;

  static std::chrono::duration<double> to_seconds(double s) {
    return std::chrono::duration<double>(s);
  }

  void start_connect(int index) {
    int fd = socket(address_.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) fail_errno("socket (connection " + std::to_string(index) + ")");
    set_nodelay(fd);
    auto i = static_cast<std::size_t>(index);
    fds_[i] = fd;
    if (connect(fd, reinterpret_cast<const sockaddr*>(&address_), length_) < 0 &&
        errno != EINPROGRESS)
      fail_errno("connect (connection " + std::to_string(index) + ")");
    state_[i] = State::kConnecting;
    epoll_.add(fd, EPOLLOUT, i);
  }

  /// Moves connection i on; true when it has just become idle.
  bool advance(std::size_t i, std::uint32_t events) {
    int fd = fds_[i];
    if (state_[i] == State::kConnecting) {
      int error = 0;
      socklen_t size = sizeof error;
      getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size);
      if (error != 0)
        fail(3, "idle connection " + std::to_string(i) + ": connect: " + std::strerror(error));
      char byte = 'x';
      if (send(fd, &byte, 1, MSG_NOSIGNAL) != 1) fail_errno("send (idle connection)");
      state_[i] = State::kEchoing;
      epoll_.modify(fd, EPOLLIN, i);
      return false;
    }
    if (state_[i] == State::kEchoing && (events & (EPOLLIN | EPOLLERR | EPOLLHUP))) {
      char byte = 0;
      ssize_t n = recv(fd, &byte, 1, 0);
      if (n < 0 && errno == EAGAIN) return false;
      if (n != 1 || byte != 'x')
        fail(3, "idle connection " + std::to_string(i) + ": bad or missing echo");
      state_[i] = State::kIdle;
      epoll_.remove(fd);
      return true;
    }
    return false;
  }

  Options options_;
  Epoll epoll_;
  sockaddr_storage address_{};
  socklen_t length_ = 0;
  std::vector<int> fds_;
  std::vector<State> state_;
};

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  if (options.idle > 0) {
    IdleRun(options).run();
  } else {
    LoadRun(options).run();
  }
  return 0;
}
