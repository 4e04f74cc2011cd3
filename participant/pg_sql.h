// The SQL text rules of the PostgreSQL participant, without a connection.
//
// Procedures use named parameters (:amount, :txid: docs/procedures.md);
// libpq binds positional ones ($1, $2, ...). TranslateNamedParameters
// rewrites each :name to $n (the same name, the same n) and lists the names
// in order, skipping string literals, quoted identifiers, dollar-quoted
// strings, comments and '::' casts.
//
// CheckStatementKind refuses what would escape the agent's transaction or
// touch its own tables: only SELECT, INSERT, UPDATE, DELETE, MERGE, WITH,
// VALUES and TABLE statements run, and none may name a _commitd_ table.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace commitd::participant::pg {

struct TranslatedSql {
  std::string sql;                 // with $1..$n
  std::vector<std::string> names;  // names[i] is bound to $(i+1)
};

// InvalidArgument for positional parameters ($1 in a procedure), an
// unterminated literal, identifier or comment.
Result<TranslatedSql> TranslateNamedParameters(std::string_view sql);

Status CheckStatementKind(std::string_view sql);

}  // namespace commitd::participant::pg
