#include "pusher/cli/push_cli.h"

#include <grpcpp/grpcpp.h>

#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file.h"
#include "common/status.h"
#include "google/protobuf/util/json_util.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "pushgate/v1/pusher.grpc.pb.h"

namespace pushgate::pusher::cli {
namespace {

absl::StatusOr<v1::Provider> ParseProvider(const std::string& v) {
  std::string s = absl::AsciiStrToLower(v);
  if (s == "apns") return v1::APNS;
  if (s == "apns_sandbox" || s == "apns.dev" || s == "apns-sandbox") return v1::APNS_SANDBOX;
  if (s == "fcm") return v1::FCM;
  return absl::InvalidArgumentError(
      absl::StrCat("--provider: '", v, "' is not one of apns, apns_sandbox, fcm"));
}

absl::StatusOr<v1::PushKind> ParseKind(const std::string& v) {
  std::string s = absl::AsciiStrToLower(v);
  if (s == "voip") return v1::VOIP;
  if (s == "alert") return v1::ALERT;
  if (s == "background") return v1::BACKGROUND;
  if (s == "data") return v1::DATA;
  return absl::InvalidArgumentError(
      absl::StrCat("--kind: '", v, "' is not one of voip, alert, background, data"));
}

std::shared_ptr<grpc::ChannelCredentials> Credentials(const Options& o, std::string* error) {
  if (!o.tls) return grpc::InsecureChannelCredentials();
  grpc::SslCredentialsOptions ssl;
  for (auto [path, target] :
       {std::pair{&o.ca_file, &ssl.pem_root_certs}, std::pair{&o.cert_file, &ssl.pem_cert_chain},
        std::pair{&o.key_file, &ssl.pem_private_key}}) {
    if (path->empty()) continue;
    auto content = ReadFile(*path);
    if (!content.ok()) {
      *error = std::string(content.status().message());
      return nullptr;
    }
    *target = *content;
  }
  return grpc::SslCredentials(ssl);
}

std::string CodeName(const grpc::Status& status) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(status.error_code()));
}

}  // namespace

std::string Usage() {
  return R"(usage: pushgate-push [options]
Sends one push through a running pushgate pusher and prints the provider's verdict.

  --target HOST:PORT       pusher address (default 127.0.0.1:50061; dns:///name:port works)
  --provider P             apns | apns_sandbox | fcm                     (required)
  --param APP              RFC 8599 pn-param: TEAMID.bundle[.voip] or FCM project id (required)
  --token TOKEN            device token (pn-prid)                          (required)
  --kind K                 voip | alert | background | data (default voip)
  --call-id ID  --caller URI  --caller-name NAME  --loc-key KEY  --sound S  --badge N
  --title T  --body B      alert text
  --data KEY=VALUE         extra data (repeatable)
  --collapse-id ID  --ttl DURATION (e.g. 30s)  --request-id UUID
  --api-key KEY | --api-key-file FILE
  --tls  --ca FILE  --cert FILE  --key FILE     TLS / mutual TLS to the pusher
  --timeout DURATION       call deadline (default 10s)
  --json                   print the result as JSON
  --health [SERVICE]       check grpc.health.v1 instead of pushing
exit codes: 0 accepted/serving, 1 other verdict/not serving, 2 usage, 3 call failed
)";
}

namespace {

absl::Status ParseDurationValue(absl::string_view flag, const std::string& v, absl::Duration* out) {
  if (!absl::ParseDuration(v, out) || *out < absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat(flag, ": '", v, "' is not a duration (e.g. 30s)"));
  }
  return absl::OkStatus();
}

// A flag that takes the next argument as its value, and what it does with it.
struct ValueFlag {
  absl::string_view name;
  absl::Status (*set)(Options& o, const std::string& v);
};

// Sets a string field of the request: `Field` is its mutable_ accessor.
template <std::string* (v1::PushRequest::*Field)()>
absl::Status SetRequest(Options& o, const std::string& v) {
  *(o.request.*Field)() = v;
  return absl::OkStatus();
}

