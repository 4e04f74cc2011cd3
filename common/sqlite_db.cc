#include "common/sqlite_db.h"

#include <mutex>

#include "common/log.h"
#include "common/sqlite_wal_vfs.h"

namespace commitd::sqlite {

std::string ErrorText(sqlite3* db, int rc) {
  std::string text = sqlite3_errstr(rc);
  if (db != nullptr) {
    const char* msg = sqlite3_errmsg(db);
    if (msg != nullptr && text != msg) {
      text += " (";
      text += msg;
      text += ")";
    }
  }
  return text;
}

Statement& Statement::Bind(int index, int64_t value) {
  sqlite3_bind_int64(stmt_, index, value);
  return *this;
}
Statement& Statement::Bind(int index, double value) {
  sqlite3_bind_double(stmt_, index, value);
  return *this;
}
Statement& Statement::Bind(int index, std::string_view text) {
  sqlite3_bind_text(stmt_, index, text.data(), static_cast<int>(text.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindBlob(int index, std::string_view bytes) {
  sqlite3_bind_blob(stmt_, index, bytes.data(), static_cast<int>(bytes.size()), SQLITE_TRANSIENT);
  return *this;
}
Statement& Statement::BindNull(int index) {
  sqlite3_bind_null(stmt_, index);
  return *this;
}
Statement& Statement::Bind(std::string_view name, std::string_view text) {
  return Bind(ParameterIndex(name), text);
}
int Statement::ParameterIndex(std::string_view name) const {
  return sqlite3_bind_parameter_index(stmt_, std::string(name).c_str());
}

bool Statement::Step() {
  int rc = sqlite3_step(stmt_);
  if (rc == SQLITE_ROW) return true;
  if (rc != SQLITE_DONE) {
    sqlite3* db = sqlite3_db_handle(stmt_);
    status_ = Status::IoError(ErrorText(db, rc));
  }
  return false;
}

Status Statement::Run() {
  while (Step()) {
  }
  Status s = status_;
  sqlite3_reset(stmt_);
  return s;
}

int Statement::ColumnCount() const { return sqlite3_column_count(stmt_); }
bool Statement::IsNull(int c) const { return sqlite3_column_type(stmt_, c) == SQLITE_NULL; }
int64_t Statement::Int(int c) const { return sqlite3_column_int64(stmt_, c); }
double Statement::Double(int c) const { return sqlite3_column_double(stmt_, c); }
std::string Statement::Text(int c) const {
  const auto* p = reinterpret_cast<const char*>(sqlite3_column_text(stmt_, c));
  return p == nullptr ? std::string() : std::string(p, sqlite3_column_bytes(stmt_, c));
}
std::string Statement::Blob(int c) const {
  const auto* p = static_cast<const char*>(sqlite3_column_blob(stmt_, c));
  return p == nullptr ? std::string() : std::string(p, sqlite3_column_bytes(stmt_, c));
}
void Statement::Reset() {
  sqlite3_reset(stmt_);
  sqlite3_clear_bindings(stmt_);
  status_ = Status::Ok();
}

namespace {

// Must run before SQLite initializes (a later call is refused by SQLite and
// harmless).
// - Memory-usage statistics make every SQLite allocation take a global mutex;
//   commitd never reads them.
// - A statement journal (what a savepoint or a statement inside a transaction
//   keeps to roll itself back) stays in memory instead of spilling to a
//   temporary file past 64 KiB: an agent's batch executes dozens of prepares
//   in savepoints, and each batch created, wrote page by page and deleted such
//   a file. In memory it holds an original copy of each page changed while a
//   savepoint is open (one per nesting level it is changed at), and is
//   emptied when the outermost savepoint ends. (A positive limit would not
//   do: SQLite allocates the in-memory journal in chunks of that size.)
constexpr int kStatementJournalNeverSpills = -1;

void ConfigureSqliteOnce() {
  static std::once_flag once;
  std::call_once(once, [] {
    // Refused (SQLITE_MISUSE) only if the embedding program started SQLite
    // first: then SQLite's defaults stay, which costs speed, nothing else.
    const int memstatus = sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
    const int spill = sqlite3_config(SQLITE_CONFIG_STMTJRNL_SPILL, kStatementJournalNeverSpills);
    if (memstatus != SQLITE_OK || spill != SQLITE_OK) {
      log::Warn("sqlite_config_refused",
                {{"reason", "SQLite was initialized before the first database was opened; its defaults stay"}});
    }
  });
}

}  // namespace

Result<std::unique_ptr<Database>> Database::Open(const std::string& path, OpenOptions options) {
  ConfigureSqliteOnce();
  int flags = options.read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE;
  if (options.create && !options.read_only) flags |= SQLITE_OPEN_CREATE;
  flags |= SQLITE_OPEN_NOMUTEX;
  sqlite3* raw = nullptr;
  int rc = sqlite3_open_v2(path.c_str(), &raw, flags, WalJoiningVfs()->zName);
  if (rc != SQLITE_OK) {
    std::string msg = "open " + path + ": " + ErrorText(raw, rc);
    sqlite3_close_v2(raw);
    return Status::IoError(msg);
  }
  std::unique_ptr<Database> db(new Database(raw, path));
  sqlite3_busy_timeout(raw, options.busy_timeout_ms);
  sqlite3_extended_result_codes(raw, 1);
  if (!options.read_only) {
    if (options.wal) {
      if (Status s = db->Exec("PRAGMA journal_mode=WAL"); !s.ok()) return s;
      // The automatic checkpoint (every 1000 pages) lets the WAL start over
      // from its beginning; this cuts the file back to 64 MiB when it does, so
      // a burst (or a long reader holding the checkpoint back) does not leave
      // it large for good.
      if (Status s = db->Exec("PRAGMA journal_size_limit=67108864"); !s.ok()) return s;
    }
    if (Status s = db->Exec(options.synchronous_full ? "PRAGMA synchronous=FULL" : "PRAGMA synchronous=NORMAL");
        !s.ok())
      return s;
    // Setting journal_mode read the file, which opened its WAL if there is one.
    if (options.wal && db->WalFile() != nullptr) {
      if (Status s = db->SyncWal(); !s.ok()) return s;
    }
  }
  if (Status s = db->Exec("PRAGMA foreign_keys=ON"); !s.ok()) return s;
  return db;
}

Database::~Database() {
  cache_.clear();
  sqlite3_close_v2(db_);
}

std::size_t Database::CacheKeyHash::operator()(CacheKeyView key) const noexcept {
  const std::size_t sql = std::hash<std::string_view>{}(key.sql);
  return key.group.empty() ? sql : sql ^ (std::hash<std::string_view>{}(key.group) * 0x9e3779b97f4a7c15ULL);
}

Status Database::Exec(std::string_view sql) {
  // One statement (the common case: BEGIN, COMMIT, SAVEPOINT ...) runs from
  // the statement cache instead of being parsed again.
  if (sql.find(';') == std::string_view::npos) {
    Status error;
    if (Statement* stmt = Prepare(sql, &error)) {
      Status s = stmt->Run();
      return s.ok() ? s : Status::IoError(s.message());
    }
  }
  char* err = nullptr;
  std::string copy(sql);
  int rc = sqlite3_exec(db_, copy.c_str(), nullptr, nullptr, &err);
  if (rc != SQLITE_OK) {
    std::string msg = err != nullptr ? err : sqlite3_errstr(rc);
    sqlite3_free(err);
    return Status::IoError(msg);
  }
  return Status::Ok();
}

Statement* Database::Prepare(std::string_view sql, Status* error, std::string_view cache_group) {
  AddressSlot* slot = nullptr;
  if (cache_group.empty()) {
    const auto address = reinterpret_cast<std::uintptr_t>(sql.data());
    slot = &by_address_[(address * 0x9e3779b97f4a7c15ULL) >> (64 - kAddressSlotBits)];
    if (slot->entry != nullptr && slot->sql == sql.data() && slot->entry->first.sql == sql) {
      Statement* stmt = slot->entry->second.statement.get();
      stmt->Reset();
      return stmt;
    }
  }
  auto it = cache_.find(CacheKeyView{cache_group, sql});
  if (it == cache_.end() && !cache_group.empty()) {
    std::size_t& size = group_sizes_[std::string(cache_group)];
    if (size >= kMaxGroupStatements) {
      std::erase_if(cache_, [&](const auto& entry) { return entry.first.group == cache_group; });
      size = 0;
    }
    ++size;  // counted even if preparing fails below: an overestimate only empties the group sooner
  }
  if (it == cache_.end()) {
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()), SQLITE_PREPARE_PERSISTENT, &raw,
                                nullptr);
    if (rc != SQLITE_OK) {
      if (error != nullptr) *error = Status::InvalidArgument(ErrorText(db_, rc));
      return nullptr;
    }
    if (raw == nullptr) {  // only whitespace or comments
      if (error != nullptr) *error = Status::InvalidArgument("empty SQL statement");
      return nullptr;
    }
    CachedStatement cached{std::unique_ptr<sqlite3_stmt, int (*)(sqlite3_stmt*)>(raw, sqlite3_finalize),
                           std::make_unique<Statement>(raw)};
    it = cache_.emplace(CacheKey{std::string(cache_group), std::string(sql)}, std::move(cached)).first;
  }
  if (slot != nullptr) *slot = AddressSlot{sql.data(), &*it};
  Statement* stmt = it->second.statement.get();
  stmt->Reset();
  return stmt;
}

Status Database::Begin() { return Exec("BEGIN IMMEDIATE"); }
Status Database::Commit() { return Exec("COMMIT"); }
Status Database::Rollback() {
  if (!InTransaction()) return Status::Ok();
  return Exec("ROLLBACK");
}
bool Database::InTransaction() const { return sqlite3_get_autocommit(db_) == 0; }

sqlite3_file* Database::WalFile() const {
  sqlite3_file* wal = nullptr;
  // In WAL mode the pager's journal file is the WAL.
  if (sqlite3_file_control(db_, "main", SQLITE_FCNTL_JOURNAL_POINTER, &wal) != SQLITE_OK || wal == nullptr ||
      wal->pMethods == nullptr) {
    return nullptr;
  }
  return wal;
}

Status Database::SyncWal() {
  sqlite3_file* wal = WalFile();
  if (wal == nullptr) return Status::IoError("sync of " + path_ + ": no WAL file is open");
  // The flags SQLite gives a WAL commit's sync at synchronous=FULL.
  if (int rc = wal->pMethods->xSync(wal, SQLITE_SYNC_NORMAL); rc != SQLITE_OK) {
    return Status::IoError("sync of " + path_ + "-wal: " + sqlite3_errstr(rc));
  }
  return Status::Ok();
}

Status Database::LastError(std::string_view what) const {
  std::string msg(what);
  msg += ": ";
  msg += sqlite3_errmsg(db_);
  return Status::IoError(msg);
}

std::string QuoteIdentifier(const std::string& name) {
  std::string out = "\"";
  for (char c : name) {
    if (c == '"') out += '"';
    out += c;
  }
  out += '"';
  return out;
}

}  // namespace commitd::sqlite
