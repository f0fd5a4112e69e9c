#include "common/sys/shared_memory.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

namespace huginn::sys {

SharedMapping::SharedMapping(SharedMapping&& o) noexcept
    : addr_(std::exchange(o.addr_, nullptr)), size_(std::exchange(o.size_, 0)) {}

SharedMapping& SharedMapping::operator=(SharedMapping&& o) noexcept {
  if (this != &o) {
    reset();
    addr_ = std::exchange(o.addr_, nullptr);
    size_ = std::exchange(o.size_, 0);
  }
  return *this;
}

SharedMapping::~SharedMapping() { reset(); }

void SharedMapping::reset() {
  if (addr_) munmap(addr_, size_);
  addr_ = nullptr;
  size_ = 0;
}

namespace {

bool map_fd(int fd, size_t size, void** addr, std::string* error, int prot = PROT_READ | PROT_WRITE) {
  void* p = mmap(nullptr, size, prot, MAP_SHARED, fd, 0);
  if (p == MAP_FAILED) {
    *error = std::string("mmap: ") + std::strerror(errno);
    return false;
  }
  *addr = p;
  return true;
}

}  // namespace

bool SharedMapping::create(const char* name, size_t size, UniqueFd* fd, SharedMapping* out,
                           std::string* error) {
  if (size == 0) {
    *error = "shared memory of size 0";
    return false;
  }
  UniqueFd f(memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!f) {
    *error = std::string("memfd_create: ") + std::strerror(errno);
    return false;
  }
  if (ftruncate(f.get(), static_cast<off_t>(size)) != 0) {
    *error = std::string("ftruncate: ") + std::strerror(errno);
    return false;
  }
  if (fcntl(f.get(), F_ADD_SEALS, F_SEAL_GROW | F_SEAL_SHRINK | F_SEAL_SEAL) != 0) {
    *error = std::string("memfd seal: ") + std::strerror(errno);
    return false;
  }
  SharedMapping m;
  if (!map_fd(f.get(), size, &m.addr_, error)) return false;
  m.size_ = size;
  *fd = std::move(f);
  *out = std::move(m);
  return true;
}

bool SharedMapping::attach(int fd, size_t size, SharedMapping* out, std::string* error) {
  const int seals = fcntl(fd, F_GET_SEALS);
  constexpr int kNeed = F_SEAL_GROW | F_SEAL_SHRINK;
  if (seals < 0 || (seals & kNeed) != kNeed) {
    *error = "not a memfd sealed against growing and shrinking";
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    *error = "cannot stat the memfd";
    return false;
  }
  if (st.st_size < 0 || static_cast<uint64_t>(st.st_size) != size) {
    *error = "shared memory of " + std::to_string(st.st_size) + " bytes, expected " + std::to_string(size);
    return false;
  }
  SharedMapping m;
  if (!map_fd(fd, size, &m.addr_, error)) return false;
  m.size_ = size;
  *out = std::move(m);
  return true;
}

bool SharedMapping::map_read_only(int fd, size_t size, SharedMapping* out, std::string* error) {
  if (size == 0) {
    *error = "mapping of size 0";
    return false;
  }
  SharedMapping m;
  if (!map_fd(fd, size, &m.addr_, error, PROT_READ)) return false;
  m.size_ = size;
  *out = std::move(m);
  return true;
}

}  // namespace huginn::sys
