#pragma once

// HttpServer: the HTTP/1.1 server core shared by every endpoint of the box (health and
// metrics now; the S3, Blob and management APIs later). Boost.Beast on an Asio io_context run
// by a few threads; one coroutine per connection, keep-alive, a read timeout, and a bound on
// request bodies (413 past it).
//
// Handlers are plain functions from a request to a response, found by exact method and path in
// a Router. Unknown paths get 404, known paths with another method 405 with an Allow header.
//
// Thread safety: Start and Stop from one thread; handlers run on the server's threads
// concurrently and must be thread-safe. The Router must not change after Start.

#include <boost/beast/http.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "common/status.h"

namespace fieldstack::frontends::http {

namespace beast_http = boost::beast::http;
using Request = beast_http::request<beast_http::string_body>;
using Response = beast_http::response<beast_http::string_body>;
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

struct ServerOptions {
  std::string address = "127.0.0.1";
  uint16_t port = 0;  // 0 picks a free port; see HttpServer::port()
  int threads = 2;
  uint64_t body_limit_bytes = 1 << 20;
  int read_timeout_s = 30;
};

class HttpServer {
 public:
  HttpServer(ServerOptions options, const Router& router);
  ~HttpServer();  // stops

  // Binds and starts serving. InvalidArgument for a bad address, Unavailable when the port is
  // taken (the message names address and port).
  Status Start();
  uint16_t port() const { return port_; }
  // Stops accepting, closes connections and joins the threads. Idempotent.
  void Stop();

 private:
  struct Impl;
  ServerOptions options_;
  const Router& router_;
  std::unique_ptr<Impl> impl_;
  std::vector<std::thread> threads_;
  uint16_t port_ = 0;
};

}  // namespace fieldstack::frontends::http