const ValueFlag kValueFlags[] = {
    {"--target",
     [](Options& o, const std::string& v) -> absl::Status {
       o.target = v;
       return absl::OkStatus();
     }},
    {"--provider",
     [](Options& o, const std::string& v) -> absl::Status {
       ASSIGN_OR_RETURN(v1::Provider p, ParseProvider(v));
       o.request.mutable_destination()->set_provider(p);
       return absl::OkStatus();
     }},
    {"--param",
     [](Options& o, const std::string& v) -> absl::Status {
       o.request.mutable_destination()->set_app(v);
       return absl::OkStatus();
     }},
    {"--token",
     [](Options& o, const std::string& v) -> absl::Status {
       o.request.mutable_destination()->set_device_token(v);
       return absl::OkStatus();
     }},
    {"--kind",
     [](Options& o, const std::string& v) -> absl::Status {
       ASSIGN_OR_RETURN(v1::PushKind k, ParseKind(v));
       o.request.set_kind(k);
       return absl::OkStatus();
     }},
    {"--call-id", SetRequest<&v1::PushRequest::mutable_call_id>},
    {"--caller", SetRequest<&v1::PushRequest::mutable_caller_uri>},
    {"--caller-name", SetRequest<&v1::PushRequest::mutable_caller_display_name>},
    {"--loc-key", SetRequest<&v1::PushRequest::mutable_loc_key>},
    {"--sound", SetRequest<&v1::PushRequest::mutable_sound>},
    {"--title", SetRequest<&v1::PushRequest::mutable_alert_title>},
    {"--body", SetRequest<&v1::PushRequest::mutable_alert_body>},
    {"--collapse-id", SetRequest<&v1::PushRequest::mutable_collapse_id>},
    {"--request-id", SetRequest<&v1::PushRequest::mutable_request_id>},
    {"--badge",
     [](Options& o, const std::string& v) -> absl::Status {
       int badge;
       if (!absl::SimpleAtoi(v, &badge)) {
         return absl::InvalidArgumentError(absl::StrCat("--badge: '", v, "' is not an integer"));
       }
       o.request.set_badge(badge);
       return absl::OkStatus();
     }},
    {"--data",
     [](Options& o, const std::string& v) -> absl::Status {
       std::pair<std::string, std::string> kv = absl::StrSplit(v, absl::MaxSplits('=', 1));
       if (kv.first.empty() || v.find('=') == std::string::npos) {
         return absl::InvalidArgumentError(absl::StrCat("--data: '", v, "' is not KEY=VALUE"));
       }
       (*o.request.mutable_data())[kv.first] = kv.second;
       return absl::OkStatus();
     }},
    {"--ttl",
     [](Options& o, const std::string& v) -> absl::Status {
       absl::Duration ttl;
       RETURN_IF_ERROR(ParseDurationValue("--ttl", v, &ttl));
       o.request.mutable_time_to_live()->set_seconds(absl::ToInt64Seconds(ttl));
       return absl::OkStatus();
     }},
    {"--timeout",
     [](Options& o, const std::string& v) -> absl::Status {
       return ParseDurationValue("--timeout", v, &o.timeout);
     }},
    {"--api-key",
     [](Options& o, const std::string& v) -> absl::Status {
       o.api_key = v;
       return absl::OkStatus();
     }},
    {"--api-key-file",
     [](Options& o, const std::string& v) -> absl::Status {
       o.api_key_file = v;
       return absl::OkStatus();
     }},
    {"--ca",
     [](Options& o, const std::string& v) -> absl::Status {
       o.ca_file = v;
       o.tls = true;
       return absl::OkStatus();
     }},
    {"--cert",
     [](Options& o, const std::string& v) -> absl::Status {
       o.cert_file = v;
       o.tls = true;
       return absl::OkStatus();
     }},
    {"--key",
     [](Options& o, const std::string& v) -> absl::Status {
       o.key_file = v;
       o.tls = true;
       return absl::OkStatus();
     }},
};

const ValueFlag* FindValueFlag(absl::string_view name) {
  for (const ValueFlag& f : kValueFlags) {
    if (f.name == name) return &f;
  }
  return nullptr;
}

