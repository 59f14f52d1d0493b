#include "core/raft/quorum.h"

#include "absl/strings/str_cat.h"
#include "core/base/check.h"

namespace blixard::raft {

MajorityConfig::MajorityConfig(std::vector<NodeId> ids) : ids_(std::move(ids)) {
  std::sort(ids_.begin(), ids_.end());
  ids_.erase(std::unique(ids_.begin(), ids_.end()), ids_.end());
}

void MajorityConfig::Insert(NodeId id) {
  auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  if (it != ids_.end() && *it == id) return;
  ids_.insert(it, id);
}

void MajorityConfig::Erase(NodeId id) {
  auto it = std::lower_bound(ids_.begin(), ids_.end(), id);
  if (it != ids_.end() && *it == id) ids_.erase(it);
}

std::string MajorityConfig::ToString() const {
  std::string out = "(";
  for (size_t i = 0; i < ids_.size(); ++i) {
    if (i > 0) out += " ";
    absl::StrAppend(&out, ids_[i].value());
  }
  out += ")";
  return out;
}

void MajorityConfig::CheckInvariants() const {
  for (size_t i = 0; i < ids_.size(); ++i) {
    CHECK(!ids_[i].is_none()) << "voter id 0 in a majority config";
    if (i > 0) {
      CHECK_LT(ids_[i - 1], ids_[i]) << "voters not sorted/unique";
    }
  }
}

std::vector<NodeId> JointConfig::ids() const {
  std::vector<NodeId> out = incoming_.ids();
  for (NodeId id : outgoing_.ids()) {
    if (!incoming_.contains(id)) out.push_back(id);
  }
  std::sort(out.begin(), out.end());
  return out;
}

std::string JointConfig::ToString() const {
  if (!joint()) return incoming_.ToString();
  return absl::StrCat(incoming_.ToString(), "&&", outgoing_.ToString());
}

}  // namespace blixard::raft
