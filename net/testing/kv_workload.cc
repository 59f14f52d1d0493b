#include "net/testing/kv_workload.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "core/base/check.h"
#include "core/base/rng.h"
#include "core/proto/api.pb.h"
#include "core/proto/cluster.pb.h"

namespace blixard::net::testing {
namespace {

using S = HistoryOp::Status;

std::unique_ptr<Client> MakeClient(const KvWorkloadOptions& options, uint64_t seed) {
  ClientOptions client_options;
  client_options.endpoints = absl::StrSplit(options.endpoints, ',');
  client_options.deadline_us = options.call_deadline_us;
  client_options.call_timeout_us = std::min<int64_t>(kMicrosPerSecond, options.call_deadline_us);
  client_options.seed = seed;
  absl::StatusOr<std::unique_ptr<Client>> client = Client::Create(std::move(client_options));
  CHECK_OK(client.status());
  return *std::move(client);
}

}  // namespace

KvWorkload::KvWorkload(KvWorkloadOptions options, KvHistory* history)
    : options_(std::move(options)), history_(history) {
  CHECK(history_ != nullptr);
  CHECK_GE(options_.clients, 1);
  CHECK_GE(options_.keys, 1);
}

KvWorkload::~KvWorkload() { Stop(); }

void KvWorkload::Start() {
  CHECK(threads_.empty());
  for (int i = 0; i < options_.clients; ++i) threads_.emplace_back([this, i] { RunClient(i); });
}

void KvWorkload::Stop() {
  stop_ = true;
  for (std::thread& t : threads_) t.join();
  threads_.clear();
}

void KvWorkload::RunClient(int index) {
  const uint64_t client_id = static_cast<uint64_t>(index) + 1;
  Rng rng = Rng(options_.seed).Fork(client_id);
  std::unique_ptr<Client> client = MakeClient(options_, rng.Next() | 1);
  // The last value and version this client saw per key, for CAS.
  std::map<std::string, std::pair<std::string, uint64_t>> seen;
  for (uint64_t n = 1; !stop_; ++n) {
    const std::string key = absl::StrCat("r", rng.Uniform(static_cast<uint64_t>(options_.keys)));
    const std::string value = absl::StrCat("c", client_id, "-", n);
    const uint64_t roll = rng.Uniform(100);
    api::ClientRequest request;
    uint64_t op_id = 0;
    std::string op;
    if (roll < 10) {
      op = "add";
      const std::string element = absl::StrCat("set/", value);
      request.mutable_command()->mutable_kv_put()->set_key(element);
      request.mutable_command()->mutable_kv_put()->set_value(value);
      op_id = history_->Invoke(client_id, op, element, value);
    } else if (roll < 40) {
      op = "put";
      request.mutable_command()->mutable_kv_put()->set_key(key);
      request.mutable_command()->mutable_kv_put()->set_value(value);
      op_id = history_->Invoke(client_id, op, key, value);
    } else if (roll < 60) {
      op = "cas";
      auto it = seen.find(key);
      cluster::KvCompareAndSwap* cas = request.mutable_command()->mutable_kv_compare_and_swap();
      cas->set_key(key);
      cas->set_value(value);
      cas->set_expected_version(it != seen.end() ? it->second.second : 0);
      op_id = history_->Invoke(client_id, op, key, value,
                               it != seen.end() ? std::optional<std::string>(it->second.first)
                                                : std::nullopt);
    } else {
      op = "get";
      request.mutable_query()->set_kv_get(key);
      op_id = history_->Invoke(client_id, op, key);
    }
    absl::StatusOr<api::ClientResponse> response = client->Call(std::move(request));
    if (!response.ok()) {
      history_->Complete(op_id, S::kUnknown);
    } else if (response->status() != api::ClientResponse::STATUS_OK) {
      history_->Complete(op_id, S::kFail);  // REJECTED: definitely not applied
    } else if (op == "get") {
      const cluster::QueryResult& result = response->query_result();
      if (result.code() == cluster::RESULT_OK && result.has_kv()) {
        seen[key] = {result.kv().value(), result.kv().mod_index()};
        history_->Complete(op_id, S::kOk, result.kv().value());
      } else if (result.code() == cluster::RESULT_NOT_FOUND) {
        seen.erase(key);
        history_->Complete(op_id, S::kOk, std::nullopt);
      } else {
        history_->Complete(op_id, S::kFail);
      }
    } else if (response->result().code() == cluster::RESULT_OK) {
      if (op != "add" && response->result().has_kv()) {
        seen[key] = {value, response->result().kv().mod_index()};
      }
      history_->Complete(op_id, S::kOk);
    } else {
      history_->Complete(op_id, S::kFail);
    }
    if (options_.pause_between_ops_us > 0) {
      std::this_thread::sleep_for(std::chrono::microseconds(options_.pause_between_ops_us));
    }
  }
}

KvWorkloadCounts KvWorkload::Counts() const {
  KvWorkloadCounts counts;
  for (const HistoryOp& op : history_->ops()) {
    if (op.status == S::kOk) ++counts.ok;
    if (op.status == S::kFail) ++counts.fail;
    if (op.status == S::kUnknown) ++counts.unknown;
    if (op.op == "add" && op.status == S::kOk) ++counts.acked_adds;
  }
  return counts;
}

absl::Status CheckSetAdds(Client& client, const std::vector<HistoryOp>& ops,
                          uint64_t* unknown_present) {
  *unknown_present = 0;
  for (const HistoryOp& op : ops) {
    if (op.op != "add" || (op.status != S::kOk && op.status != S::kUnknown)) continue;
    api::ClientRequest request;
    request.mutable_query()->set_kv_get(op.key);
    absl::StatusOr<api::ClientResponse> response = client.Call(std::move(request));
    if (!response.ok()) return response.status();
    if (response->status() != api::ClientResponse::STATUS_OK) {
      return absl::InternalError(absl::StrCat("final read of ", op.key, ": ", response->error()));
    }
    const bool present = response->query_result().code() == cluster::RESULT_OK &&
                         response->query_result().kv().value() == op.value;
    if (op.status == S::kOk && !present) {
      return absl::DataLossError(absl::StrCat("acknowledged add ", op.key, " (op ", op.op_id,
                                              ", client ", op.client, ") is missing"));
    }
    if (op.status == S::kUnknown && present) ++*unknown_present;
  }
  return absl::OkStatus();
}

}  // namespace blixard::net::testing
