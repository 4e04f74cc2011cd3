#include "tests/sim/unsynced_images.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

namespace commitd::sim {

Status UnsyncedImages::CaptureBefore(const std::string& path) {
  if (count_ == images_.size()) images_.emplace_back();
  std::string& image = images_[count_];
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return Status::IoError("cannot open " + path + ": " + std::strerror(errno));
  struct stat st {};
  bool ok = ::fstat(fd, &st) == 0;
  image.resize(ok ? static_cast<std::size_t>(st.st_size) : 0);
  std::size_t done = 0;
  while (ok && done < image.size()) {
    const ssize_t n = ::pread(fd, image.data() + done, image.size() - done, static_cast<off_t>(done));
    ok = n > 0;
    done += ok ? static_cast<std::size_t>(n) : 0;
  }
  ::close(fd);
  if (!ok) return Status::IoError("cannot read " + path);
  ++count_;
  return Status::Ok();
}

Status UnsyncedImages::Restore(const std::string& path, std::size_t kept) {
  if (kept < count_) {
    for (const char* suffix : {"-journal", "-wal", "-shm"}) {
      std::error_code ec;
      std::filesystem::remove(path + suffix, ec);
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(images_[kept].data(), static_cast<std::streamsize>(images_[kept].size()));
    if (!out.flush()) return Status::IoError("cannot write " + path);
  }
  count_ = 0;
  return Status::Ok();
}

}  // namespace commitd::sim
