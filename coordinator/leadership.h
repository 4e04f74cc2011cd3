// Leadership: what a Node of a coordinator group needs to know about the
// group (the Raft-replicated decision log provides it). A single coordinator
// has none.
//
// Thread: the Node's thread.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace commitd::coordinator {

class Leadership {
 public:
  virtual ~Leadership() = default;
  // Leader, with an entry of its own term committed and everything committed applied.
  virtual bool leader_ready() const = 0;
  // The URL of the leader this member knows of ("" if none).
  virtual std::string leader_url() const = 0;
  // Called whenever leader_ready() changes.
  virtual void set_on_leadership(std::function<void(bool ready)> fn) = 0;
  // The current Raft term (while leader_ready(): the term this member leads).
  virtual uint64_t term() const = 0;
  // Every member's URL, this one's included: they share one decision log.
  virtual std::vector<std::string> member_urls() const = 0;
};

}  // namespace commitd::coordinator
