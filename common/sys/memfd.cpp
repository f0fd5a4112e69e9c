#include "common/sys/memfd.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace huginn::sys {

UniqueFd make_sealed_memfd(const char* name, std::string_view bytes, std::string* error) {
  UniqueFd fd(memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING));
  if (!fd) {
    *error = std::string("memfd_create: ") + std::strerror(errno);
    return {};
  }
  size_t off = 0;
  while (off < bytes.size()) {
    const ssize_t n = write(fd.get(), bytes.data() + off, bytes.size() - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = std::string("memfd write: ") + std::strerror(errno);
      return {};
    }
    off += static_cast<size_t>(n);
  }
  if (fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_WRITE | F_SEAL_SEAL) != 0) {
    *error = std::string("memfd seal: ") + std::strerror(errno);
    return {};
  }
  return fd;
}

bool read_sealed_memfd(int fd, size_t max_bytes, std::string* out, std::string* error) {
  const int seals = fcntl(fd, F_GET_SEALS);
  constexpr int kNeed = F_SEAL_WRITE | F_SEAL_SHRINK | F_SEAL_GROW;
  if (seals < 0 || (seals & kNeed) != kNeed) {
    *error = "not a sealed memfd";
    return false;
  }
  struct stat st {};
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < 0) {
    *error = "cannot stat the memfd";
    return false;
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    *error =
        "memfd of " + std::to_string(st.st_size) + " bytes is over the limit of " + std::to_string(max_bytes);
    return false;
  }
  std::string text(static_cast<size_t>(st.st_size), '\0');
  size_t off = 0;
  while (off < text.size()) {
    const ssize_t n = pread(fd, text.data() + off, text.size() - off, static_cast<off_t>(off));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) {
      *error = n < 0 ? std::string("memfd read: ") + std::strerror(errno) : std::string("memfd read: short");
      return false;
    }
    off += static_cast<size_t>(n);
  }
  *out = std::move(text);
  return true;
}

}  // namespace huginn::sys
