#include "examples/inventory/stock_procedures.h"

#include <string>

namespace inventory {
namespace {

using commitd::Result;
using commitd::Status;
using commitd::participant::ProcedureContext;
using nlohmann::json;

struct Change {
  std::string sku;
  int64_t quantity = 0;
};

Result<Change> ParseChange(const json& args) {
  auto sku = args.find("sku");
  if (sku == args.end() || !sku->is_string() || sku->get<std::string>().empty()) {
    return Status::InvalidArgument("args.sku: must be a non-empty string");
  }
  auto quantity = args.find("quantity");
  if (quantity == args.end() || !quantity->is_number_integer() || quantity->get<int64_t>() <= 0) {
    return Status::InvalidArgument("args.quantity: must be a positive integer");
  }
  return Change{sku->get<std::string>(), quantity->get<int64_t>()};
}

Result<int64_t> Quantity(ProcedureContext& ctx, const std::string& sku) {
  auto read = ctx.Run("SELECT quantity FROM stock WHERE sku = :sku", {{"sku", sku}});
  if (!read.ok()) return read.status();
  if (read->rows.empty()) return Status::NotFound("unknown sku '" + sku + "'");
  return read->rows[0]["quantity"].get<int64_t>();
}

Status Journal(ProcedureContext& ctx, const std::string& sku, int64_t delta) {
  auto journal = ctx.Run("INSERT INTO stock_journal(txid, sku, delta) VALUES(:txid, :sku, :delta)",
                         {{"sku", sku}, {"delta", delta}});
  return journal.ok() ? Status::Ok() : journal.status();
}

}  // namespace

Status Reserve(ProcedureContext& ctx) {
  auto change = ParseChange(ctx.args());
  if (!change.ok()) return change.status();
  const json params = {{"sku", change->sku}, {"quantity", change->quantity}};
  auto taken = ctx.Run("UPDATE stock SET quantity = quantity - :quantity WHERE sku = :sku AND quantity >= :quantity",
                       params);
  if (!taken.ok()) return taken.status();
  if (taken->changes != 1) {
    auto have = Quantity(ctx, change->sku);
    if (!have.ok()) return have.status();
    return Status::Conflict("insufficient stock of '" + change->sku + "': " + std::to_string(have.value()) +
                            " left, " + std::to_string(change->quantity) + " asked");
  }
  if (Status s = Journal(ctx, change->sku, -change->quantity); !s.ok()) return s;
  auto left = Quantity(ctx, change->sku);
  if (!left.ok()) return left.status();
  ctx.AddRow({{"sku", change->sku}, {"reserved", change->quantity}, {"remaining", left.value()}});
  return Status::Ok();
}

Status Restock(ProcedureContext& ctx) {
  auto change = ParseChange(ctx.args());
  if (!change.ok()) return change.status();
  auto added = ctx.Run(
      "INSERT INTO stock(sku, quantity) VALUES(:sku, :quantity) "
      "ON CONFLICT(sku) DO UPDATE SET quantity = quantity + excluded.quantity",
      {{"sku", change->sku}, {"quantity", change->quantity}});
  if (!added.ok()) return added.status();
  if (Status s = Journal(ctx, change->sku, change->quantity); !s.ok()) return s;
  auto left = Quantity(ctx, change->sku);
  if (!left.ok()) return left.status();
  ctx.AddRow({{"sku", change->sku}, {"restocked", change->quantity}, {"remaining", left.value()}});
  return Status::Ok();
}

Status RegisterStockProcedures(commitd::participant::Agent& agent) {
  if (Status s = agent.RegisterProcedure("reserve", Reserve); !s.ok()) return s;
  return agent.RegisterProcedure("restock", Restock);
}

}  // namespace inventory
