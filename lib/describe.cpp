// Demangling for callback descriptions.
#include "asyncuv/detail/describe.hpp"

#include <cstdlib>
#include <memory>
#include <string_view>

#if defined(__GNUG__)
#include <cxxabi.h>
#endif

namespace asyncuv::detail {
namespace {

// libc++ puts the standard library in an inline namespace (std::__1::function); the name a
// user wrote, and what libstdc++ prints, is std::function. Reprs read the same on both.
std::string without_inline_std_namespace(std::string name) {
  constexpr std::string_view inline_ns = "std::__1::";
  for (std::size_t at = name.find(inline_ns); at != std::string::npos;
       at = name.find(inline_ns, at + 5))
    name.erase(at + 5, inline_ns.size() - 5);  // keep "std::", drop "__1::"
  return name;
}

}  // namespace

std::string demangle(const char* mangled) {
#if defined(__GNUG__)
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> text(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  if (status == 0 && text) return without_inline_std_namespace(text.get());
#endif
  return mangled;
}

}  // namespace asyncuv::detail
