#include "sim/trace.h"

#include <xxhash.h>

#include "absl/strings/str_cat.h"
#include "core/base/check.h"
#include "core/base/rng.h"

namespace blixard::sim {
namespace {

constexpr char kHexDigits[] = "0123456789abcdef";

}  // namespace

std::string JsonEscape(absl::string_view bytes) {
  std::string out;
  AppendJsonEscaped(bytes, &out);
  return out;
}

void AppendJsonEscaped(absl::string_view bytes, std::string* out_ptr) {
  std::string& out = *out_ptr;
  out.reserve(out.size() + bytes.size());
  for (const char c : bytes) {
    const auto byte = static_cast<uint8_t>(c);
    switch (c) {
      case '"':
        out += "\\\"";
        continue;
      case '\\':
        out += "\\\\";
        continue;
      case '\n':
        out += "\\n";
        continue;
      case '\r':
        out += "\\r";
        continue;
      case '\t':
        out += "\\t";
        continue;
      case '\b':
        out += "\\b";
        continue;
      case '\f':
        out += "\\f";
        continue;
      default:
        break;
    }
    if (byte < 0x20 || byte >= 0x7f) {
      out += "\\u00";
      out += kHexDigits[byte >> 4];
      out += kHexDigits[byte & 0xf];
    } else {
      out += c;
    }
  }
}

void AppendHex64(uint64_t value, std::string* out) {
  char digits[16];
  for (int i = 15; i >= 0; --i) {
    digits[i] = kHexDigits[value & 0xf];
    value >>= 4;
  }
  out->append(digits, sizeof(digits));
}

std::string Hex64(uint64_t value) {
  std::string out;
  AppendHex64(value, &out);
  return out;
}

void JsonLine::Key(absl::string_view key) {
  DCHECK(!key.empty());
  for (const char c : key) {
    DCHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           (c >= '0' && c <= '9') || c == '_')
        << "JSON key must be a plain identifier: " << key;
  }
  if (!fields_.empty()) fields_ += ',';
  fields_ += '"';
  fields_.append(key.data(), key.size());
  fields_ += "\":";
}

JsonLine& JsonLine::Int(absl::string_view key, int64_t value) {
  Key(key);
  absl::StrAppend(&fields_, value);
  return *this;
}

JsonLine& JsonLine::Uint(absl::string_view key, uint64_t value) {
  Key(key);
  absl::StrAppend(&fields_, value);
  return *this;
}

JsonLine& JsonLine::Bool(absl::string_view key, bool value) {
  Key(key);
  fields_ += value ? "true" : "false";
  return *this;
}

JsonLine& JsonLine::Str(absl::string_view key, absl::string_view value) {
  Key(key);
  fields_ += '"';
  AppendJsonEscaped(value, &fields_);
  fields_ += '"';
  return *this;
}

JsonLine& JsonLine::Hex(absl::string_view key, uint64_t value) {
  Key(key);
  fields_ += '"';
  AppendHex64(value, &fields_);
  fields_ += '"';
  return *this;
}

JsonLine& JsonLine::Nodes(absl::string_view key,
                          const std::vector<NodeId>& nodes) {
  Key(key);
  fields_ += '[';
  for (size_t i = 0; i < nodes.size(); ++i) {
    if (i > 0) fields_ += ',';
    absl::StrAppend(&fields_, nodes[i].value());
  }
  fields_ += ']';
  return *this;
}

JsonLine& JsonLine::Raw(absl::string_view key, absl::string_view json) {
  CHECK(!json.empty());
  Key(key);
  absl::StrAppend(&fields_, json);
  return *this;
}

JsonLine& JsonLine::Append(const JsonLine& other) {
  if (other.fields_.empty()) return *this;
  if (!fields_.empty()) fields_ += ',';
  fields_ += other.fields_;
  return *this;
}

std::string JsonLine::Finish() const { return absl::StrCat("{", fields_, "}"); }

void TraceWriter::HashStateDeleter::operator()(XXH3_state_s* state) const {
  XXH3_freeState(state);
}

TraceWriter::TraceWriter(std::ostream* out)
    : out_(out), hash_state_(XXH3_createState()) {
  CHECK(hash_state_ != nullptr) << "out of memory for the trace hash state";
  CHECK_EQ(XXH3_64bits_reset(hash_state_.get()), XXH_OK);
}

TraceWriter::~TraceWriter() = default;

void TraceWriter::Write(absl::string_view line, bool hashed) {
  CHECK(!finished_) << "trace line after the result line";
  DCHECK(line.find('\n') == absl::string_view::npos);
  if (hashed) {
    CHECK_EQ(XXH3_64bits_update(hash_state_.get(), line.data(), line.size()), XXH_OK);
    CHECK_EQ(XXH3_64bits_update(hash_state_.get(), "\n", 1), XXH_OK);
  }
  ++lines_;
  if (out_ != nullptr) *out_ << line << '\n';
  if (listener_) listener_(line);
}

