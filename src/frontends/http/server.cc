#include "frontends/http/server.h"

#include <spdlog/spdlog.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core.hpp>
#include <chrono>

namespace fieldstack::frontends::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using tcp = asio::ip::tcp;

Response MakeResponse(const Request& req, beast_http::status status, std::string content_type,
                      std::string body) {
  Response res{status, req.version()};
  res.set(beast_http::field::server, "fieldstack");
  res.set(beast_http::field::content_type, std::move(content_type));
  res.keep_alive(req.keep_alive());
  res.body() = std::move(body);
  res.prepare_payload();
  return res;
}

void Router::Add(beast_http::verb method, std::string path, Handler handler) {
  routes_[std::move(path)][method] = std::move(handler);
}

Response Router::Dispatch(const Request& req) const {
  std::string target(req.target());
  std::string path = target.substr(0, target.find('?'));
  auto it = routes_.find(path);
  if (it == routes_.end()) {
    return MakeResponse(req, beast_http::status::not_found, "application/json",
                        R"({"error":"NotFound","message":"no such endpoint"})");
  }
  auto h = it->second.find(req.method());
  if (h == it->second.end()) {
    Response res = MakeResponse(req, beast_http::status::method_not_allowed, "application/json",
                                R"({"error":"MethodNotAllowed"})");
    std::string allow;
    for (auto& [verb, fn] : it->second) {
      if (!allow.empty()) allow += ", ";
      allow += std::string(beast_http::to_string(verb));
    }
    res.set(beast_http::field::allow, allow);
    return res;
  }
  return h->second(req);
}

struct HttpServer::Impl {
  asio::io_context io;
  tcp::acceptor acceptor{io};
};

namespace {

asio::awaitable<void> Session(tcp::socket socket, const Router& router, ServerOptions opts) {
  beast::tcp_stream stream(std::move(socket));
  beast::flat_buffer buffer;
  for (;;) {
    beast_http::request_parser<beast_http::string_body> parser;
    parser.body_limit(opts.body_limit_bytes);
    stream.expires_after(std::chrono::seconds(opts.read_timeout_s));
    beast::error_code ec;
    co_await beast_http::async_read(stream, buffer, parser,
                                    asio::redirect_error(asio::use_awaitable, ec));
    if (ec == beast_http::error::end_of_stream || ec == asio::error::connection_reset ||
        ec == beast::error::timeout || ec == asio::error::operation_aborted) {
      break;
    }
    Response res;
    bool close_after = false;
    if (ec == beast_http::error::body_limit) {
      Request req = parser.get();
      res = MakeResponse(req, beast_http::status::payload_too_large, "application/json",
                         R"({"error":"PayloadTooLarge"})");
      close_after = true;
    } else if (ec) {
      Request req;
      req.version(11);
      res = MakeResponse(req, beast_http::status::bad_request, "application/json",
                         R"({"error":"BadRequest","message":"malformed HTTP request"})");
      close_after = true;
    } else {
      Request req = parser.release();
      try {
        res = router.Dispatch(req);
      } catch (const std::exception& e) {
        spdlog::error("http: handler for {} threw: {}", std::string(req.target()), e.what());
        res = MakeResponse(req, beast_http::status::internal_server_error, "application/json",
                           R"({"error":"Internal"})");
      }
    }
    if (close_after) res.keep_alive(false);
    stream.expires_after(std::chrono::seconds(opts.read_timeout_s));
    beast::error_code wec;
    co_await beast_http::async_write(stream, res, asio::redirect_error(asio::use_awaitable, wec));
    if (wec || !res.keep_alive()) break;
  }
  beast::error_code ignored;
  stream.socket().shutdown(tcp::socket::shutdown_send, ignored);
}

asio::awaitable<void> Listen(tcp::acceptor& acceptor, const Router& router, ServerOptions opts) {
  for (;;) {
    boost::system::error_code ec;
    tcp::socket socket =
        co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
      if (ec == asio::error::operation_aborted || !acceptor.is_open()) co_return;
      spdlog::warn("http: accept failed: {}", ec.message());
      continue;
    }
    asio::co_spawn(acceptor.get_executor(), Session(std::move(socket), router, opts),
                   asio::detached);
  }
}

}  // namespace

HttpServer::HttpServer(ServerOptions options, const Router& router)
    : options_(std::move(options)), router_(router), impl_(std::make_unique<Impl>()) {}

HttpServer::~HttpServer() { Stop(); }

Status HttpServer::Start() {
  boost::system::error_code ec;
  auto addr = asio::ip::make_address(options_.address, ec);
  if (ec) return InvalidArgumentError("bad listen address '" + options_.address + "'");
  tcp::endpoint ep(addr, options_.port);
  std::string where = options_.address + ":" + std::to_string(options_.port);
  impl_->acceptor.open(ep.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(ep, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return UnavailableError("cannot listen on " + where + ": " + ec.message());
  port_ = impl_->acceptor.local_endpoint().port();
  asio::co_spawn(impl_->io, Listen(impl_->acceptor, router_, options_), asio::detached);
  for (int i = 0; i < std::max(1, options_.threads); ++i) {
    threads_.emplace_back([this] { impl_->io.run(); });
  }
  return Status::Ok();
}

void HttpServer::Stop() {
  if (threads_.empty()) return;
  asio::post(impl_->io, [this] {
    boost::system::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  impl_->io.stop();
  for (auto& t : threads_) t.join();
  threads_.clear();
}

}  // namespace fieldstack::frontends::http
