// The coordinator's client API over the simulated network, as the HTTP
// adapter (coordinator/service.cc) serves it: submit and look up, parsed into
// coordinator::Node calls and answered with coordinator/api_render.h. Used by
// the single coordinator and by every group member.
#pragma once

#include <string>

#include "coordinator/node.h"
#include "tests/sim/context.h"

namespace commitd::sim {

// from: the coordinator's network node (named in the trace). node outlives the call.
void ServeClientApi(Context& ctx, const std::string& from, coordinator::Node& node, const Request& request,
                    Responder respond);

}  // namespace commitd::sim
