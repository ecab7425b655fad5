// Command-line options shared by the network samples: `--name value` pairs with defaults,
// plus positional words (such as a mode: "server" / "client").
//
//   SampleArgs args(argc, argv, "usage: tcp_echo_client [--host H] [--port P]",
//                   {{"host", "127.0.0.1"}, {"port", "8888"}});
//   std::string host = args.get("host");
#pragma once

#include <cstdint>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <utility>
#include <vector>

class SampleArgs {
 public:
  /// Parses argv against the known options (name -> default value). Unknown options, a missing
  /// value or --help print `usage` and exit (status 2, or 0 for --help).
  SampleArgs(int argc, char** argv, std::string usage, std::map<std::string, std::string> defaults)
      : usage_(std::move(usage)), values_(std::move(defaults)) {
    for (int i = 1; i < argc; ++i) {
      std::string arg = argv[i];
      if (arg == "-h" || arg == "--help") fail(0);
      if (arg.rfind("--", 0) != 0) {
        positional_.push_back(arg);
        continue;
      }
      auto it = values_.find(arg.substr(2));
      if (it == values_.end() || i + 1 >= argc) fail(2);
      it->second = argv[++i];
    }
  }

  /// The value of option `name` (its default when not given).
  const std::string& get(const std::string& name) const { return values_.at(name); }

  /// Option `name` as a port number (exits with the usage text when it is not 0-65535).
  std::uint16_t port(const std::string& name = "port") const {
    char* end = nullptr;
    long value = std::strtol(get(name).c_str(), &end, 10);
    if (*end != '\0' || value < 0 || value > 65535) fail(2);
    return static_cast<std::uint16_t>(value);
  }

  /// The words that are not options, in order.
  const std::vector<std::string>& positional() const { return positional_; }

  /// Prints the usage text and exits with `status`.
  [[noreturn]] void fail(int status) const {
    (status == 0 ? std::cout : std::cerr) << usage_ << "\n";
    std::exit(status);
  }

 private:
  std::string usage_;
  std::map<std::string, std::string> values_;
  std::vector<std::string> positional_;
};
