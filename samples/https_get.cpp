// A minimal HTTPS GET with the streams API over TLS: connects to HOST:443, verifying its
// certificate and name against the system's CA store, sends "GET PATH HTTP/1.1" and prints
// the status line and the headers.
//
//   https_get HOST [PATH] [--port 443]
#include <asyncuv/asyncuv.hpp>
#include <asyncuv/ssl.hpp>

#include <exception>
#include <iostream>
#include <string>
#include <utility>

#include "sample_args.hpp"

namespace {

asyncuv::Task<void> get(std::string host, std::uint16_t port, std::string path) {
  asyncuv::ConnectionOptions options;
  options.ssl = asyncuv::ssl::create_default_context();  // verifies, checks the host name
  auto [reader, writer] = co_await asyncuv::open_connection(host, port, std::move(options));
  writer.write("GET " + path + " HTTP/1.1\r\nHost: " + host +
               "\r\nUser-Agent: asyncuv-https_get\r\nConnection: close\r\n\r\n");
  for (;;) {
    std::string line = co_await reader.readline();
    if (line.empty() || line == "\r\n" || line == "\n") break;  // end of the headers
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r'))
      line.pop_back();
    std::cout << line << std::endl;
  }
  writer.close();
  co_await writer.wait_closed();
}

}  // namespace

int main(int argc, char** argv) {
  SampleArgs args(argc, argv, "usage: https_get HOST [PATH] [--port 443]", {{"port", "443"}});
  if (args.positional().empty() || args.positional().size() > 2) args.fail(2);
  const std::string host = args.positional()[0];
  const std::string path = args.positional().size() > 1 ? args.positional()[1] : "/";
  try {
    asyncuv::run(get(host, args.port(), path));
  } catch (const asyncuv::ssl::SSLCertVerificationError& e) {
    std::cerr << "https_get: " << host << ": certificate rejected: " << e.what() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "https_get: cannot get https://" << host << path << ": " << e.what() << std::endl;
    return 1;
  }
}
