// Demangling for callback descriptions.
#include "asyncuv/detail/describe.hpp"

#include <cstdlib>
#include <memory>

#if defined(__GNUG__)
#include <cxxabi.h>
#endif

namespace asyncuv::detail {

std::string demangle(const char* mangled) {
#if defined(__GNUG__)
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> text(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  if (status == 0 && text) return text.get();
#endif
  return mangled;
}

}  // namespace asyncuv::detail
