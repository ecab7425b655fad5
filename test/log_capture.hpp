// Test support: captures what the library logs through its "asyncuv" spdlog logger.
#pragma once

#include <spdlog/sinks/ringbuffer_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <string>
#include <vector>

namespace test_support {

/// Replaces the "asyncuv" logger with one recording into memory; restores the previous one.
class LogCapture {
 public:
  struct Record {
    spdlog::level::level_enum level;
    std::string text;
  };

  LogCapture() : previous_(spdlog::get("asyncuv")) {
    spdlog::drop("asyncuv");
    sink_ = std::make_shared<spdlog::sinks::ringbuffer_sink_mt>(128);
    auto logger = std::make_shared<spdlog::logger>("asyncuv", sink_);
    logger->set_level(spdlog::level::trace);
    spdlog::register_logger(logger);
  }
  ~LogCapture() {
    spdlog::drop("asyncuv");
    if (previous_) spdlog::register_logger(previous_);
  }
  LogCapture(const LogCapture&) = delete;
  LogCapture& operator=(const LogCapture&) = delete;

  std::vector<Record> records() const {
    std::vector<Record> out;
    for (const auto& m : sink_->last_raw())
      out.push_back({m.level, std::string(m.payload.data(), m.payload.size())});
    return out;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::shared_ptr<spdlog::sinks::ringbuffer_sink_mt> sink_;
};

}  // namespace test_support
