#pragma once

// HttpClient: blocking HTTP/1.1 requests to cloud services over libcurl, with keep-alive
// (one connection cache per thread), timeouts and TLS. Transport failures (refused, reset,
// timed out) are Unavailable; any HTTP status is returned as a response for the adapter to
// interpret.
//
// Thread safety: Send may be called concurrently.

#include <chrono>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "common/status.h"

namespace fieldstack::cloud {

struct HttpRequest {
  std::string method;  // GET, PUT, HEAD, DELETE, POST
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  std::span<const uint8_t> body;
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  std::string body;
  std::string Header(const std::string& lower_name) const {
    auto it = headers.find(lower_name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class HttpClient {
 public:
  struct Options {
    std::chrono::seconds connect_timeout{10};
    std::chrono::seconds stall_timeout{60};  // no byte moved for this long: give up
  };
  HttpClient() : HttpClient(Options{}) {}
  explicit HttpClient(Options options);
  ~HttpClient();

  Result<HttpResponse> Send(const HttpRequest& request);

 private:
  Options options_;
};

// Percent-encodes `s` for a URL path (RFC 3986 unreserved characters and '/' stay).
std::string UrlEncodePath(std::string_view s);
// Percent-encodes a query parameter value.
std::string UrlEncode(std::string_view s);
std::string UrlDecode(std::string_view s);

}  // namespace fieldstack::cloud
