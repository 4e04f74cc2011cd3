// The inventory service's transaction procedures, as C++ callables run by
// the embedded agent inside the prepare savepoint (participant/procedure_context.h).
#pragma once

#include "common/status.h"
#include "participant/agent.h"

namespace inventory {

// reserve {"sku", "quantity"}: takes quantity (> 0) off the SKU's stock and
// journals it; votes no for an unknown SKU or insufficient stock. Result row:
// {"sku", "reserved", "remaining"}.
commitd::Status Reserve(commitd::participant::ProcedureContext& ctx);

// restock {"sku", "quantity"}: adds quantity (> 0), creating the SKU if
// needed, and journals it. Result row: {"sku", "restocked", "remaining"}.
commitd::Status Restock(commitd::participant::ProcedureContext& ctx);

// Registers both with the agent.
commitd::Status RegisterStockProcedures(commitd::participant::Agent& agent);

}  // namespace inventory
