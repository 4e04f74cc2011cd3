// Thin RAII wrapper over one SQLite connection with cached prepared statements.
//
// Thread: a Database is used by one thread at a time (the storage thread of
// its process); it does no locking of its own.
#pragma once

#include <sqlite3.h>

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/status.h"

namespace commitd::sqlite {

// A prepared statement owned by its Database's cache. Reset and unbound
// every time it is handed out by Database::Prepare.
class Statement {
 public:
  explicit Statement(sqlite3_stmt* stmt) : stmt_(stmt) {}

  Statement& Bind(int index, int64_t value);
  Statement& Bind(int index, double value);
  Statement& Bind(int index, std::string_view text);
  Statement& BindBlob(int index, std::string_view bytes);
  Statement& BindNull(int index);
  Statement& Bind(std::string_view name, std::string_view text);  // ":name"
  int ParameterIndex(std::string_view name) const;

  // Advances; true when a row is available. A failure is reported by status().
  // A SELECT not stepped to its end keeps its read transaction open until
  // Reset() (or the next Prepare of the same SQL): reset it when done.
  bool Step();
  // Steps to completion; the first error, if any.
  Status Run();
  const Status& status() const { return status_; }

  int ColumnCount() const;
  bool IsNull(int column) const;
  int64_t Int(int column) const;
  double Double(int column) const;
  std::string Text(int column) const;
  std::string Blob(int column) const;

  sqlite3_stmt* handle() const { return stmt_; }
  void Reset();

 private:
  sqlite3_stmt* stmt_;
  Status status_;
};

struct OpenOptions {
  bool create = true;
  bool read_only = false;
  // journal_mode=WAL. A WAL found at open is fsynced before anything reads
  // it: a process that crashed may have left frames it committed at
  // synchronous=NORMAL unsynced, and this one takes them for committed.
  bool wal = true;
  bool synchronous_full = true; // synchronous=FULL: a commit is on disk when it returns
  int busy_timeout_ms = 5000;
};

class Database {
 public:
  static Result<std::unique_ptr<Database>> Open(const std::string& path, OpenOptions options = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  sqlite3* handle() const { return db_; }
  const std::string& path() const { return path_; }

  // Runs one or more statements without results.
  Status Exec(std::string_view sql);
  // A cached statement for sql, reset and unbound; nullptr with *error set on
  // failure. Statements of different cache groups never share an entry: user
  // SQL prepared under an authorizer must not find a statement prepared without one.
  // A named group holds at most kMaxGroupStatements; when full it is emptied
  // (so user SQL with inline literals cannot grow the cache without bound), which
  // invalidates that group's earlier Statement pointers.
  Statement* Prepare(std::string_view sql, Status* error = nullptr, std::string_view cache_group = {});
  static constexpr std::size_t kMaxGroupStatements = 512;

  Status Begin();           // BEGIN IMMEDIATE
  Status Commit();
  Status Rollback();        // no-op when no transaction is open
  bool InTransaction() const;
  // fsync of the WAL file as it is now (what transactions committed with
  // synchronous=NORMAL wrote), as a synchronous=FULL commit would sync it.
  // Outside a transaction; an error if no WAL is open.
  Status SyncWal();

  // Status with the connection's last error message, prefixed by what.
  Status LastError(std::string_view what) const;

 private:
  Database(sqlite3* db, std::string path) : db_(db), path_(std::move(path)) {}
  sqlite3_file* WalFile() const;  // null when no WAL is open
  sqlite3* db_;
  std::string path_;
  // The statement cache, keyed by (cache group, SQL) and looked up without
  // building either string.
  struct CacheKey {
    std::string group;
    std::string sql;
  };
  struct CacheKeyView {
    std::string_view group;
    std::string_view sql;
  };
  struct CacheKeyHash {
    using is_transparent = void;
    std::size_t operator()(CacheKeyView key) const noexcept;
    std::size_t operator()(const CacheKey& key) const noexcept { return (*this)(CacheKeyView{key.group, key.sql}); }
  };
  struct CacheKeyEqual {
    using is_transparent = void;
    template <class A, class B>
    bool operator()(const A& a, const B& b) const noexcept {
      return a.sql == b.sql && a.group == b.group;
    }
  };
  // A prepared statement and the wrapper Prepare hands out for it; the
  // wrapper goes first.
  struct CachedStatement {
    std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)> raw;
    std::unique_ptr<Statement> statement;
  };
  using Cache = std::unordered_map<CacheKey, CachedStatement, CacheKeyHash, CacheKeyEqual>;
  Cache cache_;
  std::unordered_map<std::string, std::size_t> group_sizes_;
  // Ungrouped entries (never erased before the cache itself) by the address
  // of the SQL text last asked for with it, in a direct-mapped table: the
  // program's own statements are fixed strings, found here without hashing
  // their text. A slot counts only if the text there is still the entry's.
  struct AddressSlot {
    const char* sql = nullptr;
    Cache::value_type* entry = nullptr;
  };
  static constexpr std::size_t kAddressSlotBits = 6;
  std::array<AddressSlot, std::size_t{1} << kAddressSlotBits> by_address_{};
};

// Rolls back on destruction unless Commit() succeeded.
class Transaction {
 public:
  explicit Transaction(Database& db) : db_(db) { status_ = db_.Begin(); }
  ~Transaction() {
    if (status_.ok() && !done_) db_.Rollback();
  }
  const Status& status() const { return status_; }
  // On failure the transaction is still rolled back by the destructor.
  Status Commit() {
    Status s = db_.Commit();
    if (s.ok()) done_ = true;
    return s;
  }

 private:
  Database& db_;
  Status status_;
  bool done_ = false;
};

// name as a quoted SQL identifier: "a""b" for a"b.
std::string QuoteIdentifier(const std::string& name);

// SQLite error text for a result code: "constraint failed (CHECK constraint failed: balance >= 0)".
std::string ErrorText(sqlite3* db, int rc);

}  // namespace commitd::sqlite
