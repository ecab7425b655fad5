// A tuned echo server in plain libuv, the floor the asyncuv echo server is measured against
// (bench/echo/run.sh): one read buffer shared by every connection (the data is echoed before
// the next read can reuse it), uv_try_write first, and only what the socket did not take is
// copied into a uv_write request. TCP_NODELAY on every connection. Reading stops while more than
// 1 MiB waits to be written, and resumes once it has drained.
//
//   raw_libuv_server [--host 127.0.0.1] [--port 8888]
#include <uv.h>

#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr std::size_t kReadBufferSize = 64 * 1024;
constexpr std::size_t kHighWater = 1024 * 1024;

char read_buffer[kReadBufferSize];

/// A pending write: the request and the bytes it sends, in one allocation.
struct WriteRequest {
  uv_write_t req;
  uv_buf_t buf;
  char data[1];
};

void check(int rc, const char* what) {
  if (rc != 0) {
    std::fprintf(stderr, "raw_libuv_server: %s: %s\n", what, uv_strerror(rc));
    std::exit(2);
  }
}

void on_close(uv_handle_t* handle) {
  delete reinterpret_cast<uv_tcp_t*>(handle);
}

void on_alloc(uv_handle_t*, std::size_t, uv_buf_t* buf) {
  *buf = uv_buf_init(read_buffer, kReadBufferSize);
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf);

void on_write(uv_write_t* req, int status) {
  auto* stream = req->handle;
  std::free(req);
  if (status < 0) {
    if (!uv_is_closing(reinterpret_cast<uv_handle_t*>(stream)))
      uv_close(reinterpret_cast<uv_handle_t*>(stream), on_close);
    return;
  }
  // Resume reading once the backlog is gone, if it was stopped (stream->data is the flag).
  if (stream->data != nullptr && stream->write_queue_size == 0 &&
      !uv_is_closing(reinterpret_cast<uv_handle_t*>(stream))) {
    stream->data = nullptr;
    uv_read_start(stream, on_alloc, on_read);
  }
}

void on_read(uv_stream_t* stream, ssize_t nread, const uv_buf_t* buf) {
  if (nread < 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(stream), on_close);
    return;
  }
  if (nread == 0) return;
  auto size = static_cast<std::size_t>(nread);
  uv_buf_t whole = uv_buf_init(buf->base, static_cast<unsigned>(size));
  int written = uv_try_write(stream, &whole, 1);
  if (written == UV_EAGAIN) written = 0;
  if (written < 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(stream), on_close);
    return;
  }
  auto done = static_cast<std::size_t>(written);
  if (done == size) return;
  std::size_t rest = size - done;
  auto* w = static_cast<WriteRequest*>(std::malloc(offsetof(WriteRequest, data) + rest));
  std::memcpy(w->data, buf->base + done, rest);
  w->buf = uv_buf_init(w->data, static_cast<unsigned>(rest));
  int rc = uv_write(&w->req, stream, &w->buf, 1, on_write);
  if (rc != 0) {
    std::free(w);
    uv_close(reinterpret_cast<uv_handle_t*>(stream), on_close);
    return;
  }
  if (stream->write_queue_size > kHighWater) {
    uv_read_stop(stream);
    stream->data = stream;  // paused
  }
}

void on_connection(uv_stream_t* server, int status) {
  if (status < 0) return;
  auto* client = new uv_tcp_t;
  check(uv_tcp_init(server->loop, client), "uv_tcp_init");
  client->data = nullptr;  // reading
  if (uv_accept(server, reinterpret_cast<uv_stream_t*>(client)) != 0) {
    uv_close(reinterpret_cast<uv_handle_t*>(client), on_close);
    return;
  }
  uv_tcp_nodelay(client, 1);
  uv_read_start(reinterpret_cast<uv_stream_t*>(client), on_alloc, on_read);
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = "127.0.0.1";
  int port = 8888;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--host") == 0) {
      host = argv[i + 1];
    } else if (std::strcmp(argv[i], "--port") == 0) {
      port = std::atoi(argv[i + 1]);
    } else {
      std::fprintf(stderr, "usage: raw_libuv_server [--host H] [--port P]\n");
      return 2;
    }
  }
  uv_loop_t* loop = uv_default_loop();
  uv_tcp_t server;
  check(uv_tcp_init(loop, &server), "uv_tcp_init");
  sockaddr_storage address{};
  if (uv_ip4_addr(host.c_str(), port, reinterpret_cast<sockaddr_in*>(&address)) != 0)
    check(uv_ip6_addr(host.c_str(), port, reinterpret_cast<sockaddr_in6*>(&address)), host.c_str());
  check(uv_tcp_bind(&server, reinterpret_cast<const sockaddr*>(&address), 0), "bind");
  check(uv_listen(reinterpret_cast<uv_stream_t*>(&server), 1024, on_connection), "listen");
  return uv_run(loop, UV_RUN_DEFAULT);
}