// A push needs its destination; a health check does not.
absl::Status CheckRequired(const Options& o) {
  if (o.health) return absl::OkStatus();
  if (o.request.destination().provider() == v1::PROVIDER_UNSPECIFIED) {
    return absl::InvalidArgumentError("--provider is required");
  }
  if (o.request.destination().app().empty()) {
    return absl::InvalidArgumentError("--param is required");
  }
  if (o.request.destination().device_token().empty()) {
    return absl::InvalidArgumentError("--token is required");
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Options> ParseArgs(const std::vector<std::string>& args) {
  Options o;
  o.request.set_kind(v1::VOIP);
  o.request.set_badge(-1);
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& flag = args[i];
    if (const ValueFlag* f = FindValueFlag(flag); f != nullptr) {
      if (i + 1 >= args.size()) {
        return absl::InvalidArgumentError(absl::StrCat(flag, " needs a value"));
      }
      RETURN_IF_ERROR(f->set(o, args[++i]));
    } else if (flag == "--tls") {
      o.tls = true;
    } else if (flag == "--json") {
      o.json = true;
    } else if (flag == "--health") {
      o.health = true;
      if (i + 1 < args.size() && !absl::StartsWith(args[i + 1], "--")) o.health_service = args[++i];
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown option '", flag, "'"));
    }
  }
  RETURN_IF_ERROR(CheckRequired(o));
  return o;
}

std::string FormatResult(const v1::PushResult& result, bool json) {
  if (json) {
    std::string out;
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = true;
    (void)google::protobuf::util::MessageToJsonString(result, &out, options);
    return out + "\n";
  }
  std::string out = absl::StrCat("outcome: ", v1::Outcome_Name(result.outcome()), "\n",
                                 "request_id: ", result.request_id(), "\n");
  if (result.provider_status() != 0)
    absl::StrAppend(&out, "provider_status: ", result.provider_status(), "\n");
  if (!result.reason().empty()) absl::StrAppend(&out, "reason: ", result.reason(), "\n");
  if (!result.provider_message_id().empty()) {
    absl::StrAppend(&out, "provider_message_id: ", result.provider_message_id(), "\n");
  }
  if (result.has_token_invalid_since()) {
    absl::StrAppend(&out, "token_invalid_since: ", result.token_invalid_since().seconds(), "\n");
  }
  if (result.has_retry_after())
    absl::StrAppend(&out, "retry_after_s: ", result.retry_after().seconds(), "\n");
  absl::StrAppend(&out, "attempts: ", result.attempts(), "\n");
  return out;
}

int Run(const Options& options) {
  std::string error;
  auto creds = Credentials(options, &error);
  if (!creds) {
    std::cerr << "pushgate-push: " << error << "\n";
    return kExitUsage;
  }
  std::string api_key = options.api_key;
  if (!options.api_key_file.empty()) {
    auto key = ReadFile(options.api_key_file);
    if (!key.ok()) {
      std::cerr << "pushgate-push: " << key.status().message() << "\n";
      return kExitUsage;
    }
    api_key = std::string(absl::StripAsciiWhitespace(*key));
  }
  auto channel = grpc::CreateChannel(options.target, creds);
  grpc::ClientContext context;
  context.set_deadline(absl::ToChronoTime(absl::Now() + options.timeout));
  if (!api_key.empty()) context.AddMetadata("x-api-key", api_key);

  if (options.health) {
    grpc::health::v1::HealthCheckRequest request;
    request.set_service(options.health_service);
    grpc::health::v1::HealthCheckResponse response;
    grpc::Status status =
        grpc::health::v1::Health::NewStub(channel)->Check(&context, request, &response);
    if (!status.ok()) {
      std::cerr << "pushgate-push: health check failed: " << CodeName(status) << ": "
                << status.error_message() << "\n";
      return kExitRpcError;
    }
    std::cout << grpc::health::v1::HealthCheckResponse::ServingStatus_Name(response.status())
              << "\n";
    return response.status() == grpc::health::v1::HealthCheckResponse::SERVING ? kExitAccepted
                                                                               : kExitRejected;
  }

  v1::PushResult result;
  grpc::Status status = v1::Pusher::NewStub(channel)->Send(&context, options.request, &result);
  if (!status.ok()) {
    std::cerr << "pushgate-push: " << CodeName(status) << ": " << status.error_message() << "\n";
    return kExitRpcError;
  }
  std::cout << FormatResult(result, options.json);
  return result.outcome() == v1::ACCEPTED ? kExitAccepted : kExitRejected;
}

}  // namespace pushgate::pusher::cli
