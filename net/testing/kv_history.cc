#include "net/testing/kv_history.h"

#include <fstream>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "core/base/check.h"
#include "core/base/rng.h"
#include "sim/checker/linearizability.h"


namespace blixard::net::testing {
namespace {

// sim/TRACE.md's escaping: JSON's, and every byte >= 0x7f as \u00XX.
std::string Json(const std::string& bytes) {
  std::string out = "\"";
  for (const char ch : bytes) {
    const auto byte = static_cast<unsigned char>(ch);
    if (byte == '"') {
      out += "\\\"";
    } else if (byte == '\\') {
      out += "\\\\";
    } else if (byte < 0x20 || byte >= 0x7f) {
      out += absl::StrFormat("\\u%04x", byte);
    } else {
      out += ch;
    }
  }
  return out + "\"";
}

const char* StatusName(HistoryOp::Status status) {
  switch (status) {
    case HistoryOp::Status::kOk: return "ok";
    case HistoryOp::Status::kFail: return "fail";
    case HistoryOp::Status::kUnknown: return "unknown";
    case HistoryOp::Status::kPending: return "pending";
  }
  return "?";
}

std::string Describe(const HistoryOp& op) {
  return absl::StrCat("op ", op.op_id, " (client ", op.client, " ", op.op, " ", op.key, " ",
                      op.op == "get" ? (op.read ? *op.read : "<absent>") : op.value,
                      op.expected ? absl::StrCat(" expecting ", *op.expected) : "", ", ",
                      StatusName(op.status), ", us ", op.invoke_us, "..", op.complete_us, ")");
}

}  // namespace

KvHistory::KvHistory(std::string header_fields)
    : header_fields_(std::move(header_fields)), start_(std::chrono::steady_clock::now()) {}

int64_t KvHistory::NowUs() const {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::steady_clock::now() -
                                                               start_)
      .count();
}

uint64_t KvHistory::Invoke(uint64_t client, const std::string& op, const std::string& key,
                           const std::string& value, const std::optional<std::string>& expected) {
  MutexLock lock(&mu_);
  HistoryOp record;
  record.op_id = ops_.size() + 1;
  record.client = client;
  record.op = op;
  record.key = key;
  record.value = value;
  record.expected = expected;
  record.invoke_us = NowUs();
  std::string line = absl::StrCat("{\"t\":", record.invoke_us, ",\"type\":\"invoke\",\"client\":",
                                  client, ",\"op_id\":", record.op_id,
                                  // A set add is a put of a fresh key to any
                                  // reader of the trace.
                                  ",\"op\":", Json(op == "add" ? "put" : op),
                                  ",\"key\":", Json(key));
  if (op != "get") absl::StrAppend(&line, ",\"value\":", Json(value));
  if (op == "cas") absl::StrAppend(&line, ",\"expected\":", Json(expected.value_or("")));
  lines_.push_back(line + "}");
  ops_.push_back(std::move(record));
  return ops_.back().op_id;
}

void KvHistory::Complete(uint64_t op_id, HistoryOp::Status status,
                         const std::optional<std::string>& read) {
  CHECK(status != HistoryOp::Status::kPending);
  MutexLock lock(&mu_);
  CHECK(op_id >= 1 && op_id <= ops_.size()) << op_id;
  HistoryOp& op = ops_[op_id - 1];
  CHECK(op.status == HistoryOp::Status::kPending) << Describe(op);
  op.status = status;
  op.read = read;
  const int64_t now = NowUs();
  if (status != HistoryOp::Status::kUnknown) op.complete_us = now;
  std::string line = absl::StrCat("{\"t\":", now, ",\"type\":\"complete\",\"client\":", op.client,
                                  ",\"op_id\":", op_id, ",\"status\":\"", StatusName(status), "\"");
  if (read) absl::StrAppend(&line, ",\"value\":", Json(*read));
  lines_.push_back(line + "}");
}

void KvHistory::Fault(const std::string& fault, const std::vector<int>& nodes,
                      const std::vector<int>& others, int64_t value) {
  MutexLock lock(&mu_);
  std::string line = absl::StrCat("{\"t\":", NowUs(), ",\"type\":\"fault\",\"fault\":", Json(fault),
                                  ",\"nodes\":[", absl::StrJoin(nodes, ","), "]");
  if (!others.empty()) absl::StrAppend(&line, ",\"others\":[", absl::StrJoin(others, ","), "]");
  if (value != 0) absl::StrAppend(&line, ",\"value\":", value);
  lines_.push_back(line + "}");
}

std::vector<HistoryOp> KvHistory::ops() const {
  MutexLock lock(&mu_);
  return ops_;
}

std::string KvHistory::ToTrace(const std::string& status) const {
  MutexLock lock(&mu_);
  std::string text = absl::StrCat("{\"type\":\"header\",", header_fields_, ",\"real\":true}\n");
  for (const std::string& line : lines_) absl::StrAppend(&text, line, "\n");
  absl::StrAppend(&text, "{\"type\":\"result\",\"status\":", Json(status), ",\"trace_hash\":\"",
                  absl::StrFormat("%016x", StableHash64(text)), "\"}\n");
  return text;
}

absl::Status KvHistory::WriteTrace(const std::string& path, const std::string& status) const {
  std::ofstream out(path, std::ios::trunc);
  out << ToTrace(status);
  if (!out) return absl::InternalError(absl::StrCat("cannot write trace ", path));
  return absl::OkStatus();
}

absl::Status CheckLinearizable(const std::vector<HistoryOp>& ops) {
  std::vector<sim::KvOperation> history;
  for (const HistoryOp& op : ops) {
    sim::KvOperation k;
    if (op.op == "put") {
      k.kind = sim::KvOperation::Kind::kPut;
    } else if (op.op == "get") {
      k.kind = sim::KvOperation::Kind::kGet;
    } else if (op.op == "cas") {
      k.kind = sim::KvOperation::Kind::kCas;
    } else {
      continue;  // set adds: CheckSetAdds
    }
    if (op.status == HistoryOp::Status::kPending) continue;  // never answered: unknown
    k.id = op.op_id;
    k.client = op.client;
    k.key = op.key;
    k.value = op.value;
    k.expected = op.expected;
    k.invoke_us = op.invoke_us;
    k.read = op.read;
    switch (op.status) {
      case HistoryOp::Status::kOk:
        k.outcome = sim::KvOperation::Outcome::kOk;
        k.complete_us = op.complete_us;
        break;
      case HistoryOp::Status::kFail:
        k.outcome = sim::KvOperation::Outcome::kFail;
        k.complete_us = op.complete_us;
        break;
      default:
        k.outcome = sim::KvOperation::Outcome::kUnknown;
        k.complete_us = sim::KvOperation::kNeverCompleted;
        break;
    }
    history.push_back(std::move(k));
  }
  const sim::LinearizabilityResult result = sim::CheckLinearizable(history);
  if (result.verdict == sim::LinearizabilityResult::Verdict::kLinearizable) {
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      sim::VerdictName(result.verdict), " on key '", result.key, "': ", result.detail));
}

}  // namespace blixard::net::testing
