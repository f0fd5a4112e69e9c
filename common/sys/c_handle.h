// unique_ptr aliases that own C handles: CHandle<SSL, SSL_free> etc.
#pragma once

#include <memory>

namespace huginn::sys {

template <auto Fn>
struct CDeleter {
  template <typename T>
  void operator()(T* p) const {
    if (p) Fn(p);
  }
};

template <typename T, auto Fn>
using CHandle = std::unique_ptr<T, CDeleter<Fn>>;

}  // namespace huginn::sys
