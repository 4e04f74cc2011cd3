#include "common/sqlite_wal_vfs.h"

#include <atomic>
#include <cstring>

namespace commitd::sqlite {
namespace {

constexpr int kFrameHeaderBytes = 24;  // WAL_FRAME_HDRSIZE in SQLite's wal.c

// A WAL file: this header, then the underlying VFS's file object (at `inner`,
// in the same allocation). Plain data: SQLite allocates and frees the memory.
struct WalFile {
  sqlite3_file base;  // first: SQLite sees this
  sqlite3_file* inner;
  sqlite3_int64 held_offset;
  int holding;  // a frame header is held in `held`
  unsigned char held[kFrameHeaderBytes];
  unsigned char* joined;  // header + page, sqlite3_malloc'd on first use
  int joined_capacity;
};

constexpr std::size_t kInnerOffset = (sizeof(WalFile) + 7) & ~std::size_t{7};

sqlite3_file* Inner(sqlite3_file* f) { return reinterpret_cast<WalFile*>(f)->inner; }

// Writes the header held back, if any.
int Release(WalFile* w) {
  if (!w->holding) return SQLITE_OK;
  w->holding = 0;
  return w->inner->pMethods->xWrite(w->inner, w->held, kFrameHeaderBytes, w->held_offset);
}

int Release(sqlite3_file* f) { return Release(reinterpret_cast<WalFile*>(f)); }

int Close(sqlite3_file* f) {
  auto* w = reinterpret_cast<WalFile*>(f);
  int released = Release(w);
  int closed = w->inner->pMethods->xClose(w->inner);  // set: Open installs these methods only then
  sqlite3_free(w->joined);
  w->joined = nullptr;
  return released != SQLITE_OK ? released : closed;
}

int Write(sqlite3_file* f, const void* data, int amount, sqlite3_int64 offset) {
  auto* w = reinterpret_cast<WalFile*>(f);
  if (w->holding && offset == w->held_offset + kFrameHeaderBytes) {
    const int total = kFrameHeaderBytes + amount;
    if (total > w->joined_capacity) {
      auto* grown = static_cast<unsigned char*>(sqlite3_realloc(w->joined, total));
      if (grown == nullptr) {
        if (int rc = Release(w); rc != SQLITE_OK) return rc;
        return w->inner->pMethods->xWrite(w->inner, data, amount, offset);
      }
      w->joined = grown;
      w->joined_capacity = total;
    }
    std::memcpy(w->joined, w->held, kFrameHeaderBytes);
    std::memcpy(w->joined + kFrameHeaderBytes, data, static_cast<std::size_t>(amount));
    w->holding = 0;
    return w->inner->pMethods->xWrite(w->inner, w->joined, total, w->held_offset);
  }
  if (int rc = Release(w); rc != SQLITE_OK) return rc;
  if (amount == kFrameHeaderBytes) {
    std::memcpy(w->held, data, kFrameHeaderBytes);
    w->held_offset = offset;
    w->holding = 1;
    return SQLITE_OK;
  }
  return w->inner->pMethods->xWrite(w->inner, data, amount, offset);
}

int Read(sqlite3_file* f, void* data, int amount, sqlite3_int64 offset) {
  if (int rc = Release(f); rc != SQLITE_OK) return rc;
  return Inner(f)->pMethods->xRead(Inner(f), data, amount, offset);
}
int Truncate(sqlite3_file* f, sqlite3_int64 size) {
  if (int rc = Release(f); rc != SQLITE_OK) return rc;
  return Inner(f)->pMethods->xTruncate(Inner(f), size);
}
std::atomic<uint64_t> wal_syncs{0};

int Sync(sqlite3_file* f, int flags) {
  if (int rc = Release(f); rc != SQLITE_OK) return rc;
  const int rc = Inner(f)->pMethods->xSync(Inner(f), flags);
  if (rc == SQLITE_OK) wal_syncs.fetch_add(1, std::memory_order_relaxed);
  return rc;
}
int FileSize(sqlite3_file* f, sqlite3_int64* size) {
  if (int rc = Release(f); rc != SQLITE_OK) return rc;
  return Inner(f)->pMethods->xFileSize(Inner(f), size);
}
int Lock(sqlite3_file* f, int level) {
  if (int rc = Release(f); rc != SQLITE_OK) return rc;
  return Inner(f)->pMethods->xLock(Inner(f), level);
}
int Unlock(sqlite3_file* f, int level) {
  if (int rc = Release(f); rc != SQLITE_OK) return rc;
  return Inner(f)->pMethods->xUnlock(Inner(f), level);
}
int CheckReservedLock(sqlite3_file* f, int* out) {
  return Inner(f)->pMethods->xCheckReservedLock(Inner(f), out);
}
int FileControl(sqlite3_file* f, int op, void* arg) {
  if (int rc = Release(f); rc != SQLITE_OK) return rc;
  return Inner(f)->pMethods->xFileControl(Inner(f), op, arg);
}
int SectorSize(sqlite3_file* f) { return Inner(f)->pMethods->xSectorSize(Inner(f)); }
int DeviceCharacteristics(sqlite3_file* f) { return Inner(f)->pMethods->xDeviceCharacteristics(Inner(f)); }
// The WAL file itself has no shared memory and is never memory-mapped by
// SQLite; these forward for completeness, within the inner file's version.
int ShmMap(sqlite3_file* f, int region, int size, int extend, void volatile** out) {
  if (Inner(f)->pMethods->iVersion < 2) return SQLITE_IOERR_SHMMAP;
  return Inner(f)->pMethods->xShmMap(Inner(f), region, size, extend, out);
}
int ShmLock(sqlite3_file* f, int offset, int n, int flags) {
  if (Inner(f)->pMethods->iVersion < 2) return SQLITE_IOERR_SHMLOCK;
  return Inner(f)->pMethods->xShmLock(Inner(f), offset, n, flags);
}
void ShmBarrier(sqlite3_file* f) {
  if (Inner(f)->pMethods->iVersion >= 2) Inner(f)->pMethods->xShmBarrier(Inner(f));
}
int ShmUnmap(sqlite3_file* f, int delete_flag) {
  if (Inner(f)->pMethods->iVersion < 2) return SQLITE_OK;
  return Inner(f)->pMethods->xShmUnmap(Inner(f), delete_flag);
}
int Fetch(sqlite3_file* f, sqlite3_int64 offset, int amount, void** out) {
  *out = nullptr;  // no mapping: SQLite reads instead
  if (Inner(f)->pMethods->iVersion < 3) return SQLITE_OK;
  if (int rc = Release(f); rc != SQLITE_OK) return rc;
  return Inner(f)->pMethods->xFetch(Inner(f), offset, amount, out);
}
int Unfetch(sqlite3_file* f, sqlite3_int64 offset, void* page) {
  if (Inner(f)->pMethods->iVersion < 3) return SQLITE_OK;
  return Inner(f)->pMethods->xUnfetch(Inner(f), offset, page);
}

const sqlite3_io_methods kWalMethods = {
    3,        Close,  Read,   Write,    Truncate,  Sync,    FileSize, Lock,       Unlock, CheckReservedLock,
    FileControl, SectorSize, DeviceCharacteristics, ShmMap, ShmLock, ShmBarrier, ShmUnmap, Fetch, Unfetch};

sqlite3_vfs* Under(sqlite3_vfs* vfs) { return static_cast<sqlite3_vfs*>(vfs->pAppData); }

int Open(sqlite3_vfs* vfs, const char* name, sqlite3_file* file, int flags, int* out_flags) {
  sqlite3_vfs* under = Under(vfs);
  if ((flags & SQLITE_OPEN_WAL) == 0) return under->xOpen(under, name, file, flags, out_flags);
  auto* w = reinterpret_cast<WalFile*>(file);
  auto* inner = reinterpret_cast<sqlite3_file*>(reinterpret_cast<unsigned char*>(file) + kInnerOffset);
  std::memset(w, 0, sizeof(WalFile));
  w->inner = inner;
  inner->pMethods = nullptr;
  int rc = under->xOpen(under, name, inner, flags, out_flags);
  // SQLite calls xClose whenever pMethods is set, even after a failed open.
  if (inner->pMethods != nullptr) w->base.pMethods = &kWalMethods;
  return rc;
}

int Delete(sqlite3_vfs* vfs, const char* name, int sync_dir) { return Under(vfs)->xDelete(Under(vfs), name, sync_dir); }
int Access(sqlite3_vfs* vfs, const char* name, int flags, int* out) {
  return Under(vfs)->xAccess(Under(vfs), name, flags, out);
}
int FullPathname(sqlite3_vfs* vfs, const char* name, int size, char* out) {
  return Under(vfs)->xFullPathname(Under(vfs), name, size, out);
}
void* DlOpen(sqlite3_vfs* vfs, const char* name) { return Under(vfs)->xDlOpen(Under(vfs), name); }
void DlError(sqlite3_vfs* vfs, int size, char* out) { Under(vfs)->xDlError(Under(vfs), size, out); }
void (*DlSym(sqlite3_vfs* vfs, void* handle, const char* symbol))(void) {
  return Under(vfs)->xDlSym(Under(vfs), handle, symbol);
}
void DlClose(sqlite3_vfs* vfs, void* handle) { Under(vfs)->xDlClose(Under(vfs), handle); }
int Randomness(sqlite3_vfs* vfs, int size, char* out) { return Under(vfs)->xRandomness(Under(vfs), size, out); }
int Sleep(sqlite3_vfs* vfs, int microseconds) { return Under(vfs)->xSleep(Under(vfs), microseconds); }
int CurrentTime(sqlite3_vfs* vfs, double* out) { return Under(vfs)->xCurrentTime(Under(vfs), out); }
int GetLastError(sqlite3_vfs* vfs, int size, char* out) {
  return Under(vfs)->xGetLastError != nullptr ? Under(vfs)->xGetLastError(Under(vfs), size, out) : 0;
}
int CurrentTimeInt64(sqlite3_vfs* vfs, sqlite3_int64* out) {
  sqlite3_vfs* under = Under(vfs);
  if (under->iVersion >= 2 && under->xCurrentTimeInt64 != nullptr) return under->xCurrentTimeInt64(under, out);
  double days = 0;
  int rc = under->xCurrentTime(under, &days);
  *out = static_cast<sqlite3_int64>(days * 86400000.0);
  return rc;
}

}  // namespace

sqlite3_vfs* RegisterWalJoiningVfs(const char* name, sqlite3_vfs* under) {
  auto* vfs = new sqlite3_vfs{};  // registered for the life of the process
  vfs->iVersion = 2;
  vfs->szOsFile = static_cast<int>(kInnerOffset) + under->szOsFile;
  vfs->mxPathname = under->mxPathname;
  vfs->zName = name;
  vfs->pAppData = under;
  vfs->xOpen = Open;
  vfs->xDelete = Delete;
  vfs->xAccess = Access;
  vfs->xFullPathname = FullPathname;
  vfs->xDlOpen = DlOpen;
  vfs->xDlError = DlError;
  vfs->xDlSym = DlSym;
  vfs->xDlClose = DlClose;
  vfs->xRandomness = Randomness;
  vfs->xSleep = Sleep;
  vfs->xCurrentTime = CurrentTime;
  vfs->xGetLastError = GetLastError;
  vfs->xCurrentTimeInt64 = CurrentTimeInt64;
  sqlite3_vfs_register(vfs, 0);
  return vfs;
}

uint64_t WalSyncs() { return wal_syncs.load(std::memory_order_relaxed); }

sqlite3_vfs* WalJoiningVfs() {
  static sqlite3_vfs* const vfs = RegisterWalJoiningVfs("commitd-wal", sqlite3_vfs_find(nullptr));
  return vfs;
}

}  // namespace commitd::sqlite
