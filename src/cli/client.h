#pragma once

// ApiClient: the command line's connection to one box's management REST API (/api/v1, see
// src/management/api.h), over libcurl's easy interface. Requests and answers are JSON; a
// transport failure (refused, timed out, TLS) is a Status, any HTTP answer is an ApiReply for
// the caller to judge. Downloads (support package, recovery key) go to a file written
// atomically with mode 0600: a temporary file next to it, synced, then renamed.
//
// TLS: the box's certificate is checked against `ca_file` (the box's own self-signed
// <data_dir>/tls/box.crt, or a CA's) or the system's CAs; `insecure` checks nothing and warns
// once on stderr.
//
// Thread safety: one ApiClient per thread (it owns a curl easy handle, reused for keep-alive).

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

#include "common/status.h"

namespace fieldstack::cli {

struct ClientOptions {
  std::string server;     // "https://host:port"; a trailing '/' is ignored
  std::string token;      // the bearer token; empty: none (public routes only)
  std::string ca_file;    // PEM certificates to trust; empty: the system's
  bool insecure = false;  // no certificate or name check at all
  long connect_timeout_s = 10;
  long timeout_s = 120;  // the whole request (downloads: no byte moved for this long)
};

struct ApiReply {
  long status = 0;      // the HTTP status
  nlohmann::json body;  // the parsed body: null when empty (204), a string when not JSON

  bool ok() const { return status >= 200 && status < 300; }
  // The API's {"error": {"message"}}, else the body's text, else a phrase for the status.
  std::string ErrorMessage() const;
};

// Query parameters, percent-encoded by the client; an empty value is left out.
using Query = std::map<std::string, std::string>;

class ApiClient {
 public:
  explicit ApiClient(ClientOptions options);
  ~ApiClient();
  ApiClient(const ApiClient&) = delete;
  ApiClient& operator=(const ApiClient&) = delete;

  // Sends `method` (GET, POST, PUT, PATCH, DELETE) to server + `path` with `body` as JSON
  // (none when null). Unavailable, naming the server and curl's reason, when no HTTP answer
  // came (refused, DNS, timeout, TLS; a certificate problem suggests --cacert).
  Result<ApiReply> Send(std::string_view method, std::string_view path,
                        const nlohmann::json& body = nullptr, const Query& query = {});
  Result<ApiReply> Get(std::string_view path, const Query& query = {}) {
    return Send("GET", path, nullptr, query);
  }

  // GETs `path`; a 2xx body is written to `dest` (atomically, mode 0600) and the reply's body
  // is {"path": dest, "size_bytes": n}. Another status leaves `dest` untouched and returns the
  // error body. Errors: like Send, and the file system's (the temporary file is removed).
  Result<ApiReply> Download(std::string_view path, const std::string& dest);

  const ClientOptions& options() const { return options_; }

 private:
  struct Handle;
  Result<ApiReply> Perform(std::string_view method, const std::string& url, const std::string* body,
                           int out_fd);
  std::string Url(std::string_view path, const Query& query) const;

  ClientOptions options_;
  std::unique_ptr<Handle> handle_;
};

// Percent-encodes `s` for use as one path segment or one query value.
std::string EscapeSegment(std::string_view s);

}  // namespace fieldstack::cli
