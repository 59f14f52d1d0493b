// The simulator's trace: JSON lines (format in sim/TRACE.md), with a running
// stable 64-bit hash of every line written.
//
// Two runs of the same seed and binary must write byte-identical traces; the
// hash makes that one number to compare. Everything in a hashed line must be
// deterministic (virtual time, never wall time). Wall-clock figures go only in
// the result line's `wall` fields, which are written after the hash and not
// hashed.
//
// The hash is StableHash64 (XXH3-64, fed line by line through its streaming
// state) of the bytes of every line written so far including their '\n', so
// `trace_hash` can be recomputed from the file by hashing every line before
// the result line.
//
//   std::ofstream file(path);
//   TraceWriter trace(&file);
//   trace.Header(seed, 5, JsonLine().Str("faults", "heavy"));
//   trace.Role(world.now_us(), NodeId(1), "leader", Term(2));
//   ...
//   trace.Result(true, JsonLine().Uint("events", n), JsonLine().Uint("wall_ms",
//   w));
//
// Thread: one thread. The stream must outlive the writer.
#ifndef BLIXARD_SIM_TRACE_H_
#define BLIXARD_SIM_TRACE_H_

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/string_view.h"
#include "core/base/types.h"

struct XXH3_state_s;

namespace blixard::sim {

// `bytes` as the inside of a JSON string: ", \ and control characters
// escaped; bytes >= 0x7f written as \u00XX (each byte as one Latin-1 code
// point), so any byte string gives valid, ASCII-only JSON and maps back to
// the same bytes.
std::string JsonEscape(absl::string_view bytes);
// Appends JsonEscape(bytes) to *out.
void AppendJsonEscaped(absl::string_view bytes, std::string* out);

// 16 lowercase hex digits.
std::string Hex64(uint64_t value);
// Appends Hex64(value) to *out.
void AppendHex64(uint64_t value, std::string* out);

// One JSON object, built field by field in the order given (the order is part
// of the byte-identical trace). Keys must be plain ASCII identifiers.
class JsonLine {
 public:
  JsonLine& Int(absl::string_view key, int64_t value);
  JsonLine& Uint(absl::string_view key, uint64_t value);
  JsonLine& Bool(absl::string_view key, bool value);
  JsonLine& Str(absl::string_view key, absl::string_view value);
  JsonLine& Hex(absl::string_view key, uint64_t value);  // as a "HEX" string
  JsonLine& Nodes(absl::string_view key, const std::vector<NodeId>& nodes);
  // A value that is already JSON (an array or object built elsewhere).
  JsonLine& Raw(absl::string_view key, absl::string_view json);
  // Appends every field of `other` after this one's.
  JsonLine& Append(const JsonLine& other);

  bool empty() const { return fields_.empty(); }
  // "{...}" without a newline.
  std::string Finish() const;

 private:
  void Key(absl::string_view key);
  std::string fields_;  // "\"k\":v,\"k\":v"
};

class TraceWriter {
 public:
  // `out` may be null: hash only (the determinism check needs no file).
  explicit TraceWriter(std::ostream* out);
  ~TraceWriter();
  TraceWriter(const TraceWriter&) = delete;
  TraceWriter& operator=(const TraceWriter&) = delete;

  // {"type":"header","seed":S,"nodes":N,<extra>}. REQUIRES: first line.
  void Header(uint64_t seed, uint64_t nodes, const JsonLine& extra = {});
  // {"t":US,"type":"role","node":ID,"role":R,"term":T}
  void Role(int64_t t_us, NodeId node, absl::string_view role, Term term);
  // {"t":US,"type":"apply","node":ID,"index":I,"term":T,"hash":"HEX"}
  void Apply(int64_t t_us, NodeId node, Index index, Term term,
             uint64_t entry_hash);
  // {"t":US,"type":"snapshot","node":ID,"index":I,"term":T,"digest":"HEX"}:
  // the node's state machine now holds the snapshot at (index, term) with
  // this state digest; its next apply is index + 1.
  void Snapshot(int64_t t_us, NodeId node, Index index, Term term,
                uint64_t digest);
  // {"t":US,"type":"stop","node":ID,"why":W}: the node stopped itself (a
  // failed durable write, a store that refused to open). REQUIRES: why is
  // not empty.
  void Stop(int64_t t_us, NodeId node, absl::string_view why);
  // {"t":US,"type":"fault","fault":F,"nodes":[...],<extra>}
  void Fault(int64_t t_us, absl::string_view fault,
             const std::vector<NodeId>& nodes, const JsonLine& extra = {});
  // {"t":US,"type":"invoke","client":C,"op_id":K,"op":OP,"key":..,
  //  "value":..,"expected":..} (value and expected only when given)
  void Invoke(int64_t t_us, uint64_t client, uint64_t op_id,
              absl::string_view op, absl::string_view key,
              const std::optional<std::string>& value = std::nullopt,
              const std::optional<std::string>& expected = std::nullopt);
  // {"t":US,"type":"complete","client":C,"op_id":K,"status":"ok|fail|unknown",
  //  "value":..} (value only when given)
  void Complete(int64_t t_us, uint64_t client, uint64_t op_id,
                absl::string_view status,
                const std::optional<std::string>& value = std::nullopt);
  // Any other line: {"t":US,"type":TYPE,<fields>}.
  void Event(int64_t t_us, absl::string_view type, const JsonLine& fields);

  // The last line: {"type":"result","status":"pass|fail",<fields>,
  // "trace_hash":"HEX",<wall>}. Returns the trace hash (of every line
  // before this one). `wall` holds the wall-clock figures, unhashed.
  // REQUIRES: not called before; no line is written after it.
  uint64_t Result(bool pass, const JsonLine& fields, const JsonLine& wall = {});

  // Called with every line as it is written (the result line included),
  // without its '\n', byte for byte what the stream receives: for a reader
  // that checks the trace as the run goes (sim/checker/trace_order.h).
  // Empty: none. The view is valid only during the call.
  void SetLineListener(std::function<void(absl::string_view line)> listener) {
    listener_ = std::move(listener);
  }

  // StableHash64 of every byte written so far (the result line excluded).
  uint64_t hash() const;
  uint64_t lines() const { return lines_; }
  bool finished() const { return finished_; }

  void CheckInvariants() const;

 private:
  void Write(absl::string_view line, bool hashed);
  struct HashStateDeleter {
    void operator()(XXH3_state_s* state) const;
  };

  std::ostream* out_;
  std::function<void(absl::string_view)> listener_;
  std::unique_ptr<XXH3_state_s, HashStateDeleter> hash_state_;
  std::string line_;  // apply lines are built here: no allocation per line
  uint64_t lines_ = 0;
  bool finished_ = false;
};

}  // namespace blixard::sim

#endif  // BLIXARD_SIM_TRACE_H_
