// Fuzz target: asyncuv's TLS client side fed arbitrary server replies. The first input byte
// picks when: 0: as the reply to its ClientHello; 1: after a real handshake with an OpenSSL
// server (raw records inside the session). The bytes arrive in chunks of input-chosen sizes.
// The client may fail the connection but must not crash, leak or hit undefined behaviour.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstdlib>

#include "fuzz_tls_support.hpp"

namespace {

fuzz_support::SelfSigned* certs = nullptr;
std::shared_ptr<asyncuv::ssl::Context>* client_context = nullptr;
SSL_CTX* server_ctx = nullptr;

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  fuzz_support::quiet_logs();
  certs = new fuzz_support::SelfSigned();
  // The client does not verify: the replies are arbitrary, and the real server is self-signed.
  client_context = new std::shared_ptr<asyncuv::ssl::Context>(
      asyncuv::ssl::create_default_context(asyncuv::ssl::Purpose::SERVER_AUTH));
  (*client_context)->set_check_hostname(false);
  (*client_context)->set_verify_mode(asyncuv::ssl::VerifyMode::CERT_NONE);
  server_ctx = SSL_CTX_new(TLS_server_method());
  fuzz_support::require(server_ctx != nullptr, "SSL_CTX_new");
  fuzz_support::require(
      SSL_CTX_use_certificate_file(server_ctx, certs->cert.c_str(), SSL_FILETYPE_PEM) == 1 &&
          SSL_CTX_use_PrivateKey_file(server_ctx, certs->key.c_str(), SSL_FILETYPE_PEM) == 1,
      "server certificate");
  std::atexit([] {
    SSL_CTX_free(server_ctx);
    delete client_context;
    delete certs;
  });
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  FuzzedDataProvider in(data, size);
  const int mode = in.ConsumeIntegralInRange<int>(0, 1);
  asyncuv::EventLoop loop;
  {
    fuzz_support::TlsPair pair(loop, *client_context, false);
    const int fd = pair.ours.fileno();
    if (mode == 1) {
      fuzz_support::MemoryPeer server(server_ctx, true);
      server.incoming(fuzz_support::recv_available(fd));  // the ClientHello
      bool done = server.handshake(loop, fd, [&] { return pair.app->made; });
      fuzz_support::require(done, "a real handshake did not complete");
    } else {
      (void)fuzz_support::recv_available(fd);  // the ClientHello, answered with the input
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
