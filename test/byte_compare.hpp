// byte_difference(actual, expected): "" when the two byte strings are equal, otherwise a short
// description of the first difference. Data-carrying tests compare with it,
//
//   CHECK(test_support::byte_difference(got, sent) == "");
//
// so that a failure prints the sizes and where they part, never megabytes of payload (a
// 10 MiB comparison of zero bytes would print 10 MiB of NULs).
#pragma once

#include <algorithm>
#include <cstdio>
#include <string>
#include <string_view>

namespace test_support {

inline std::string byte_difference(std::string_view actual, std::string_view expected) {
  if (actual == expected) return "";
  auto at = static_cast<std::size_t>(
      std::mismatch(actual.begin(), actual.end(), expected.begin(), expected.end()).first -
      actual.begin());
  auto byte = [](std::string_view s, std::size_t i) -> std::string {
    if (i >= s.size()) return "end";
    char text[8];
    std::snprintf(text, sizeof text, "0x%02x", static_cast<unsigned char>(s[i]));
    return text;
  };
  return "actual " + std::to_string(actual.size()) + " bytes, expected " +
         std::to_string(expected.size()) + "; first difference at byte " + std::to_string(at) +
         " (" + byte(actual, at) + " vs " + byte(expected, at) + ")";
}

}  // namespace test_support
