#pragma once

// HttpServer: the HTTP/1.1 server core shared by every endpoint of the box (health and
// metrics, the S3 and Blob APIs, later the management API). One thread per connection with
// blocking I/O on the socket (or an OpenSSL session over it), keep-alive, and bounds on
// everything a client controls:
//  - the request head (size and total time to arrive: slow clients are cut off),
//  - idle time between reads and writes (read_timeout_s),
//  - connections at once (past max_connections a client gets 503 and the connection closes),
//  - bodies of Router handlers (413 past body_limit_bytes).
//
// Two kinds of handlers:
//  - Router: plain functions from a whole request (body read into memory) to a response, found
//    by exact method and path. Unknown paths get 404, other methods 405 with an Allow header.
//  - StreamHandler: one function that gets an Exchange for every request and reads the body
//    and writes the response in pieces (object PUT and GET never hold a whole object).
//
// "Expect: 100-continue" is answered when the handler first reads the body; a handler that
// answers without reading the whole body makes the connection close after the response.
//
// With TLS, Start ignores SIGPIPE for the process (OpenSSL writes with write(2)).
//
// Thread safety: Start and Stop from one thread; handlers run on many threads concurrently and
// must be thread-safe. The Router must not change after Start.

#include <boost/beast/http.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "common/status.h"

namespace fieldstack::frontends::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Response = beast_http::response<beast_http::string_body>;
using RequestHeader = beast_http::request_header<>;
using ResponseHeader = beast_http::response_header<>;
using Handler = std::function<Response(const Request&)>;

// A response with `status`, Content-Type and body, keep-alive matching the request.
Response MakeResponse(const Request& req, beast_http::status status, std::string content_type,
                      std::string body);

class Router {
 public:
  void Add(beast_http::verb method, std::string path, Handler handler);
  // Routes by the path without its query string.
  Response Dispatch(const Request& req) const;

 private:
  std::map<std::string, std::map<beast_http::verb, Handler>> routes_;
};

// One request and its response, for a StreamHandler.
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const RequestHeader& header() const = 0;
  // The client's address ("127.0.0.1") and whether the connection is TLS.
  virtual const std::string& peer() const = 0;
  virtual bool secure() const = 0;
  // Content-Length of the request, when it has one (chunked bodies have none).
  virtual std::optional<uint64_t> content_length() const = 0;

  // Reads up to out.size() bytes of the body (transfer coding removed); 0 at its end.
  // Unavailable when the client stops sending or is idle too long (the body is shorter than
  // promised), InvalidArgument for a malformed chunked body.
  virtual Result<size_t> ReadBody(std::span<uint8_t> out) = 0;
  virtual bool body_done() const = 0;
  // The whole body; InvalidArgument (the message says so) past `limit` bytes.
  Result<std::string> ReadWholeBody(size_t limit);

  // A whole response. Content-Length is set from the body.
  virtual Status Respond(Response res) = 0;
  // The head of a response of `content_length` body bytes, which WriteBody then sends. With
  // kUntilClose the length is not known: the body ends when the connection closes after the
  // handler returns (for answers that must start before their outcome is known).
  static constexpr uint64_t kUntilClose = ~uint64_t{0};
  virtual Status BeginResponse(ResponseHeader& head, uint64_t content_length) = 0;
  virtual Status WriteBody(std::span<const uint8_t> data) = 0;
  virtual bool responded() const = 0;
};
using StreamHandler = std::function<void(Exchange&)>;

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0 picks a free port; see HttpServer::port()
  int max_connections = 256;
  uint64_t body_limit_bytes = 1 << 20;  // Router handlers only
  uint32_t header_limit_bytes = 16 * 1024;
  int read_timeout_s = 30;    // idle time allowed in a read or write
  int header_timeout_s = 60;  // the whole request head must arrive within this
  // TLS: PEM certificate (chain) and key. Both empty: plain HTTP.
  std::string tls_cert_file;
  std::string tls_key_file;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, const Router& router);
  HttpServer(ServerOptions options, StreamHandler handler);
  ~HttpServer();  // stops

  // Binds and starts serving. InvalidArgument for a bad address or unusable certificate,
  // Unavailable when the port is taken (the message names address and port).
  Status Start();
  uint16_t port() const { return port_; }
  // Loads the certificate and key files again (after they were replaced); new connections get
  // them, connections in progress keep the old ones. InvalidArgument when the files are
  // unusable (the old ones stay in use); FailedPrecondition without TLS.
  Status ReloadCertificate();
  // Stops accepting, closes connections and waits for their threads. Idempotent.
  void Stop();

 private:
  struct Impl;
  ServerOptions options_;
  std::unique_ptr<Impl> impl_;
  uint16_t port_ = 0;
};

}  // namespace fieldstack::frontends::http
