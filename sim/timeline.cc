#include "sim/timeline.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "core/base/check.h"

namespace blixard::sim {
namespace {

constexpr int64_t kWidthPx = 1200;
constexpr int64_t kLabelPx = 90;
constexpr int64_t kRowPx = 22;
constexpr int64_t kClientRowPx = 14;
constexpr size_t kOpsDrawnMax = 20000;  // keep the file a few MB at most

std::string Escape(absl::string_view text) {
  return absl::StrReplaceAll(text, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"},
                                    {"\"", "&quot;"}});
}

const char* RoleColor(absl::string_view role) {
  if (role == "leader") return "#e8a200";
  if (role == "candidate") return "#e0622f";
  if (role == "precandidate") return "#f2b48c";
  if (role == "learner") return "#5fb3a8";
  return "#9fb3c8";  // follower
}

const char* StatusColor(absl::string_view status) {
  if (status == "ok") return "#3c9a4c";
  if (status == "fail") return "#c8372d";
  if (status == "unknown") return "#8a8a8a";
  return "#d0d0d0";  // still pending at the end
}

}  // namespace

Timeline::Timeline(uint64_t seed, std::vector<NodeId> nodes)
    : seed_(seed), nodes_(std::move(nodes)) {}

void Timeline::Close(std::vector<Segment>& segments, int64_t t_us) {
  if (!segments.empty() && segments.back().to_us < 0) segments.back().to_us = t_us;
}

void Timeline::Role(int64_t t_us, NodeId node, absl::string_view role, Term term) {
  std::vector<Segment>& segments = roles_[node];
  Close(segments, t_us);
  segments.push_back(Segment{t_us, -1, std::string(role), term.value()});
}

void Timeline::Fault(int64_t t_us, absl::string_view kind,
                     const std::vector<NodeId>& nodes) {
  if (kind == "crash" || kind == "pause") {
    for (NodeId node : nodes) {
      Close(outages_[node], t_us);
      outages_[node].push_back(Segment{t_us, -1, std::string(kind)});
      if (kind == "crash") Close(roles_[node], t_us);
    }
  } else if (kind == "restart" || kind == "resume") {
    for (NodeId node : nodes) Close(outages_[node], t_us);
  } else if (kind == "heal" || kind == "unclog") {
    Close(network_, t_us);
  } else if (kind == "partition" || kind == "partition_one_way" || kind == "isolate" ||
             kind == "bridge" || kind == "clog") {
    // Cuts in the network: partitions of any shape and clogs.
    Close(network_, t_us);
    std::string label(kind);
    for (NodeId node : nodes) absl::StrAppend(&label, " n", node.value());
    network_.push_back(Segment{t_us, -1, label});
  }
  for (NodeId node : nodes) marks_[node].push_back(Mark{t_us, std::string(kind)});
}

void Timeline::Invoke(int64_t t_us, uint64_t client, uint64_t op_id,
                      absl::string_view op) {
  ops_[client][op_id] = Op{t_us, -1, std::string(op), ""};
}

void Timeline::Complete(int64_t t_us, uint64_t client, uint64_t op_id,
                        absl::string_view status) {
  auto it = ops_[client].find(op_id);
  if (it == ops_[client].end()) return;
  it->second.complete_us = t_us;
  it->second.status = std::string(status);
}

void Timeline::Violation(int64_t t_us, absl::string_view text) {
  violations_.emplace_back(t_us, std::string(text));
}

