#include "sim/checker/trace_order.h"

#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"

namespace blixard::sim {
namespace {

// Nesting a skipped value may have ({"a":[[...]]}): the simulator writes
// flat objects with flat arrays, so a deeper line is refused, not recursed.
constexpr int kJsonDepthMax = 64;

// One top-level value of a line's object, as far as this reader needs it.
struct Field {
  enum class Kind { kInteger, kString, kArray, kOther };
  Kind kind = Kind::kOther;
  int64_t integer = 0;        // kInteger
  std::string text;           // kString, decoded
  std::vector<uint64_t> ids;  // kArray whose elements are all whole numbers
  bool ids_ok = true;         // kArray: every element was a whole number
};

// A cursor over one line. Each Parse* returns false with `error_` set on
// malformed input; nothing here can read past the end.
class LineParser {
 public:
  explicit LineParser(absl::string_view line) : s_(line) {}

  bool ParseObject(std::map<std::string, Field>* fields) {
    SkipSpace();
    if (!Expect('{')) return false;
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
      return AtEnd();
    }
    while (true) {
      SkipSpace();
      std::string key;
      if (Peek() != '"') return Fail("expected a quoted key");
      if (!ParseString(&key)) return false;
      SkipSpace();
      if (!Expect(':')) return false;
      SkipSpace();
      Field field;
      if (!ParseValue(&field)) return false;
      if (!fields->emplace(key, std::move(field)).second) {
        return Fail(absl::StrCat("key \"", key, "\" appears twice"));
      }
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      if (!Expect('}')) return false;
      return AtEnd();
    }
  }

  const std::string& error() const { return error_; }

 private:
  char Peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }
  void SkipSpace() {
    while (pos_ < s_.size() &&
           (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\r' || s_[pos_] == '\n')) {
      ++pos_;
    }
  }
  bool Fail(absl::string_view what) {
    if (error_.empty()) error_ = absl::StrCat(what, " at column ", pos_ + 1);
    return false;
  }
  bool Expect(char c) {
    if (pos_ >= s_.size() || s_[pos_] != c) {
      return Fail(absl::StrCat("expected '", std::string(1, c), "'"));
    }
    ++pos_;
    return true;
  }
  bool AtEnd() {
    SkipSpace();
    if (pos_ != s_.size()) return Fail("text after the object");
    return true;
  }

  static int HexDigit(char c) {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  }

  // A JSON string; \u00XX decodes to that byte (the writer's Latin-1 form),
  // any other \uXXXX to '?' (this reader compares ASCII names only).
  bool ParseString(std::string* out) {
    if (!Expect('"')) return false;
    while (pos_ < s_.size()) {
      const char c = s_[pos_++];
      if (c == '"') return true;
      if (static_cast<unsigned char>(c) < 0x20) return Fail("control byte in a string");
      if (c != '\\') {
        out->push_back(c);
        continue;
      }
      if (pos_ >= s_.size()) break;
      const char e = s_[pos_++];
      switch (e) {
        case '"':
        case '\\':
        case '/':
          out->push_back(e);
          break;
        case 'b':
          out->push_back('\b');
          break;
        case 'f':
          out->push_back('\f');
          break;
        case 'n':
          out->push_back('\n');
          break;
        case 'r':
          out->push_back('\r');
          break;
        case 't':
          out->push_back('\t');
          break;
        case 'u': {
          if (s_.size() - pos_ < 4) return Fail("short \\u escape");
          int code = 0;
          for (int i = 0; i < 4; ++i) {
            const int d = HexDigit(s_[pos_ + static_cast<size_t>(i)]);
            if (d < 0) return Fail("bad \\u escape");
            code = code * 16 + d;
          }
          pos_ += 4;
          out->push_back(code < 0x100 ? static_cast<char>(code) : '?');
          break;
        }
        default:
          return Fail("bad escape in a string");
      }
    }
    return Fail("unterminated string");
  }

  // An integer (optionally negative) that fits int64; a number with a
  // fraction or exponent, or out of range, is kOther (never a field this
  // reader needs as a number).
  bool ParseNumber(Field* field) {
    const size_t start = pos_;
    bool negative = false;
    if (Peek() == '-') {
      negative = true;
      ++pos_;
    }
    if (!(Peek() >= '0' && Peek() <= '9')) return Fail("expected a digit");
    uint64_t magnitude = 0;
    bool overflow = false;
    while (Peek() >= '0' && Peek() <= '9') {
      const uint64_t digit = static_cast<uint64_t>(Peek() - '0');
      if (magnitude > (std::numeric_limits<uint64_t>::max() - digit) / 10) overflow = true;
      magnitude = magnitude * 10 + digit;
      ++pos_;
    }
    bool whole = true;
    if (Peek() == '.' || Peek() == 'e' || Peek() == 'E') {
      whole = false;
      while (pos_ < s_.size() &&
             (s_[pos_] == '.' || s_[pos_] == 'e' || s_[pos_] == 'E' || s_[pos_] == '+' ||
              s_[pos_] == '-' || (s_[pos_] >= '0' && s_[pos_] <= '9'))) {
        ++pos_;
      }
    }
    field->kind = Field::Kind::kOther;
    const uint64_t int64_max = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());
    if (whole && !overflow && !negative && magnitude <= int64_max) {
      field->kind = Field::Kind::kInteger;
      field->integer = static_cast<int64_t>(magnitude);
    } else if (whole && !overflow && negative && magnitude <= int64_max) {
      field->kind = Field::Kind::kInteger;
      field->integer = -static_cast<int64_t>(magnitude);
    }
    return pos_ > start;
  }

