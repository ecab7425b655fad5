// Load generator for the TLS echo benchmark (bench/tls/run.sh). One thread per connection,
// blocking sockets and OpenSSL (TLS 1.3, no certificate check: the servers' throwaway
// certificate is not what is measured).
//
//   tls_load_generator [--host H] [--port P] [--connections N] [--size S] [--seconds D]
//                      [--warmup W] [--wait T] [--server-pid PID]
//       N connections in request/response lock-step: each sends an S-byte message and waits
//       for the whole S-byte echo (checked byte for byte), then sends the next. After W seconds
//       of warm-up, D seconds are measured. Prints one "RESULT key=value ..." line: requests/s,
//       p50/p99 latency and, with --server-pid, the server's CPU time per request.
//   tls_load_generator --make-cert DIR
//       Writes a self-signed certificate (DIR/cert.pem) and key (DIR/key.pem) for the servers.
//
// Exit status: 0 on success, 2 on bad usage or a setup failure, 3 if the server misbehaved.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

struct Options {
  std::string host = "127.0.0.1";
  int port = 8443;
  int connections = 10;
  std::size_t size = 1024;
  double seconds = 5.0;
  double warmup = 1.0;
  double wait = 10.0;
  long server_pid = 0;
  std::string make_cert;
};

int make_cert(const std::string& dir) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), 86400L * 30);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("localhost"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert, cert, nullptr, nullptr, 0);
  X509_EXTENSION* san =
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, "DNS:localhost,IP:127.0.0.1");
  X509_add_ext(cert, san, -1);
  X509_EXTENSION_free(san);
  X509_sign(cert, key, EVP_sha256());
  FILE* c = std::fopen((dir + "/cert.pem").c_str(), "w");
  FILE* k = std::fopen((dir + "/key.pem").c_str(), "w");
  if (c == nullptr || k == nullptr) return 2;
  PEM_write_X509(c, cert);
  PEM_write_PrivateKey(k, key, nullptr, nullptr, 0, nullptr, nullptr);
  std::fclose(c);
  std::fclose(k);
  X509_free(cert);
  EVP_PKEY_free(key);
  return 0;
}

double cpu_seconds(long pid) {
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string text((std::istreambuf_iterator<char>(stat)), std::istreambuf_iterator<char>());
  auto close = text.rfind(')');
  if (close == std::string::npos) return -1;
  std::istringstream fields(text.substr(close + 2));
  std::string skip;
  for (int i = 3; i < 14; ++i)
    fields >> skip;
  double utime = 0, stime = 0;
  fields >> utime >> stime;
  return (utime + stime) / static_cast<double>(sysconf(_SC_CLK_TCK));
}

int connect_tcp(const Options& o) {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(o.port));
  inet_pton(AF_INET, o.host.c_str(), &addr.sin_addr);
  const auto give_up = Clock::now() + std::chrono::duration<double>(o.wait);
  for (;;) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) {
      int one = 1;
      ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
      return fd;
    }
    ::close(fd);
    if (Clock::now() > give_up) return -1;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}

struct Worker {
  std::vector<double> latencies;  // seconds, measured window only
  long requests = 0;
  bool failed = false;
  std::string error;
};

}  // namespace

