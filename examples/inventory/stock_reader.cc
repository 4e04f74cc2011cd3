#include "examples/inventory/stock_reader.h"

#include <nlohmann/json.hpp>

namespace inventory {

using commitd::Result;
using commitd::Status;
namespace http = commitd::http;
namespace sqlite = commitd::sqlite;

namespace {

// Like http::JsonResponse, but a SKU that is not UTF-8 cannot make dump() throw.
http::Response Json(int status, const nlohmann::json& value) {
  http::Response r;
  r.status = status;
  r.body = value.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  return r;
}

}  // namespace

Result<std::unique_ptr<StockReader>> StockReader::Open(const std::string& db_path) {
  sqlite::OpenOptions options;
  options.read_only = true;
  options.create = false;
  auto db = sqlite::Database::Open(db_path, options);
  if (!db.ok()) return db.status();
  return std::unique_ptr<StockReader>(new StockReader(std::move(db).value()));
}

void StockReader::Mount(http::Router& router) {
  router.Add("GET", "/stock/{sku}", [this](http::Request req, http::Responder respond) {
    respond(One(req.path_params["sku"]));
  });
  router.Add("GET", "/stock", [this](http::Request, http::Responder respond) { respond(All()); });
}

http::Response StockReader::One(const std::string& sku) {
  Status error;
  sqlite::Statement* stmt = db_->Prepare("SELECT quantity FROM stock WHERE sku = ?1", &error);
  if (stmt == nullptr) return http::ErrorResponse(500, "storage_error", error.message());
  stmt->Bind(1, sku);
  if (!stmt->Step()) {
    Status s = stmt->status();
    stmt->Reset();
    if (!s.ok()) return http::ErrorResponse(500, "storage_error", s.message());
    return Json(404, {{"error", {{"code", "not_found"}, {"message", "unknown sku '" + sku + "'"}}}});
  }
  int64_t quantity = stmt->Int(0);
  stmt->Reset();
  return Json(200, {{"sku", sku}, {"quantity", quantity}});
}

http::Response StockReader::All() {
  Status error;
  sqlite::Statement* stmt = db_->Prepare("SELECT sku, quantity FROM stock ORDER BY sku", &error);
  if (stmt == nullptr) return http::ErrorResponse(500, "storage_error", error.message());
  nlohmann::json list = nlohmann::json::array();
  while (stmt->Step()) list.push_back({{"sku", stmt->Text(0)}, {"quantity", stmt->Int(1)}});
  Status s = stmt->status();
  stmt->Reset();
  if (!s.ok()) return http::ErrorResponse(500, "storage_error", s.message());
  return Json(200, {{"stock", std::move(list)}});
}

}  // namespace inventory
