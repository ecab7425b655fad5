// DnsService: uv_getaddrinfo / uv_getnameinfo requests tied to Futures.
//
// Each request is heap-allocated and freed in its libuv callback, whatever happened meanwhile:
// the Future may have been cancelled or dropped, the loop closed or destroyed. The request
// holds the Future's state until the callback (or until the loop closes); the state points
// back at the request only to uv_cancel it, and forgets it as soon as the request ends.
#include "asyncuv/detail/dns_service.hpp"

#include <poll.h>
#include <uv.h>

#include <algorithm>
#include <climits>
#include <cstdint>
#include <memory>
#include <string>
#include <utility>

#include "asyncuv/dns.hpp"
#include "asyncuv/futures.hpp"

namespace asyncuv::detail {

namespace {

/// The Future's state: cancelling it also cancels the libuv request, if no worker has
/// started it yet (a running one finishes, and its result is dropped).
template <class T>
class ResolveState final : public FutureValue<T> {
 public:
  explicit ResolveState(EventLoop& loop) : FutureValue<T>(loop) {}

  bool cancel(std::string message) override {
    if (!FutureValue<T>::cancel(std::move(message))) return false;
    if (request != nullptr) uv_cancel(request);
    return true;
  }

  uv_req_t* request = nullptr;  // while the request is in flight and attached
};

/// How long close() lets a loop that owns its uv_loop_t wait for resolutions already running.
constexpr std::uint64_t kCloseWaitNs = 10'000'000'000;

std::vector<AddrInfo> to_list(const addrinfo* res) {
  std::vector<AddrInfo> out;
  for (const addrinfo* ai = res; ai != nullptr; ai = ai->ai_next) {
    out.push_back(AddrInfo{ai->ai_family, ai->ai_socktype, ai->ai_protocol,
                           ai->ai_canonname != nullptr ? ai->ai_canonname : "",
                           SockAddr(ai->ai_addr, static_cast<socklen_t>(ai->ai_addrlen))});
  }
  return out;
}

}  // namespace

/// Keeps the last iterations of a closing loop (EventLoop::close runs its uv_loop_t a few times
/// before uv_loop_close) from racing past resolutions still running in worker threads: a
/// prepare handle that blocks on the loop's backend fd until something is ready for libuv to
/// dispatch (the thread pool's completion signal), at most until a deadline.
struct CloseDrain {
  uv_prepare_t prepare{};
  std::size_t remaining = 0;
  std::uint64_t deadline = 0;  // uv_hrtime() nanoseconds
  bool polled_once = false;

  static CloseDrain* start(uv_loop_t* loop, std::size_t count) noexcept {
    if (uv_backend_fd(loop) < 0) return nullptr;  // no pollable backend: nothing to wait on
    auto* drain = new (std::nothrow) CloseDrain;
    if (drain == nullptr) return nullptr;
    if (uv_prepare_init(loop, &drain->prepare) != 0) {
      delete drain;
      return nullptr;
    }
    drain->prepare.data = drain;
    drain->remaining = count;
    drain->deadline = uv_hrtime() + kCloseWaitNs;
    uv_prepare_start(&drain->prepare, &CloseDrain::on_prepare);
    return drain;
  }

  static void on_prepare(uv_prepare_t* handle) {
    auto* self = static_cast<CloseDrain*>(handle->data);
    // libuv registers new fds with the kernel in its poll phase; until one poll has run, the
    // thread pool's completion signal may not be watched yet.
    if (!self->polled_once) {
      self->polled_once = true;
      return;
    }
    std::uint64_t now = uv_hrtime();
    if (now >= self->deadline) return;
    std::uint64_t left_ms = (self->deadline - now) / 1'000'000 + 1;
    pollfd pfd{uv_backend_fd(handle->loop), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<std::uint64_t>(left_ms, INT_MAX)));
  }

  /// One request of the closed loop got its callback.
  void one_done() noexcept {
    if (--remaining != 0) return;
    uv_close(reinterpret_cast<uv_handle_t*>(&prepare),
             [](uv_handle_t* h) { delete static_cast<CloseDrain*>(h->data); });
  }
};

/// The untyped part of a request: its place in the service's list, or in a closing drain.
struct DnsRequest {
  virtual ~DnsRequest() = default;
  /// The libuv request (for uv_cancel).
  virtual uv_req_t* uv_request() noexcept = 0;
  /// Forgets the Future (the loop is closing: it stays pending, as asyncio leaves it).
  virtual void detach() noexcept = 0;

  /// Called first thing in the libuv callback.
  void ended() noexcept {
    if (service != nullptr) service->unlink(this);
    if (drain != nullptr) drain->one_done();
  }

  DnsService* service = nullptr;  // null once detached from the loop
  CloseDrain* drain = nullptr;    // set when the loop closed with this request in flight
  DnsRequest* prev = nullptr;
  DnsRequest* next = nullptr;
};

namespace {

template <class Req, class T>
struct TypedRequest final : DnsRequest {
  Req req{};
  std::shared_ptr<ResolveState<T>> state;

