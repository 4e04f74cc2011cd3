#include "participant/pg_sql.h"

#include <algorithm>
#include <cctype>

namespace commitd::participant::pg {
namespace {

bool IsIdentStart(char c) { return std::isalpha(static_cast<unsigned char>(c)) || c == '_'; }
bool IsIdentChar(char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; }

// The length of the dollar-quote tag starting at sql[i] ("$tag$" or "$$"), or 0.
std::size_t DollarTagLength(std::string_view sql, std::size_t i) {
  std::size_t j = i + 1;
  if (j < sql.size() && sql[j] == '$') return 2;
  if (j >= sql.size() || !IsIdentStart(sql[j])) return 0;
  while (j < sql.size() && IsIdentChar(sql[j])) ++j;
  if (j < sql.size() && sql[j] == '$') return j - i + 1;
  return 0;
}

// Walks sql, calling on_code for each character outside literals, quoted
// identifiers and comments (with its index); the rest is copied through
// `copy` unchanged. Returns InvalidArgument for an unterminated one.
template <class OnCode, class Copy>
Status Scan(std::string_view sql, OnCode on_code, Copy copy) {
  std::size_t i = 0;
  while (i < sql.size()) {
    const char c = sql[i];
    std::size_t end = std::string_view::npos;
    if (c == '\'' || c == '"') {
      // '' or "" inside doubles the quote.
      std::size_t j = i + 1;
      while (j < sql.size()) {
        if (sql[j] == c) {
          if (j + 1 < sql.size() && sql[j + 1] == c) {
            j += 2;
            continue;
          }
          end = j + 1;
          break;
        }
        ++j;
      }
      if (end == std::string_view::npos) {
        return Status::InvalidArgument(c == '\'' ? "unterminated string literal" : "unterminated quoted identifier");
      }
    } else if (c == '-' && i + 1 < sql.size() && sql[i + 1] == '-') {
      std::size_t nl = sql.find('\n', i);
      end = nl == std::string_view::npos ? sql.size() : nl;
    } else if (c == '/' && i + 1 < sql.size() && sql[i + 1] == '*') {
      std::size_t close = sql.find("*/", i + 2);
      if (close == std::string_view::npos) return Status::InvalidArgument("unterminated comment");
      end = close + 2;
    } else if (c == '$') {
      if (std::size_t tag = DollarTagLength(sql, i); tag != 0) {
        std::size_t close = sql.find(sql.substr(i, tag), i + tag);
        if (close == std::string_view::npos) return Status::InvalidArgument("unterminated dollar-quoted string");
        end = close + tag;
      }
    }
    if (end != std::string_view::npos) {
      copy(sql.substr(i, end - i));
      i = end;
      continue;
    }
    Result<std::size_t> next = on_code(i);
    if (!next.ok()) return next.status();
    i = *next;
  }
  return Status::Ok();
}

std::string Lower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(), [](unsigned char c) { return std::tolower(c); });
  return out;
}

}  // namespace

Result<TranslatedSql> TranslateNamedParameters(std::string_view sql) {
  TranslatedSql out;
  out.sql.reserve(sql.size());
  Status s = Scan(
      sql,
      [&](std::size_t i) -> Result<std::size_t> {
        const char c = sql[i];
        if (c == ':' && i + 1 < sql.size() && sql[i + 1] == ':') {  // a cast
          out.sql += "::";
          return i + 2;
        }
        if (c == ':' && i + 1 < sql.size() && IsIdentStart(sql[i + 1]) && (i == 0 || sql[i - 1] != ':')) {
          std::size_t j = i + 1;
          while (j < sql.size() && IsIdentChar(sql[j])) ++j;
          std::string name(sql.substr(i + 1, j - i - 1));
          auto it = std::find(out.names.begin(), out.names.end(), name);
          std::size_t n = static_cast<std::size_t>(it - out.names.begin()) + 1;
          if (it == out.names.end()) out.names.push_back(name);
          out.sql += "$" + std::to_string(n);
          return j;
        }
        if (c == '$' && i + 1 < sql.size() && std::isdigit(static_cast<unsigned char>(sql[i + 1])) &&
            (i == 0 || !IsIdentChar(sql[i - 1]))) {
          return Status::InvalidArgument("positional parameters ($1) are not allowed in procedures; use :name");
        }
        out.sql += c;
        return i + 1;
      },
      [&](std::string_view verbatim) { out.sql += verbatim; });
  if (!s.ok()) return s;
  return out;
}

Status CheckStatementKind(std::string_view sql) {
  std::string code;  // the statement without literals and comments, lower case
  Status s = Scan(
      sql,
      [&](std::size_t i) -> Result<std::size_t> {
        code += static_cast<char>(std::tolower(static_cast<unsigned char>(sql[i])));
        return i + 1;
      },
      [&](std::string_view verbatim) {
        // A quoted identifier can name a table: keep its text; a literal or a comment cannot.
        if (!verbatim.empty() && verbatim[0] == '"') code += Lower(verbatim);
        code += ' ';
      });
  if (!s.ok()) return s;
  std::size_t start = code.find_first_not_of(" \t\r\n(");
  if (start == std::string::npos) return Status::InvalidArgument("empty SQL statement");
  std::size_t end = start;
  while (end < code.size() && IsIdentChar(code[end])) ++end;
  const std::string keyword = code.substr(start, end - start);
  static const char* const kAllowed[] = {"select", "insert", "update", "delete", "merge", "with", "values", "table"};
  if (std::none_of(std::begin(kAllowed), std::end(kAllowed), [&](const char* k) { return keyword == k; })) {
    return Status::InvalidArgument("'" + keyword +
                                   "' statements are not allowed (the agent owns the transaction; only SELECT, "
                                   "INSERT, UPDATE, DELETE, MERGE, WITH, VALUES and TABLE run)");
  }
  if (code.find("_commitd_") != std::string::npos) {
    return Status::InvalidArgument("the agent's own tables (_commitd_*) are not accessible to procedures");
  }
  // A trailing ';' is fine; anything after it is a second statement.
  std::size_t semi = code.find(';');
  if (semi != std::string::npos && code.find_first_not_of(" \t\r\n;", semi) != std::string::npos) {
    return Status::InvalidArgument("more than one SQL statement in one string; use an array of statements");
  }
  return Status::Ok();
}

}  // namespace commitd::participant::pg
