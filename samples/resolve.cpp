// resolve [host] [port]: prints what loop.getaddrinfo() answers (defaults: localhost 80).
#include <asyncuv/asyncuv.hpp>

#include <iostream>
#include <string>

namespace {

std::string family_name(int family) {
  switch (family) {
    case AF_INET:
      return "AF_INET";
    case AF_INET6:
      return "AF_INET6";
    case AF_UNIX:
      return "AF_UNIX";
    default:
      return std::to_string(family);
  }
}

std::string type_name(int type) {
  switch (type) {
    case SOCK_STREAM:
      return "SOCK_STREAM";
    case SOCK_DGRAM:
      return "SOCK_DGRAM";
    case SOCK_RAW:
      return "SOCK_RAW";
    default:
      return std::to_string(type);
  }
}

std::string proto_name(int proto) {
  switch (proto) {
    case IPPROTO_TCP:
      return "IPPROTO_TCP";
    case IPPROTO_UDP:
      return "IPPROTO_UDP";
    default:
      return std::to_string(proto);
  }
}

asyncuv::Task<int> resolve(std::string host, std::string port) {
  asyncuv::EventLoop& loop = asyncuv::get_running_loop();
  try {
    std::vector<asyncuv::AddrInfo> infos = co_await loop.getaddrinfo(host, port);
    std::cout << host << " port " << port << ": " << infos.size() << " result(s)\n";
    for (const asyncuv::AddrInfo& info : infos) {
      std::cout << "  " << family_name(info.family) << "  " << type_name(info.type) << "  "
                << proto_name(info.proto) << "  " << info.address.to_string() << '\n';
    }
    co_return 0;
  } catch (const asyncuv::GaiError& e) {
    std::cerr << "getaddrinfo(" << host << ", " << port << ") failed: " << e.what() << '\n';
    co_return 1;
  }
}

}  // namespace

int main(int argc, char** argv) {
  std::string host = argc > 1 ? argv[1] : "localhost";
  std::string port = argc > 2 ? argv[2] : "80";
  return asyncuv::run(resolve(host, port));
}