int main(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&] {
      if (i + 1 >= argc) std::exit(2);
      return std::string(argv[++i]);
    };
    if (a == "--host")
      o.host = next();
    else if (a == "--port")
      o.port = std::stoi(next());
    else if (a == "--connections")
      o.connections = std::stoi(next());
    else if (a == "--size")
      o.size = std::stoul(next());
    else if (a == "--seconds")
      o.seconds = std::stod(next());
    else if (a == "--warmup")
      o.warmup = std::stod(next());
    else if (a == "--wait")
      o.wait = std::stod(next());
    else if (a == "--server-pid")
      o.server_pid = std::stol(next());
    else if (a == "--make-cert")
      o.make_cert = next();
    else {
      std::fprintf(stderr, "tls_load_generator: unknown option %s\n", a.c_str());
      return 2;
    }
  }
  if (!o.make_cert.empty()) return make_cert(o.make_cert);

  SSL_CTX* ctx = SSL_CTX_new(TLS_client_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
  SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, nullptr);

  std::string message(o.size, '\0');
  for (std::size_t i = 0; i < o.size; ++i)
    message[i] = static_cast<char>('a' + i % 26);

  std::atomic<int> phase{0};    // 0 warm-up, 1 measuring, 2 done
  std::atomic<int> settled{0};  // connections that finished their handshake (or failed)
  std::vector<Worker> workers(static_cast<std::size_t>(o.connections));
  std::vector<std::thread> threads;
  for (int c = 0; c < o.connections; ++c) {
    threads.emplace_back([&, c] {
      Worker& w = workers[static_cast<std::size_t>(c)];
      int fd = connect_tcp(o);
      if (fd < 0) {
        w.failed = true;
        w.error = "connect failed";
        ++settled;
        return;
      }
      SSL* ssl = SSL_new(ctx);
      SSL_set_fd(ssl, fd);
      SSL_set_tlsext_host_name(ssl, "localhost");
      if (SSL_connect(ssl) != 1) {
        w.failed = true;
        w.error = "handshake failed";
      }
      ++settled;
      std::string echo(o.size, '\0');
      while (!w.failed && phase.load(std::memory_order_relaxed) < 2) {
        const auto start = Clock::now();
        if (SSL_write(ssl, message.data(), static_cast<int>(message.size())) <= 0) {
          w.failed = true;
          w.error = "write failed";
          break;
        }
        std::size_t got = 0;
        while (got < o.size) {
          int n = SSL_read(ssl, echo.data() + got, static_cast<int>(o.size - got));
          if (n <= 0) {
            w.failed = true;
            w.error = "read failed";
            break;
          }
          got += static_cast<std::size_t>(n);
        }
        if (w.failed) break;
        if (echo != message) {
          w.failed = true;
          w.error = "wrong echo";
          break;
        }
        if (phase.load(std::memory_order_relaxed) == 1) {
          ++w.requests;
          w.latencies.push_back(std::chrono::duration<double>(Clock::now() - start).count());
        }
      }
      SSL_free(ssl);
      ::close(fd);
    });
  }
  // The warm-up starts once every connection is up (a server may take a while to start).
  while (settled.load() < o.connections)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  std::this_thread::sleep_for(std::chrono::duration<double>(o.warmup));
  const double cpu_before = o.server_pid ? cpu_seconds(o.server_pid) : 0;
  const auto begin = Clock::now();
  phase = 1;
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  phase = 2;
  const double elapsed = std::chrono::duration<double>(Clock::now() - begin).count();
  const double cpu_after = o.server_pid ? cpu_seconds(o.server_pid) : 0;
  for (auto& t : threads)
    t.join();
  SSL_CTX_free(ctx);

  long total = 0;
  std::vector<double> all;
  for (const Worker& w : workers) {
    if (w.failed) {
      std::fprintf(stderr, "tls_load_generator: %s\n", w.error.c_str());
      return 3;
    }
    total += w.requests;
    all.insert(all.end(), w.latencies.begin(), w.latencies.end());
  }
  std::sort(all.begin(), all.end());
  auto pct = [&](double p) {
    return all.empty() ? 0.0
                       : all[std::min(all.size() - 1, static_cast<std::size_t>(p * all.size()))];
  };
  std::printf("RESULT rps=%.1f p50_us=%.0f p99_us=%.0f", total / elapsed, pct(0.5) * 1e6,
              pct(0.99) * 1e6);
  if (o.server_pid && total > 0) {
    std::printf(" server_cpu_us_per_req=%.2f", (cpu_after - cpu_before) * 1e6 / total);
  }
  std::printf("\n");
  return 0;
}
