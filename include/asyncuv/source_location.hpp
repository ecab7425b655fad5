// asyncuv::source_location: std::source_location where the standard library offers it, else
// the same interface built on the compiler builtins (__builtin_FILE, __builtin_LINE,
// __builtin_FUNCTION), which g++ and clang both have. libstdc++ 12 declares
// std::source_location only for compilers with __builtin_source_location, so clang 14 with
// libstdc++ 12 takes the fallback; g++ 12, clang 16 and libc++ 16 use the standard type.
#pragma once

#include <version>

#if defined(__cpp_lib_source_location) && __cpp_lib_source_location >= 201907L
#include <source_location>
#endif

#include <cstdint>

namespace asyncuv {

#if defined(__cpp_lib_source_location) && __cpp_lib_source_location >= 201907L

/// Where a callback was scheduled (Handle::source_location()).
using source_location = std::source_location;

#else

/// Where a callback was scheduled: std::source_location's interface over the compiler
/// builtins.
class source_location {
 public:
  constexpr source_location() noexcept = default;

  /// The caller's location when used as a default argument, as std::source_location::current().
  static constexpr source_location current(
      const char* file = __builtin_FILE(), const char* function = __builtin_FUNCTION(),
      std::uint_least32_t line = __builtin_LINE(),
      std::uint_least32_t column = __builtin_COLUMN()) noexcept {
    source_location where;
    where.file_ = file;
    where.function_ = function;
    where.line_ = line;
    where.column_ = column;
    return where;
  }

  constexpr std::uint_least32_t line() const noexcept { return line_; }
  constexpr std::uint_least32_t column() const noexcept { return column_; }
  constexpr const char* file_name() const noexcept { return file_; }
  constexpr const char* function_name() const noexcept { return function_; }

 private:
  const char* file_ = "";
  const char* function_ = "";
  std::uint_least32_t line_ = 0;
  std::uint_least32_t column_ = 0;
};

#endif

}  // namespace asyncuv
