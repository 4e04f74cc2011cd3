#include "tests/sim/unsynced_images.h"

#include <sqlite3.h>

#include <filesystem>
#include <fstream>

namespace commitd::sim {

Status UnsyncedImages::CaptureBefore(sqlite::Database& db) {
  sqlite3_int64 size = 0;
  unsigned char* bytes = sqlite3_serialize(db.handle(), "main", &size, 0);
  if (bytes == nullptr) return Status::IoError("cannot serialize " + db.path());
  images_.emplace_back(reinterpret_cast<const char*>(bytes), static_cast<std::size_t>(size));
  sqlite3_free(bytes);
  return Status::Ok();
}

Status UnsyncedImages::Restore(const std::string& path, std::size_t kept) {
  if (kept < images_.size()) {
    for (const char* suffix : {"-journal", "-wal", "-shm"}) {
      std::error_code ec;
      std::filesystem::remove(path + suffix, ec);
    }
    std::ofstream out(path, std::ios::binary | std::ios::trunc);
    out.write(images_[kept].data(), static_cast<std::streamsize>(images_[kept].size()));
    if (!out.flush()) return Status::IoError("cannot write " + path);
  }
  images_.clear();
  return Status::Ok();
}

}  // namespace commitd::sim
