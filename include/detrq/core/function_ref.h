// FunctionRef<R(A...)>: a non-owning reference to a callable, for code that calls it during the call it
// is passed to (the thread pool's loops, a GEMM's row callback). Unlike a std::function made from a lambda
// with captures, making one never allocates: a Session run allocates nothing on the heap. The callable
// must outlive every call through the reference.
#pragma once

#include <utility>

namespace detrq::core {

template <typename Signature>
class FunctionRef;

template <typename R, typename... Args>
class FunctionRef<R(Args...)> {
 public:
  template <typename F>
  FunctionRef(const F& fn) noexcept  // NOLINT(google-explicit-constructor): made at every call site
      : object_(&fn), call_([](const void* object, Args... args) -> R {
          return (*static_cast<const F*>(object))(std::forward<Args>(args)...);
        }) {}
  R operator()(Args... args) const { return call_(object_, std::forward<Args>(args)...); }

 private:
  const void* object_;
  R (*call_)(const void*, Args...);
};

}  // namespace detrq::core
