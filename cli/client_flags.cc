#include "cli/client_flags.h"

#include <cstdio>
#include <cstdlib>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/time.h"
#include "core/base/check.h"
#include "google/protobuf/util/json_util.h"

ABSL_FLAG(std::string, client_endpoints, "",
          "the nodes' client addresses, HOST:PORT,... (default: $BLIXARD_ENDPOINTS)");
ABSL_FLAG(absl::Duration, client_timeout, absl::Seconds(10),
          "give up after this long (every retry and redirect included)");
ABSL_FLAG(std::string, client_output, "table", "table or json");

namespace blixard::cli {

CommandFlag EndpointsFlag() { return BindFlag("endpoints", FLAGS_client_endpoints); }
CommandFlag TimeoutFlag() { return BindFlag("timeout", FLAGS_client_timeout); }
CommandFlag OutputFlag() { return BindFlag("output", FLAGS_client_output); }

absl::StatusOr<std::unique_ptr<net::Client>> MakeClient() {
  std::string endpoints = absl::GetFlag(FLAGS_client_endpoints);
  if (endpoints.empty()) {
    const char* env = std::getenv("BLIXARD_ENDPOINTS");
    if (env != nullptr) endpoints = env;
  }
  if (endpoints.empty()) {
    return absl::InvalidArgumentError("no endpoints: pass --endpoints=HOST:PORT,... or set BLIXARD_ENDPOINTS");
  }
  const absl::Duration timeout = absl::GetFlag(FLAGS_client_timeout);
  if (timeout < absl::Milliseconds(1) || timeout > absl::Hours(24)) {
    return absl::InvalidArgumentError("--timeout must be between 1ms and 24h");
  }
  net::ClientOptions options;
  options.endpoints = absl::StrSplit(endpoints, ',', absl::SkipWhitespace());
  options.deadline_us = absl::ToInt64Microseconds(timeout);
  options.call_timeout_us = std::min<int64_t>(options.deadline_us, 2 * kMicrosPerSecond);
  return net::Client::Create(std::move(options));
}

absl::StatusOr<Output> OutputFormat() {
  const std::string output = absl::GetFlag(FLAGS_client_output);
  if (output == "table") return Output::kTable;
  if (output == "json") return Output::kJson;
  return absl::InvalidArgumentError(absl::StrCat("--output=", output, " is neither table nor json"));
}

int ReportCallError(const std::string& command, const absl::Status& status) {
  std::fprintf(stderr, "blixard %s: %s\n", command.c_str(), status.ToString().c_str());
  const bool unavailable = status.code() == absl::StatusCode::kUnavailable ||
                           status.code() == absl::StatusCode::kDeadlineExceeded;
  return unavailable ? kExitUnavailable : kExitFailure;
}

absl::StatusOr<api::ClientResponse> CallOk(net::Client& client, api::ClientRequest request) {
  absl::StatusOr<api::ClientResponse> response = client.Call(std::move(request));
  if (!response.ok()) return response.status();
  if (response->status() != api::ClientResponse::STATUS_OK) {
    return absl::FailedPreconditionError(absl::StrCat("refused: ", response->error()));
  }
  return response;
}

absl::Status Refusal(cluster::ResultCode code, absl::string_view message) {
  return absl::FailedPreconditionError(
      absl::StrCat(cluster::ResultCode_Name(code), ": ", message));
}

absl::StatusOr<cluster::QueryResult> QueryOk(net::Client& client, cluster::Query query) {
  api::ClientRequest request;
  *request.mutable_query() = std::move(query);
  absl::StatusOr<api::ClientResponse> response = CallOk(client, std::move(request));
  if (!response.ok()) return response.status();
  cluster::QueryResult& result = *response->mutable_query_result();
  if (result.code() != cluster::RESULT_OK) return Refusal(result.code(), result.message());
  return std::move(result);
}

absl::StatusOr<cluster::Result> WriteOk(net::Client& client, cluster::Command command) {
  api::ClientRequest request;
  *request.mutable_command() = std::move(command);
  absl::StatusOr<api::ClientResponse> response = CallOk(client, std::move(request));
  if (!response.ok()) return response.status();
  cluster::Result& result = *response->mutable_result();
  if (result.code() != cluster::RESULT_OK) return Refusal(result.code(), result.message());
  return std::move(result);
}

int ReportFailure(const std::string& command, const absl::Status& status) {
  if (absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) {
    return ReportCallError(command, status);
  }
  std::fprintf(stderr, "blixard %s: %s\n", command.c_str(), std::string(status.message()).c_str());
  return kExitFailure;
}

std::string ProtoJson(const google::protobuf::Message& message) {
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  options.always_print_primitive_fields = true;
  std::string json;
  // Printing fails only for messages that JSON cannot express (Any with
  // an unknown type, out-of-range well-known values): none of ours.
  const auto status = google::protobuf::util::MessageToJsonString(message, &json, options);
  CHECK(status.ok()) << message.GetTypeName() << ": " << status.ToString();
  return json;
}

std::string JsonString(absl::string_view text) {
  std::string out = "\"";
  for (const char raw : text) {
    const auto c = static_cast<unsigned char>(raw);
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\t': out += "\\t"; break;
      case '\r': out += "\\r"; break;
      default:
        if (c < 0x20 || c >= 0x7f) {
          absl::StrAppend(&out, "\\u00", absl::Hex(c, absl::kZeroPad2));
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += "\"";
  return out;
}

}  // namespace blixard::cli