  uv_req_t* uv_request() noexcept override { return reinterpret_cast<uv_req_t*>(&req); }

  void detach() noexcept override {
    if (state == nullptr) return;
    state->request = nullptr;
    state.reset();
  }

  /// Ends the request: completes the Future (unless it is gone, cancelled or detached) with
  /// make()'s value for status 0, else with the resolver error.
  template <class Make>
  void complete(int status, Make&& make) noexcept {
    ended();
    std::shared_ptr<ResolveState<T>> s = std::move(state);
    if (s == nullptr) return;
    s->request = nullptr;
    if (s->done()) return;
    try {
      if (status == 0) {
        s->set_result(make());
      } else if (status == UV_EAI_CANCELED) {
        s->cancel({});
      } else {
        s->set_exception(make_gai_error(status));
      }
    } catch (...) {
      // Building the result failed (std::bad_alloc): the Future carries that instead.
      try {
        if (!s->done()) s->set_exception(std::current_exception());
      } catch (...) {
      }
    }
  }
};

using AddrRequest = TypedRequest<uv_getaddrinfo_t, std::vector<AddrInfo>>;
using NameRequest = TypedRequest<uv_getnameinfo_t, NameInfo>;

void on_addrinfo(uv_getaddrinfo_t* req, int status, addrinfo* res) {
  std::unique_ptr<AddrRequest> request(static_cast<AddrRequest*>(req->data));
  struct FreeList {
    addrinfo* list;
    ~FreeList() { uv_freeaddrinfo(list); }
  } free_list{res};
  request->complete(status, [res] { return to_list(res); });
}

void on_nameinfo(uv_getnameinfo_t* req, int status, const char* host, const char* service) {
  std::unique_ptr<NameRequest> request(static_cast<NameRequest*>(req->data));
  request->complete(status, [host, service] {
    return NameInfo{host != nullptr ? host : "", service != nullptr ? service : ""};
  });
}

/// Throws what a request libuv refused to start deserves.
[[noreturn]] void throw_start_error(int rc, const char* what, const char* host) {
  if (rc == UV_EINVAL) {
    std::string text = std::string(what) + "(): invalid argument";
    if (host != nullptr) text += " (host name '" + std::string(host) + "')";
    throw ValueError(text);
  }
  std::rethrow_exception(make_gai_error(rc));
}

}  // namespace

DnsService::~DnsService() {
  while (head_ != nullptr) {
    DnsRequest* r = head_;
    unlink(r);
    r->detach();
    uv_cancel(r->uv_request());
  }
}

Future<std::vector<AddrInfo>> DnsService::getaddrinfo(const char* host, const char* port,
                                                      const addrinfo& hints) {
  auto request = std::make_unique<AddrRequest>();
  request->state = std::make_shared<ResolveState<std::vector<AddrInfo>>>(loop_);
  request->req.data = request.get();
  int rc = uv_getaddrinfo(loop_.uv_loop(), &request->req, &on_addrinfo, host, port, &hints);
  if (rc != 0) throw_start_error(rc, "getaddrinfo", host);
  request->state->request = request->uv_request();
  Future<std::vector<AddrInfo>> future(request->state);
  link(request.release());
  return future;
}

Future<NameInfo> DnsService::getnameinfo(const SockAddr& address, int flags) {
  auto request = std::make_unique<NameRequest>();
  request->state = std::make_shared<ResolveState<NameInfo>>(loop_);
  request->req.data = request.get();
  int rc = uv_getnameinfo(loop_.uv_loop(), &request->req, &on_nameinfo, address.get(), flags);
  if (rc != 0) throw_start_error(rc, "getnameinfo", nullptr);
  request->state->request = request->uv_request();
  Future<NameInfo> future(request->state);
  link(request.release());
  return future;
}

void DnsService::close() noexcept {
  if (head_ == nullptr) return;
  // Requests cancelled here still get their callback (with UV_EAI_CANCELED); running ones get
  // theirs when the worker is done. Either way the request frees itself then.
  CloseDrain* drain = loop_.owns_uv_loop() ? CloseDrain::start(loop_.uv_loop(), count_) : nullptr;
  while (head_ != nullptr) {
    DnsRequest* r = head_;
    unlink(r);
    r->drain = drain;
    r->detach();
    uv_cancel(r->uv_request());
  }
}

void DnsService::link(DnsRequest* r) noexcept {
  r->service = this;
  r->prev = nullptr;
  r->next = head_;
  if (head_ != nullptr) head_->prev = r;
  head_ = r;
  ++count_;
}

void DnsService::unlink(DnsRequest* r) noexcept {
  if (r->prev != nullptr) {
    r->prev->next = r->next;
  } else {
    head_ = r->next;
  }
  if (r->next != nullptr) r->next->prev = r->prev;
  r->prev = r->next = nullptr;
  r->service = nullptr;
  --count_;
}

}  // namespace asyncuv::detail
