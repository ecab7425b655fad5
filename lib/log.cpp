// The "asyncuv" spdlog logger.
#include "asyncuv/log.hpp"

#include <spdlog/sinks/stdout_sinks.h>
#include <spdlog/spdlog.h>

namespace asyncuv {

std::shared_ptr<spdlog::logger> logger() {
  static std::mutex mutex;
  std::lock_guard lock(mutex);
  if (auto existing = spdlog::get("asyncuv")) return existing;
  auto created = std::make_shared<spdlog::logger>(
      "asyncuv", std::make_shared<spdlog::sinks::stderr_sink_mt>());
  spdlog::register_logger(created);
  return created;
}

}  // namespace asyncuv
