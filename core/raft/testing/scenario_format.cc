#include "core/raft/testing/scenario_format.h"

#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"

namespace blixard::raft::testing {

std::vector<ScenarioCase> ParseScenario(const std::string& text,
                                        std::string* error) {
  std::vector<ScenarioCase> cases;
  std::vector<std::string> lines = absl::StrSplit(text, '\n');
  std::string comments;
  size_t i = 0;
  while (i < lines.size()) {
    const std::string& line = lines[i];
    if (line.empty() || absl::StartsWith(line, "#")) {
      // Trailing empty line of the file is not a comment.
      if (!(line.empty() && i + 1 == lines.size())) {
        absl::StrAppend(&comments, line, "\n");
      }
      ++i;
      continue;
    }
    ScenarioCase c;
    c.line = static_cast<int>(i + 1);
    c.comments = comments;
    comments.clear();
    c.command = line;
    ++i;
    if (i >= lines.size() || lines[i] != "----") {
      *error = absl::StrCat("line ", c.line, ": command without ----");
      return cases;
    }
    ++i;
    std::vector<std::string> expected;
    while (i < lines.size() && !lines[i].empty()) expected.push_back(lines[i++]);
    c.expected = absl::StrJoin(expected, "\n");
    cases.push_back(std::move(c));
  }
  return cases;
}

std::string FormatScenario(const std::vector<ScenarioCase>& cases,
                           const std::vector<std::string>& outputs,
                           const std::string& trailer) {
  std::string out;
  for (size_t i = 0; i < cases.size(); ++i) {
    absl::StrAppend(&out, cases[i].comments, cases[i].command, "\n----\n",
                    outputs[i], "\n");
    if (i + 1 < cases.size() && cases[i + 1].comments.empty()) out += "\n";
  }
  out += trailer;
  return out;
}

}  // namespace blixard::raft::testing
