// The BIO between OpenSSL and an SSLProtocol's buffers: reading takes ciphertext from the
// protocol's incoming buffer (where the socket transport read it), writing appends to its
// outgoing buffer (which goes to the socket transport as one write). An empty incoming buffer
// is "retry later", never end of file, as a memory BIO.
#include <openssl/bio.h>

#include <climits>
#include <cstddef>
#include <new>

#include "asyncuv/detail/ssl_protocol.hpp"
#include "ssl_internal.hpp"

namespace asyncuv::ssl::detail {

namespace {

using asyncuv::detail::SSLProtocol;

SSLProtocol* owner(BIO* bio) {
  return static_cast<SSLProtocol*>(BIO_get_data(bio));
}

int bio_write(BIO* bio, const char* data, int len) {
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  try {
    owner(bio)->bio_write(data, static_cast<std::size_t>(len));
  } catch (const std::bad_alloc&) {
    return -1;
  }
  return len;
}

int bio_read(BIO* bio, char* out, int len) {
  BIO_clear_retry_flags(bio);
  if (len <= 0) return 0;
  std::size_t n = owner(bio)->bio_read(out, static_cast<std::size_t>(len));
  if (n == 0) {
    BIO_set_retry_read(bio);
    return -1;
  }
  return static_cast<int>(n);
}

long bio_ctrl(BIO* bio, int cmd, long, void*) {
  switch (cmd) {
    case BIO_CTRL_PENDING: {
      std::size_t n = owner(bio)->bio_pending();
      return n > LONG_MAX ? LONG_MAX : static_cast<long>(n);
    }
    case BIO_CTRL_WPENDING: {
      std::size_t n = owner(bio)->bio_out_pending();
      return n > LONG_MAX ? LONG_MAX : static_cast<long>(n);
    }
    case BIO_CTRL_FLUSH:
    case BIO_CTRL_DUP:
      return 1;
    default:
      return 0;
  }
}

int bio_create(BIO* bio) {
  BIO_set_init(bio, 1);
  return 1;
}

int bio_destroy(BIO*) {
  return 1;
}

/// The method table, made once per process (and kept for its lifetime).
BIO_METHOD* method() {
  static BIO_METHOD* const table = [] {
    BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "asyncuv sslproto");
    if (m == nullptr) return m;
    BIO_meth_set_write(m, &bio_write);
    BIO_meth_set_read(m, &bio_read);
    BIO_meth_set_ctrl(m, &bio_ctrl);
    BIO_meth_set_create(m, &bio_create);
    BIO_meth_set_destroy(m, &bio_destroy);
    return m;
  }();
  return table;
}

}  // namespace

BIO* make_protocol_bio(SSLProtocol* protocol) {
  BIO_METHOD* m = method();
  if (m == nullptr) return nullptr;
  BIO* bio = BIO_new(m);
  if (bio != nullptr) BIO_set_data(bio, protocol);
  return bio;
}

}  // namespace asyncuv::ssl::detail
