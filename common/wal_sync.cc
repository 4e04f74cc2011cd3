#include "common/wal_sync.h"

#include <cerrno>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/failpoint.h"

namespace commitd::sqlite {
namespace {

Status Errno(const std::string& what, const std::string& path) {
  return Status::IoError(what + " " + path + ": " + std::strerror(errno));
}

bool SameFile(int fd, const std::string& path) {
  struct stat open_file {}, named {};
  if (::fstat(fd, &open_file) != 0 || ::stat(path.c_str(), &named) != 0) return false;
  return open_file.st_dev == named.st_dev && open_file.st_ino == named.st_ino;
}

}  // namespace

WalSync::WalSync(std::string db_path) : db_path_(std::move(db_path)), wal_path_(db_path_ + "-wal") {}

WalSync::~WalSync() {
  if (fd_ >= 0) ::close(fd_);
}

Status WalSync::Reopen() {
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  // The WAL exists while SQLite has the database open in WAL mode; only a
  // database never written through WAL has none, and then its data is all in
  // the main file.
  for (const std::string* path : {&wal_path_, &db_path_}) {
    fd_ = ::open(path->c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ >= 0) {
      open_path_ = *path;
      return Status::Ok();
    }
    if (errno != ENOENT || path == &db_path_) return Errno("open", *path);
  }
  return Status::Ok();
}

Status WalSync::Sync() {
  if (failpoint::Active("storage.fail_wal_sync")) return Status::IoError("fdatasync " + wal_path_ + ": failpoint");
  if (fd_ < 0 || open_path_ != wal_path_ || !SameFile(fd_, wal_path_)) {
    if (Status s = Reopen(); !s.ok()) return s;
  }
  if (::fdatasync(fd_) != 0) return Errno("fdatasync", open_path_);
  return Status::Ok();
}

}  // namespace commitd::sqlite
