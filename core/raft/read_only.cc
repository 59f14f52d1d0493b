#include "core/raft/read_only.h"

#include "core/base/check.h"

namespace blixard::raft {

bool ReadOnly::AddRequest(Index index, const Message& request) {
  CHECK_EQ(request.entries_size(), 1);
  const std::string& ctx = request.entries(0).data();
  if (pending_.contains(ctx)) return false;
  if (Full()) return false;
  pending_.emplace(ctx, Pending{request, index, {}});
  queue_.push_back(ctx);
  return true;
}

const std::set<NodeId>* ReadOnly::RecvAck(NodeId from, const std::string& context) {
  auto it = pending_.find(context);
  if (it == pending_.end()) return nullptr;
  it->second.acks.insert(from);
  return &it->second.acks;
}

std::vector<ReadOnly::Pending> ReadOnly::Advance(const std::string& context) {
  std::vector<Pending> out;
  size_t count = 0;
  bool found = false;
  for (const std::string& ctx : queue_) {
    ++count;
    if (ctx == context) {
      found = true;
      break;
    }
  }
  if (!found) return out;
  for (size_t i = 0; i < count; ++i) {
    auto it = pending_.find(queue_.front());
    CHECK(it != pending_.end());
    out.push_back(std::move(it->second));
    pending_.erase(it);
    queue_.pop_front();
  }
  return out;
}

std::string ReadOnly::LastPendingRequestContext() const {
  return queue_.empty() ? std::string() : queue_.back();
}

void ReadOnly::CheckInvariants() const {
  CHECK_EQ(pending_.size(), queue_.size());
  CHECK_LE(queue_.size(), pending_max_);
  for (const std::string& ctx : queue_) CHECK(pending_.contains(ctx));
}

}  // namespace blixard::raft