  bool ParseLiteral(absl::string_view word) {
    if (s_.substr(pos_, word.size()) != word) return Fail("expected a value");
    pos_ += word.size();
    return true;
  }

  bool ParseArray(Field* field, int depth) {
    field->kind = Field::Kind::kArray;
    if (!Expect('[')) return false;
    SkipSpace();
    if (Peek() == ']') {
      ++pos_;
      return true;
    }
    while (true) {
      SkipSpace();
      Field element;
      if (!ParseValueAt(&element, depth + 1)) return false;
      if (element.kind == Field::Kind::kInteger && element.integer >= 0) {
        field->ids.push_back(static_cast<uint64_t>(element.integer));
      } else {
        field->ids_ok = false;
      }
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      return Expect(']');
    }
  }

  bool SkipObject(int depth) {
    if (!Expect('{')) return false;
    SkipSpace();
    if (Peek() == '}') {
      ++pos_;
      return true;
    }
    while (true) {
      SkipSpace();
      std::string key;
      if (!ParseString(&key)) return false;
      SkipSpace();
      if (!Expect(':')) return false;
      SkipSpace();
      Field ignored;
      if (!ParseValueAt(&ignored, depth + 1)) return false;
      SkipSpace();
      if (Peek() == ',') {
        ++pos_;
        continue;
      }
      return Expect('}');
    }
  }

  bool ParseValue(Field* field) { return ParseValueAt(field, 1); }

  bool ParseValueAt(Field* field, int depth) {
    if (depth > kJsonDepthMax) return Fail("values nested too deep");
    const char c = Peek();
    if (c == '"') {
      field->kind = Field::Kind::kString;
      return ParseString(&field->text);
    }
    if (c == '[') return ParseArray(field, depth);
    if (c == '{') {
      field->kind = Field::Kind::kOther;
      return SkipObject(depth);
    }
    if (c == '-' || (c >= '0' && c <= '9')) return ParseNumber(field);
    field->kind = Field::Kind::kOther;
    if (c == 't') return ParseLiteral("true");
    if (c == 'f') return ParseLiteral("false");
    if (c == 'n') return ParseLiteral("null");
    return Fail("expected a value");
  }

  absl::string_view s_;
  size_t pos_ = 0;
  std::string error_;
};

// Line 0 is the start of the run (before any line changed the node).
std::string LineRef(uint64_t line) {
  return line == 0 ? std::string("the start of the run") : absl::StrCat("line ", line);
}

}  // namespace

absl::Status TraceOrderChecker::AddLine(absl::string_view line) {
  if (!status_.ok()) return status_;
  ++lines_;
  if (line.empty()) return status_;
  status_ = Check(line);
  return status_;
}

TraceOrderChecker::NodeOrder* TraceOrderChecker::Node(uint64_t id, absl::Status* error) {
  auto it = nodes_.find(id);
  if (it != nodes_.end()) return &it->second;
  if (id == 0) {
    *error =
        absl::InvalidArgumentError(absl::StrCat(LineRef(lines_), ": node id 0 (it means no node)"));
    return nullptr;
  }
  if (nodes_.size() >= kTraceNodesMax) {
    *error = absl::InvalidArgumentError(
        absl::StrCat(LineRef(lines_), ": more than ", kTraceNodesMax, " distinct nodes"));
    return nullptr;
  }
  return &nodes_.emplace(id, NodeOrder{}).first->second;
}