std::string Timeline::Render(int64_t end_us) const {
  const int64_t span = std::max<int64_t>(end_us, 1);
  auto x = [&](int64_t t_us) {
    return kLabelPx + std::clamp<int64_t>(t_us, 0, span) * (kWidthPx - kLabelPx) / span;
  };
  auto to = [&](const Segment& s) { return s.to_us < 0 ? end_us : s.to_us; };
  const int64_t nodes_top = 30;
  const int64_t network_top = nodes_top + static_cast<int64_t>(nodes_.size()) * kRowPx + 6;
  const int64_t clients_top = network_top + kRowPx + 16;
  const int64_t height =
      clients_top + static_cast<int64_t>(ops_.size()) * kClientRowPx + 40;

  std::string svg;
  absl::StrAppend(&svg, "<svg xmlns='http://www.w3.org/2000/svg' width='", kWidthPx + 10,
                  "' height='", height, "'>\n");
  // Time axis: a tick every tenth of the run.
  for (int i = 0; i <= 10; ++i) {
    const int64_t t = span * i / 10;
    absl::StrAppend(&svg, "<line x1='", x(t), "' y1='20' x2='", x(t), "' y2='", height - 20,
                    "' class='grid'/><text x='", x(t), "' y='14' class='axis'>",
                    t / 1000000, ".", (t / 100000) % 10, "s</text>\n");
  }
  for (size_t row = 0; row < nodes_.size(); ++row) {
    const NodeId node = nodes_[row];
    const int64_t y = nodes_top + static_cast<int64_t>(row) * kRowPx;
    absl::StrAppend(&svg, "<text x='4' y='", y + 15, "' class='label'>n", node.value(),
                    "</text>\n");
    if (auto it = roles_.find(node); it != roles_.end()) {
      for (const Segment& s : it->second) {
        const int64_t w = std::max<int64_t>(x(to(s)) - x(s.from_us), 1);
        absl::StrAppend(&svg, "<rect x='", x(s.from_us), "' y='", y + 2, "' width='", w,
                        "' height='", kRowPx - 6, "' fill='", RoleColor(s.kind),
                        "'><title>n", node.value(), " ", s.kind, " term ", s.term, " [",
                        s.from_us, "us, ", to(s), "us]</title></rect>\n");
        if (s.kind == "leader" && w > 24) {
          absl::StrAppend(&svg, "<text x='", x(s.from_us) + 3, "' y='", y + 14,
                          "' class='term'>t", s.term, "</text>\n");
        }
      }
    }
    if (auto it = outages_.find(node); it != outages_.end()) {
      for (const Segment& s : it->second) {
        const int64_t w = std::max<int64_t>(x(to(s)) - x(s.from_us), 2);
        absl::StrAppend(&svg, "<rect x='", x(s.from_us), "' y='", y + 2, "' width='", w,
                        "' height='", kRowPx - 6, "' class='", s.kind, "'><title>n",
                        node.value(), " ", s.kind == "crash" ? "crashed" : "paused", " [",
                        s.from_us, "us, ", to(s), "us]</title></rect>\n");
      }
    }
  }
  // Every fault as a tick above its node's row, named in a tooltip.
  for (size_t row = 0; row < nodes_.size(); ++row) {
    auto it = marks_.find(nodes_[row]);
    if (it == marks_.end()) continue;
    const int64_t y = nodes_top + static_cast<int64_t>(row) * kRowPx;
    for (const Mark& mark : it->second) {
      absl::StrAppend(&svg, "<rect x='", x(mark.t_us), "' y='", y, "' width='2' height='3' ",
                      "class='mark'><title>", Escape(mark.kind), " at ", mark.t_us,
                      "us</title></rect>\n");
    }
  }
  absl::StrAppend(&svg, "<text x='4' y='", network_top + 15, "' class='label'>network</text>\n");
  for (const Segment& s : network_) {
    absl::StrAppend(&svg, "<rect x='", x(s.from_us), "' y='", network_top + 2, "' width='",
                    std::max<int64_t>(x(to(s)) - x(s.from_us), 2), "' height='",
                    kRowPx - 6, "' class='partition'><title>", Escape(s.kind), " [",
                    s.from_us, "us, ", to(s), "us]</title></rect>\n");
  }
  size_t drawn = 0;
  int64_t row = 0;
  for (const auto& [client, ops] : ops_) {
    const int64_t y = clients_top + row * kClientRowPx;
    absl::StrAppend(&svg, "<text x='4' y='", y + 10, "' class='small'>client ", client,
                    "</text>\n");
    for (const auto& [op_id, op] : ops) {
      if (++drawn > kOpsDrawnMax) break;
      const int64_t end = op.complete_us < 0 ? end_us : op.complete_us;
      absl::StrAppend(&svg, "<rect x='", x(op.invoke_us), "' y='", y + 2, "' width='",
                      std::max<int64_t>(x(end) - x(op.invoke_us), 1), "' height='",
                      kClientRowPx - 4, "' fill='", StatusColor(op.status), "'><title>",
                      Escape(op.op), " #", op_id, " ",
                      op.status.empty() ? "pending" : op.status, " [", op.invoke_us,
                      "us, ", end, "us]</title></rect>\n");
    }
    ++row;
  }
  for (const auto& [t_us, text] : violations_) {
    absl::StrAppend(&svg, "<line x1='", x(t_us), "' y1='20' x2='", x(t_us), "' y2='",
                    height - 20, "' class='violation'/><text x='", x(t_us) + 4, "' y='",
                    height - 8, "' class='violation-text'>", Escape(text), "</text>\n");
  }
  absl::StrAppend(&svg, "</svg>\n");

  std::string html;
  absl::StrAppend(
      &html, "<!DOCTYPE html>\n<html><head><meta charset='utf-8'><title>blixard sim seed ",
      seed_, "</title>\n<style>\n",
      "body{font-family:sans-serif;margin:16px;color:#222}\n",
      ".grid{stroke:#e4e4e4;stroke-width:1}\n.axis,.small{font-size:10px;fill:#555}\n",
      ".label{font-size:12px;fill:#222}\n.term{font-size:10px;fill:#000}\n",
      ".crash{fill:#222;opacity:.85}\n.pause{fill:#7a5cc7;opacity:.55}\n",
      ".partition{fill:#d94f8c;opacity:.6}\n.mark{fill:#444}\n",
      ".violation{stroke:#e00;stroke-width:2}\n.violation-text{font-size:12px;fill:#e00}\n",
      ".legend span{display:inline-block;width:12px;height:12px;margin:0 4px 0 12px;"
      "vertical-align:middle}\n</style></head><body>\n",
      "<h2>blixard sim, seed ", seed_, "</h2>\n<p>", nodes_.size(), " nodes, ",
      end_us / 1000, " ms of virtual time",
      violations_.empty() ? ", no violation" : ", <b style='color:#e00'>violation</b>",
      "</p>\n<p class='legend'>",
      "<span style='background:#e8a200'></span>leader",
      "<span style='background:#e0622f'></span>candidate",
      "<span style='background:#f2b48c'></span>pre-candidate",
      "<span style='background:#9fb3c8'></span>follower",
      "<span style='background:#5fb3a8'></span>learner",
      "<span style='background:#222'></span>crashed",
      "<span style='background:#7a5cc7'></span>paused",
      "<span style='background:#d94f8c'></span>partition",
      "<span style='background:#3c9a4c'></span>op ok",
      "<span style='background:#c8372d'></span>op failed",
      "<span style='background:#8a8a8a'></span>op unknown</p>\n", svg,
      "</body></html>\n");
  return html;
}

}  // namespace blixard::sim
