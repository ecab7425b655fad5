// Text descriptions of callbacks and their arguments, for Handle reprs and log lines.
// Only evaluated on error paths and in debug mode.
#pragma once

#include <concepts>
#include <ostream>
#include <sstream>
#include <string>
#include <string_view>
#include <type_traits>
#include <typeinfo>

namespace asyncuv::detail {

/// Demangles a C++ type name (typeid(T).name()).
std::string demangle(const char* mangled);

/// The readable name of T.
template <class T>
std::string type_name() {
  return demangle(typeid(T).name());
}

template <class T>
concept Streamable = requires(std::ostream& os, const T& v) {
  os << v;
};

/// Python-repr-like text for one callback argument: strings quoted, numbers as is, anything
/// streamable through operator<<, otherwise "<TypeName>".
template <class T>
std::string describe_value(const T& v) {
  using D = std::decay_t<T>;
  if constexpr (std::is_same_v<D, bool>) {
    return v ? "True" : "False";
  } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
    return "'" + std::string(std::string_view(v)) + "'";
  } else if constexpr (std::is_pointer_v<D> && !Streamable<D>) {
    return "<" + type_name<D>() + ">";
  } else if constexpr (Streamable<D>) {
    std::ostringstream os;
    os << v;
    return os.str();
  } else {
    return "<" + type_name<D>() + ">";
  }
}

}  // namespace asyncuv::detail
