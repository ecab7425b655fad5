// contextvars with asyncuv: a request id set once per request is seen by everything the
// request's task does afterwards (the coroutines it awaits, the tasks it creates, the
// callbacks it schedules) without passing it around, and never by another request. The log
// helper reads it, as a logging filter reading a ContextVar would in asyncio.
#include <asyncuv/asyncuv.hpp>

#include <iostream>
#include <string>

namespace {

asyncuv::ContextVar<std::string> request_id("request_id", "-");

void log(const std::string& what) {
  std::cout << "[" << request_id.get() << "] " << what << std::endl;
}

asyncuv::Task<std::string> query_database(int n) {
  log("querying the database");
  co_await asyncuv::sleep(0.01 * n);
  co_return "row " + std::to_string(n);
}

asyncuv::Task<void> audit(std::string row) {
  // A task created by the request: it started with a copy of the request's context.
  co_await asyncuv::sleep(0);
  log("audited " + row);
}

asyncuv::Task<std::string> handle_request(int n) {
  request_id.set("req-" + std::to_string(n));  // in this task's context only
  log("started");
  std::string row = co_await query_database(n);
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  asyncuv::Task<void> audit_task = loop.create_task(audit(row));
  // A callback: it runs in a copy of the context taken now.
  loop.call_soon([] { log("callback scheduled by the request"); });
  co_await audit_task;
  log("done");
  co_return request_id.get();
}

asyncuv::Task<int> serve() {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  log("server starting");
  std::vector<asyncuv::Task<std::string>> requests;
  for (int n = 1; n <= 3; ++n)
    requests.push_back(loop.create_task(handle_request(n)));
  int mismatches = 0;
  for (int n = 1; n <= 3; ++n) {
    std::string id = co_await requests[n - 1];
    if (id != "req-" + std::to_string(n)) ++mismatches;
  }
  log("server done: the requests' ids never reached it");
  co_return mismatches + (request_id.get() == "-" ? 0 : 1);
}

}  // namespace

int main() {
  return asyncuv::run(serve());
}
