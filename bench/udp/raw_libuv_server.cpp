// A tuned UDP echo server in plain libuv, the floor the asyncuv server is measured against
// (bench/udp/run.sh): one receive buffer for every datagram (each is echoed before the next
// read reuses it), uv_udp_try_send first, and only a datagram the socket did not take is
// copied into a uv_udp_send request.
//
//   udp_raw_libuv_server [--host 127.0.0.1] [--port 9999]
#include <uv.h>

#include <csignal>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr std::size_t kBufferSize = 64 * 1024;
char buffer[kBufferSize];

/// A queued datagram: the request and its bytes, in one allocation.
struct SendRequest {
  uv_udp_send_t req;
  char data[1];
};

void check(int rc, const char* what) {
  if (rc != 0) {
    std::fprintf(stderr, "udp_raw_libuv_server: %s: %s\n", what, uv_strerror(rc));
    std::exit(2);
  }
}

void on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(buffer, kBufferSize);
}

void on_send(uv_udp_send_t* req, int) {
  std::free(req);
}

void on_recv(uv_udp_t* udp, ssize_t nread, const uv_buf_t* buf, const sockaddr* addr, unsigned) {
  if (nread < 0 || addr == nullptr) return;  // an error, or nothing more to read
  uv_buf_t out = uv_buf_init(buf->base, static_cast<unsigned>(nread));
  int rc = uv_udp_try_send(udp, &out, 1, addr);
  if (rc != UV_EAGAIN) return;
  auto size = static_cast<std::size_t>(nread);
  auto* s = static_cast<SendRequest*>(std::malloc(offsetof(SendRequest, data) + size + 1));
  std::memcpy(s->data, buf->base, size);
  out = uv_buf_init(s->data, static_cast<unsigned>(size));
  if (uv_udp_send(&s->req, udp, &out, 1, addr, on_send) != 0) std::free(s);
}

void on_signal(uv_signal_t* signal, int) {
  uv_stop(signal->loop);
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 9999;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: udp_raw_libuv_server [--host H] [--port P]\n");
      return 2;
    }
  }
  uv_loop_t* loop = uv_default_loop();
  sockaddr_storage address{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&address)) != 0) {
    check(uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&address)), "address");
  }
  uv_udp_t udp;
  check(uv_udp_init(loop, &udp), "uv_udp_init");
  check(uv_udp_bind(&udp, reinterpret_cast<const sockaddr*>(&address), 0), "bind");
  check(uv_udp_recv_start(&udp, on_alloc, on_recv), "uv_udp_recv_start");
  // SIGINT / SIGTERM end the run cleanly (callgrind writes its profile at exit).
  uv_signal_t sigint, sigterm;
  uv_signal_init(loop, &sigint);
  uv_signal_init(loop, &sigterm);
  uv_signal_start(&sigint, on_signal, SIGINT);
  uv_signal_start(&sigterm, on_signal, SIGTERM);
  std::printf("Serving on %s:%d\n", host.c_str(), port);
  std::fflush(stdout);
  uv_run(loop, UV_RUN_DEFAULT);
  return 0;
}