uint64_t TraceWriter::hash() const { return XXH3_64bits_digest(hash_state_.get()); }

void TraceWriter::Header(uint64_t seed, uint64_t nodes, const JsonLine& extra) {
  CHECK_EQ(lines_, 0u) << "the header is the first line";
  Write(JsonLine()
            .Str("type", "header")
            .Uint("seed", seed)
            .Uint("nodes", nodes)
            .Append(extra)
            .Finish(),
        true);
}

void TraceWriter::Role(int64_t t_us, NodeId node, absl::string_view role,
                       Term term) {
  Write(JsonLine()
            .Int("t", t_us)
            .Str("type", "role")
            .Uint("node", node.value())
            .Str("role", role)
            .Uint("term", term.value())
            .Finish(),
        true);
}

void TraceWriter::Apply(int64_t t_us, NodeId node, Index index, Term term,
                        uint64_t entry_hash) {
  // The most frequent line (every node applies every entry): built in one
  // StrCat, byte for byte what JsonLine would build (trace_test compares).
  line_.clear();
  absl::StrAppend(&line_, "{\"t\":", t_us, ",\"type\":\"apply\",\"node\":",
                  node.value(), ",\"index\":", index.value(), ",\"term\":",
                  term.value(), ",\"hash\":\"");
  AppendHex64(entry_hash, &line_);
  line_ += "\"}";
  Write(line_, true);
}

void TraceWriter::Snapshot(int64_t t_us, NodeId node, Index index, Term term,
                           uint64_t digest) {
  Write(JsonLine()
            .Int("t", t_us)
            .Str("type", "snapshot")
            .Uint("node", node.value())
            .Uint("index", index.value())
            .Uint("term", term.value())
            .Hex("digest", digest)
            .Finish(),
        true);
}

void TraceWriter::Stop(int64_t t_us, NodeId node, absl::string_view why) {
  CHECK(!why.empty()) << "a stop line says why";
  Write(JsonLine()
            .Int("t", t_us)
            .Str("type", "stop")
            .Uint("node", node.value())
            .Str("why", why)
            .Finish(),
        true);
}

void TraceWriter::Fault(int64_t t_us, absl::string_view fault,
                        const std::vector<NodeId>& nodes,
                        const JsonLine& extra) {
  Write(JsonLine()
            .Int("t", t_us)
            .Str("type", "fault")
            .Str("fault", fault)
            .Nodes("nodes", nodes)
            .Append(extra)
            .Finish(),
        true);
}

void TraceWriter::Invoke(int64_t t_us, uint64_t client, uint64_t op_id,
                         absl::string_view op, absl::string_view key,
                         const std::optional<std::string>& value,
                         const std::optional<std::string>& expected) {
  JsonLine line;
  line.Int("t", t_us)
      .Str("type", "invoke")
      .Uint("client", client)
      .Uint("op_id", op_id)
      .Str("op", op)
      .Str("key", key);
  if (value) line.Str("value", *value);
  if (expected) line.Str("expected", *expected);
  Write(line.Finish(), true);
}

void TraceWriter::Complete(int64_t t_us, uint64_t client, uint64_t op_id,
                           absl::string_view status,
                           const std::optional<std::string>& value) {
  CHECK(status == "ok" || status == "fail" || status == "unknown") << status;
  JsonLine line;
  line.Int("t", t_us)
      .Str("type", "complete")
      .Uint("client", client)
      .Uint("op_id", op_id)
      .Str("status", status);
  if (value) line.Str("value", *value);
  Write(line.Finish(), true);
}

void TraceWriter::Event(int64_t t_us, absl::string_view type,
                        const JsonLine& fields) {
  Write(JsonLine().Int("t", t_us).Str("type", type).Append(fields).Finish(),
        true);
}

uint64_t TraceWriter::Result(bool pass, const JsonLine& fields,
                             const JsonLine& wall) {
  const uint64_t trace_hash = hash();
  Write(JsonLine()
            .Str("type", "result")
            .Str("status", pass ? "pass" : "fail")
            .Append(fields)
            .Hex("trace_hash", trace_hash)
            .Append(wall)
            .Finish(),
        false);
  finished_ = true;
  if (out_ != nullptr) out_->flush();
  return trace_hash;
}

void TraceWriter::CheckInvariants() const {
  if (finished_) {
    CHECK_GE(lines_, 1u);
  }
  if (out_ != nullptr) {
    CHECK(out_->good()) << "trace stream failed";
  }
}

}  // namespace blixard::sim
