// A SQLite VFS over another (the platform's default) that writes each WAL
// frame with one system call instead of two.
//
// SQLite appends a frame to the WAL as two writes: its 24-byte header, then
// the page right after it. Each is a pwrite(2), and on a virtual machine a
// system call costs more than copying a page. Here a frame header is held
// back until the page that follows it arrives, and both go down as one write.
// Every other call on the WAL file (a read, a sync, a truncate, the file's
// size, closing it) first writes a header still held, so nothing else ever
// sees the file without it: what is on disk at each sync, and so the file
// format, is what the default VFS would have written. Other files pass
// straight through to the underlying VFS.
//
// Thread: register before opening databases; a file object is used by one
// connection at a time, as SQLite guarantees.
#pragma once

#include <sqlite3.h>

#include <cstdint>

namespace commitd::sqlite {

// The VFS that Database::Open uses: registered once on first call, over
// SQLite's default VFS at that moment, under the name "commitd-wal".
sqlite3_vfs* WalJoiningVfs();

// Registers a VFS named `name` over `under` (not made the default) and
// returns it; for tests that put their own VFS underneath. `name` and `under`
// must outlive the process's use of it.
sqlite3_vfs* RegisterWalJoiningVfs(const char* name, sqlite3_vfs* under);

// Successful fsyncs of WAL files through these VFSs since the process
// started, every connection's: what a power loss can no longer take back.
uint64_t WalSyncs();

}  // namespace commitd::sqlite
