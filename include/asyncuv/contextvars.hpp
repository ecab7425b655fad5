// contextvars for asyncuv: ContextVar<T> and Token<T> over asyncuv::Context
// (<asyncuv/context.hpp>). A value set in a task or callback is seen by that task or callback
// and by whatever it schedules afterwards (they copy the context), never by its creator or its
// siblings: asyncio's rules, which the loop implements (handles, tasks, future callbacks).
//
// Values are stored type-erased as std::shared_ptr<const T>: a copied context shares them.
// get() returns a copy of T (a reference could dangle once the context changes); store a
// std::shared_ptr<U> in the var for large objects.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "asyncuv/context.hpp"
#include "asyncuv/exceptions.hpp"

namespace asyncuv {

template <class T>
class Token;

/// contextvars.ContextVar. Copies refer to the same variable (Python references).
template <class T>
class ContextVar {
 public:
  /// ContextVar(name): get() without a default throws LookupError while unset.
  explicit ContextVar(std::string name) : core_(std::make_shared<Core>(std::move(name))) {}
  /// ContextVar(name, default=value).
  ContextVar(std::string name, T default_value)
      : core_(std::make_shared<Core>(std::move(name), std::move(default_value))) {}

  const std::string& name() const noexcept { return core_->name; }

  /// The value in the current context, else the var's default, else LookupError.
  T get() const {
    if (const auto* v = detail::context_find(detail::current_context(), core_->id)) {
      return *static_cast<const T*>(v->get());
    }
    if (core_->default_value) return *core_->default_value;
    throw LookupError(repr());
  }
  /// get(default): the value in the current context, else `default_value`.
  T get(T default_value) const {
    if (const auto* v = detail::context_find(detail::current_context(), core_->id)) {
      return *static_cast<const T*>(v->get());
    }
    return default_value;
  }

  /// Sets the value in the current context; the Token restores the previous one.
  Token<T> set(T value) const {
    std::shared_ptr<const void> old;
    detail::ContextImpl* context =
        detail::context_set(core_->id, std::make_shared<const T>(std::move(value)), &old);
    return Token<T>(*this, std::move(old), detail::ContextRef::share(context));
  }

  /// Restores the value `token` saw before its set() (or unset). RuntimeError("<Token ...> has
  /// already been used once"); ValueError("... was created by a different ContextVar") or
  /// ("... was created in a different Context"), in CPython's order.
  void reset(const Token<T>& token) const {
    auto& state = *token.state_;
    if (state.used) throw RuntimeError(token.repr() + " has already been used once");
    if (state.var.core_ != core_) {
      throw ValueError(token.repr() + " was created by a different ContextVar");
    }
    if (state.context.get() != detail::current_context()) {
      throw ValueError(token.repr() + " was created in a different Context");
    }
    if (state.old) {
      detail::context_set(core_->id, state.old, nullptr);
    } else {
      detail::context_remove(core_->id);
    }
    state.used = true;
  }

  /// "<ContextVar name='request_id' default=...>" (without an address).
  std::string repr() const { return "<ContextVar name='" + core_->name + "'>"; }

  friend bool operator==(const ContextVar& a, const ContextVar& b) noexcept {
    return a.core_ == b.core_;
  }

  /// The variable's process-unique id (the key in a context).
  std::uint64_t id() const noexcept { return core_->id; }

 private:
  friend class Token<T>;
  struct Core {
    explicit Core(std::string n) : id(detail::new_context_var_id()), name(std::move(n)) {}
    Core(std::string n, T d)
        : id(detail::new_context_var_id()), name(std::move(n)), default_value(std::move(d)) {}
    std::uint64_t id;
    std::string name;
    std::optional<T> default_value;
  };
  std::shared_ptr<const Core> core_;
};

/// contextvars.Token: what ContextVar::set returns, for ContextVar::reset. Copies share the
/// "used" state.
template <class T>
class Token {
 public:
  /// Token.MISSING: old_value() when the var had no value before set().
  static constexpr std::nullopt_t MISSING = std::nullopt;

  /// The variable that created the token.
  const ContextVar<T>& var() const noexcept { return state_->var; }
  /// The value before set(), or MISSING (std::nullopt).
  std::optional<T> old_value() const {
    if (!state_->old) return MISSING;
    return *static_cast<const T*>(state_->old.get());
  }
  /// True once reset() used it.
  bool used() const noexcept { return state_->used; }
  /// "<Token var=<ContextVar name='x'>>", "<Token used var=...>".
  std::string repr() const {
    return std::string("<Token ") + (state_->used ? "used " : "") + "var=" + state_->var.repr() +
           ">";
  }

 private:
  friend class ContextVar<T>;
  struct State {
    ContextVar<T> var;
    std::shared_ptr<const void> old;
    detail::ContextRef context;
    bool used = false;
  };
  Token(ContextVar<T> var, std::shared_ptr<const void> old, detail::ContextRef context)
      : state_(std::make_shared<State>(State{std::move(var), std::move(old), std::move(context)})) {
  }

  std::shared_ptr<State> state_;
};

template <class T>
bool Context::contains(const ContextVar<T>& var) const {
  return detail::context_find(impl(), var.id()) != nullptr;
}

template <class T>
T Context::get(const ContextVar<T>& var, T default_value) const {
  if (const auto* v = detail::context_find(impl(), var.id())) {
    return *static_cast<const T*>(v->get());
  }
  return default_value;
}

}  // namespace asyncuv
