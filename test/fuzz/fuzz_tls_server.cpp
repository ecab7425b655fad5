// Fuzz target: asyncuv's TLS server side fed arbitrary bytes. The first input byte picks when:
//   0: instead of a ClientHello (records before any handshake);
//   1: after a real handshake with an OpenSSL client (raw records inside the session);
//   2: after a real handshake, first as application data through the client (which the server
//      must echo back exactly), then as raw records.
// The rest arrives in chunks of input-chosen sizes. The server may fail the connection but
// must not crash, leak (LeakSanitizer) or hit undefined behaviour.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>

#include "fuzz_tls_support.hpp"

namespace {

fuzz_support::SelfSigned* certs = nullptr;
std::shared_ptr<asyncuv::ssl::Context>* server_context = nullptr;
SSL_CTX* client_ctx = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz_support::quiet_logs();
  // Made once (a key pair per input would be most of the time), kept to the end on purpose.
  certs = new fuzz_support::SelfSigned();
  server_context = new std::shared_ptr<asyncuv::ssl::Context>(
      asyncuv::ssl::create_default_context(asyncuv::ssl::Purpose::CLIENT_AUTH));
  (*server_context)->load_cert_chain(certs->cert, certs->key);
  client_ctx = SSL_CTX_new(TLS_client_method());
  fuzz_support::require(client_ctx != nullptr, "SSL_CTX_new");
  SSL_CTX_set_verify(client_ctx, SSL_VERIFY_NONE, nullptr);
  std::atexit([] {
    SSL_CTX_free(client_ctx);
    delete server_context;
    delete certs;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const int mode = in.ConsumeIntegralInRange<int>(0, 2);
  asyncuv::EventLoop loop;
  {
    fuzz_support::TlsPair pair(loop, *server_context, true);
    const int fd = pair.ours.fileno();
    if (mode > 0) {
      fuzz_support::MemoryPeer client(client_ctx, false);
      bool done = client.handshake(loop, fd, [&] { return pair.app->made; });
      fuzz_support::require(done, "a real handshake did not complete");
      if (mode == 2) {
        std::string plain = in.ConsumeRandomLengthString(4096);
        if (!plain.empty()) {
          SSL_write(client.get(), plain.data(), static_cast<int>(plain.size()));
          fuzz_support::send_all(loop, fd, client.outgoing());
          std::string echoed;
          for (int round = 0; round < 100 && echoed.size() < plain.size(); ++round) {
            fuzz_support::settle(loop);
            client.incoming(fuzz_support::recv_available(fd));
            echoed += client.read_plain();
          }
          if (pair.app->received != plain || echoed != plain) {
            std::fprintf(stderr, "echo through TLS differs: sent %zu, server got %zu, back %zu\n",
                         plain.size(), pair.app->received.size(), echoed.size());
            std::abort();
          }
        }
      }
    }
    while (in.remaining_bytes() > 0) {
      // The length comes from the input's end, the bytes from its front.
      std::string chunk = in.ConsumeBytesAsString(in.ConsumeIntegralInRange<std::size_t>(1, 2048));
      fuzz_support::send_all(loop, fd, chunk);
      fuzz_support::settle(loop);
      (void)fuzz_support::recv_available(fd);
    }
    pair.finish(loop);
  }
  loop.close();
  return 0;
}
