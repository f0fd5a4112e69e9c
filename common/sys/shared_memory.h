// Fixed-size shared memory between the supervisor and its workers: a memfd
// whose size is sealed (F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) but whose
// bytes stay writable, mapped MAP_SHARED by every process that holds it.
// The receiver checks the seals and the exact size before mapping, so a
// peer can never make a mapping shorter than what the reader indexes (no
// SIGBUS) or longer than it expects.
#pragma once

#include <cstddef>
#include <string>

#include "common/sys/unique_fd.h"

namespace huginn::sys {

// Owns one MAP_SHARED mapping (munmap on destruction): read-write for the
// sealed memfds below, read-only for map_read_only().
class SharedMapping {
 public:
  SharedMapping() = default;
  SharedMapping(const SharedMapping&) = delete;
  SharedMapping& operator=(const SharedMapping&) = delete;
  SharedMapping(SharedMapping&& o) noexcept;
  SharedMapping& operator=(SharedMapping&& o) noexcept;
  ~SharedMapping();

  void* data() const { return addr_; }
  size_t size() const { return size_; }
  explicit operator bool() const { return addr_ != nullptr; }

  // memfd_create(MFD_CLOEXEC | MFD_ALLOW_SEALING), ftruncate(size) (zero
  // filled), seal against growing, shrinking and further sealing, map.
  static bool create(const char* name, size_t size, UniqueFd* fd, SharedMapping* out, std::string* error);
  // Maps `fd` read-write after checking that it carries F_SEAL_GROW and
  // F_SEAL_SHRINK and is exactly `size` bytes long.
  static bool attach(int fd, size_t size, SharedMapping* out, std::string* error);
  // Maps the first `size` bytes of `fd` PROT_READ, MAP_SHARED (e.g. a frozen
  // BPF_F_MMAPABLE array: the mapping cannot be made writable later).
  static bool map_read_only(int fd, size_t size, SharedMapping* out, std::string* error);

 private:
  void reset();
  void* addr_ = nullptr;
  size_t size_ = 0;
};

}  // namespace huginn::sys
