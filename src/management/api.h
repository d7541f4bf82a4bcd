#pragma once

// ManagementApi: the box's management HTTP endpoint. One HTTPS port (the [http] port) serves
// the REST API under /api/v1 (api/openapi.yaml specifies it), /metrics and /healthz, and later
// the web UI. This file is the API's frame; the routes themselves are registered by the
// daemon (src/daemon/api_routes.cc) and by the management components.
//
// Every route declares who may call it: kPublic (no token; only the sign-in and first-start
// routes), or the lowest role allowed (reader < operator < admin). A request without a valid
// bearer token gets 401; a role below the route's gets 403; both before the handler runs.
// /metrics and /healthz are reader routes unless ApiOptions::public_paths makes them public.
//
// Requests: JSON bodies (at most body_limit_bytes, else 413), checked field by field with
// CheckBody: unknown fields, wrong types, missing fields, control characters and overlong
// strings are 400 with a message naming the field, before anything changes. Errors are
// {"error": {"code": "invalid_argument", "message": "..."}} with the HTTP status from
// HttpStatusOf (the one place Status codes become HTTP statuses).
//
// The web UI (ApiOptions::ui_dir) is served from the same port with a strict
// Content-Security-Policy: nothing but the box itself is loaded or connected to.
//
// Every call of a route that is not a GET is one JSON line in <log_dir>/api-audit.log: time,
// user, token id (a prefix), peer, method, path, status. Bodies are never logged.
//
// Thread safety: Add before Start; handlers run concurrently on the server's threads.

#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "common/status.h"
#include "frontends/http/server.h"
#include "management/auth.h"

namespace fieldstack::management {

using Verb = boost::beast::http::verb;

enum class Access { kPublic, kReader, kOperator, kAdmin };

struct ApiRequest {
  Verb method = Verb::get;
  std::string path;                           // without the query
  std::map<std::string, std::string> params;  // {name} parts of the route, decoded
  std::map<std::string, std::string> query;   // decoded
  nlohmann::json body;                        // null when the request has none
  std::optional<Principal> principal;         // set on every non-public route
  std::string bearer;                         // the token it came with
  std::string peer;
  std::string user_agent;
  // The query value of `name`, or `fallback`.
  std::string Query(const std::string& name, const std::string& fallback = "") const;
  // An integer query value in [lo, hi]; InvalidArgument naming it otherwise.
  Result<int64_t> QueryInt(const std::string& name, int64_t fallback, int64_t lo, int64_t hi) const;
  // A boolean query value ("true"/"false"/"1"/"0").
  Result<bool> QueryBool(const std::string& name, bool fallback) const;
};

struct ApiResponse {
  int status = 200;
  nlohmann::json body = nlohmann::json::object();
  // Instead of a JSON body: a text body of `content_type`, or a file streamed from disk and
  // offered for download as `download_name`.
  std::string content_type;
  std::string text;
  std::string file_path;
  std::string download_name;
  std::vector<std::pair<std::string, std::string>> headers;
  bool audit = false;  // a GET that goes to the API audit log too (a recovery-key download)

  static ApiResponse Json(nlohmann::json body, int status = 200);
  static ApiResponse NoContent();
};

using ApiHandler = std::function<Result<ApiResponse>(ApiRequest&)>;

// The HTTP status for an error Status.
int HttpStatusOf(StatusCode code);
// The error body for `s`.
nlohmann::json ErrorBody(const Status& s);

// What a JSON body may hold; CheckBody enforces it.
enum class FieldType { kString, kInt, kBool, kStringArray, kObject, kNumber };
struct Field {
  std::string name;
  FieldType type = FieldType::kString;
  bool required = false;
  size_t max_len = 256;  // strings: bytes; arrays: entries (each string at most 256 bytes)
  int64_t min = 0;       // ints
  int64_t max = INT64_MAX;
};
// OK when `body` is an object with only `fields`, each of its type and limits, and every
// required one present; InvalidArgument naming the first field that is not. Strings must be
// valid UTF-8 without control characters (multi-line fields use kObject/raw routes).
Status CheckBody(const nlohmann::json& body, const std::vector<Field>& fields);
// Like CheckBody for a field holding PEM or other multi-line text (newlines allowed).
Status CheckText(const nlohmann::json& body, const std::string& field, size_t max_len,
                 bool required);

struct ApiOptions {
  frontends::http::ServerOptions server;  // address, port, TLS files, body limit
  std::set<std::string> public_paths;     // of "/metrics", "/healthz"
  std::string log_dir;                    // api-audit.log
  // The web UI's built files (index.html, assets/): GET of any path outside /api/ that no
  // route takes is a file from here, public (the UI signs in through the API), or index.html
  // for the UI's own routes. Empty or missing: no UI.
  std::string ui_dir;
};

struct RouteInfo {
  Verb method;
  std::string pattern;
  Access access;
};

class ManagementApi {
 public:
  ManagementApi(ApiOptions options, Auth& auth);
  ~ManagementApi();  // stops

  // Registers a route. `pattern` is a path with {name} segments, e.g.
  // "/api/v1/shares/{name}/refresh"; a {name} matches one non-empty segment.
  void Add(Verb method, std::string pattern, Access access, ApiHandler handler);
  // A handler for a plain-text route outside /api/v1 (/metrics, /healthz).
  std::vector<RouteInfo> Routes() const;

  Status Start();
  void Stop();
  uint16_t port() const;
  bool secure() const;
  // Reloads the TLS certificate and key from their files (after an upload or rotation);
  // connections in progress keep the old one. InvalidArgument when the new files are unusable
  // (the old certificate stays in use).
  Status ReloadCertificate();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace fieldstack::management