absl::Status TraceOrderChecker::Check(absl::string_view line) {
  const std::string where = LineRef(lines_);
  auto bad = [&where](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": ", what));
  };
  if (line.size() > kTraceLineBytesMax) {
    return bad(absl::StrCat("longer than ", kTraceLineBytesMax, " bytes"));
  }
  std::map<std::string, Field> fields;
  LineParser parser(line);
  if (!parser.ParseObject(&fields)) return bad(absl::StrCat("not a JSON object: ", parser.error()));

  auto type_it = fields.find("type");
  if (type_it == fields.end() || type_it->second.kind != Field::Kind::kString) {
    return bad("no \"type\" string");
  }
  const std::string& type = type_it->second.text;
  if (type == "header" || type == "result") return absl::OkStatus();

  // Time: every other line has it, and it never goes back.
  auto t_it = fields.find("t");
  if (t_it == fields.end() || t_it->second.kind != Field::Kind::kInteger) {
    return bad(absl::StrCat("a \"", type, "\" line without an integer \"t\""));
  }
  const int64_t t = t_it->second.integer;
  if (have_t_ && t < last_t_) {
    return bad(absl::StrCat("t=", t, " is before t=", last_t_, " of ", LineRef(last_t_line_),
                            ": time must not go back"));
  }
  have_t_ = true;
  last_t_ = t;
  last_t_line_ = lines_;

  auto whole = [&](absl::string_view key, uint64_t* out) -> absl::Status {
    auto it = fields.find(std::string(key));
    if (it == fields.end() || it->second.kind != Field::Kind::kInteger || it->second.integer < 0) {
      return bad(absl::StrCat("a \"", type, "\" line needs a whole number \"", key, "\""));
    }
    *out = static_cast<uint64_t>(it->second.integer);
    return absl::OkStatus();
  };

  if (type == "apply" || type == "snapshot") {
    uint64_t node_id = 0, index = 0;
    if (absl::Status s = whole("node", &node_id); !s.ok()) return s;
    if (absl::Status s = whole("index", &index); !s.ok()) return s;
    absl::Status error;
    NodeOrder* node = Node(node_id, &error);
    if (node == nullptr) return error;
    if (node->down) {
      return bad(absl::StrCat("n", node_id, " ",
                              type == "apply" ? "applied" : "installed a snapshot at", " index ",
                              index, " while down (since ", LineRef(node->changed_line), ")"));
    }
    if (type == "apply") {
      ++applies_;
      if (index != node->next_index) {
        return bad(absl::StrCat("n", node_id, " applied index ", index, ", expected ",
                                node->next_index, " (", node->because, ", ",
                                LineRef(node->changed_line), ")"));
      }
      node->next_index = index + 1;
      node->because = absl::StrCat("the next after index ", index);
      node->changed_line = lines_;
      return absl::OkStatus();
    }
    ++snapshots_;
    // The state machine then holds everything up to `index`: applying
    // fewer than it already had would go back.
    if (index + 1 < node->next_index) {
      return bad(absl::StrCat("n", node_id, " installed a snapshot at index ", index,
                              " behind what it had applied: its next index was ", node->next_index,
                              " (", node->because, ", ", LineRef(node->changed_line), ")"));
    }
    if (index == std::numeric_limits<uint64_t>::max()) return bad("snapshot index overflows");
    node->next_index = index + 1;
    node->because = absl::StrCat("the next after the snapshot at index ", index);
    node->changed_line = lines_;
    return absl::OkStatus();
  }

  if (type == "stop") {
    uint64_t node_id = 0;
    if (absl::Status s = whole("node", &node_id); !s.ok()) return s;
    absl::Status error;
    NodeOrder* node = Node(node_id, &error);
    if (node == nullptr) return error;
    if (node->down) {
      return bad(absl::StrCat("n", node_id, " stopped while already down (since ",
                              LineRef(node->changed_line), ")"));
    }
    node->down = true;
    node->changed_line = lines_;
    return absl::OkStatus();
  }

  if (type == "fault") {
    auto fault_it = fields.find("fault");
    if (fault_it == fields.end() || fault_it->second.kind != Field::Kind::kString) {
      return bad("a \"fault\" line without a \"fault\" string");
    }
    const std::string& fault = fault_it->second.text;
    if (fault != "crash" && fault != "restart") return absl::OkStatus();
    auto nodes_it = fields.find("nodes");
    if (nodes_it == fields.end() || nodes_it->second.kind != Field::Kind::kArray ||
        !nodes_it->second.ids_ok) {
      return bad(absl::StrCat("a \"", fault, "\" fault without a \"nodes\" array of node ids"));
    }
    for (uint64_t node_id : nodes_it->second.ids) {
      absl::Status error;
      NodeOrder* node = Node(node_id, &error);
      if (node == nullptr) return error;
      if (fault == "crash") {
        // A crash of several nodes is written when any of them crashed;
        // one already down stays down, its lifetime already ended.
        if (!node->down) {
          node->down = true;
          node->changed_line = lines_;
        }
        continue;
      }
      // A restart only acts on a node that is down (others in the same
      // line were not restarted): a new lifetime, from index 1 unless a
      // recovered snapshot says otherwise.
      if (!node->down) continue;
      ++restarts_;
      node->down = false;
      node->next_index = 1;
      node->because = "a restarted node replays from index 1 unless a snapshot line comes first";
      node->changed_line = lines_;
    }
    return absl::OkStatus();
  }
  return absl::OkStatus();
}

absl::Status CheckTraceOrder(absl::string_view text) {
  TraceOrderChecker checker;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == absl::string_view::npos) end = text.size();
    if (!checker.AddLine(text.substr(start, end - start)).ok()) break;
    start = end + 1;
  }
  return checker.status();
}

}  // namespace blixard::sim
