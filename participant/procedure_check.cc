#include "participant/procedure_check.h"

#include <string>

namespace commitd::participant {

Status CheckProceduresAgainstSchema(sqlite::Database& db, const Procedures& procedures) {
  for (const std::string& name : procedures.Names()) {
    const Procedure* proc = procedures.Find(name);
    for (std::size_t i = 0; i < proc->statements.size(); ++i) {
      const std::string& sql = proc->statements[i];
      sqlite3_stmt* stmt = nullptr;
      int rc = sqlite3_prepare_v2(db.handle(), sql.c_str(), static_cast<int>(sql.size()), &stmt, nullptr);
      sqlite3_finalize(stmt);
      if (rc == SQLITE_OK) continue;
      return Status::InvalidArgument("procedure '" + name + "', statement " + std::to_string(i + 1) + " of " +
                                     std::to_string(proc->statements.size()) + " (" + sql +
                                     "): " + sqlite3_errmsg(db.handle()) + " in " + db.path());
    }
  }
  return Status::Ok();
}

}  // namespace commitd::participant
