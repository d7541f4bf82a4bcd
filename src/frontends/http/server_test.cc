#include "frontends/http/server.h"

#include <gtest/gtest.h>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>

namespace fieldstack::frontends::http {
namespace {

namespace asio = boost::asio;
namespace beast = boost::beast;

Response Get(uint16_t port, beast_http::verb verb, const std::string& target,
             std::string body = "") {
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  sock.connect({asio::ip::make_address("127.0.0.1"), port});
  Request req{verb, target, 11};
  req.set(beast_http::field::host, "localhost");
  req.body() = std::move(body);
  req.prepare_payload();
  beast_http::write(sock, req);
  beast::flat_buffer buf;
  Response res;
  beast::error_code ec;
  beast_http::read(sock, buf, res, ec);
  return res;
}

class HttpServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    router_.Add(beast_http::verb::get, "/hello", [](const Request& r) {
      return MakeResponse(r, beast_http::status::ok, "text/plain", "hi");
    });
    router_.Add(beast_http::verb::post, "/echo", [](const Request& r) {
      return MakeResponse(r, beast_http::status::ok, "text/plain", r.body());
    });
    ServerOptions o;
    o.body_limit_bytes = 1000;
    server_ = std::make_unique<HttpServer>(o, router_);
    ASSERT_TRUE(server_->Start().ok());
    ASSERT_NE(server_->port(), 0);
  }
  Router router_;
  std::unique_ptr<HttpServer> server_;
};

TEST_F(HttpServerTest, RoutesByMethodAndPath) {
  auto r = Get(server_->port(), beast_http::verb::get, "/hello?x=1");
  EXPECT_EQ(r.result(), beast_http::status::ok);
  EXPECT_EQ(r.body(), "hi");
  EXPECT_EQ(Get(server_->port(), beast_http::verb::get, "/nope").result(),
            beast_http::status::not_found);
  auto m = Get(server_->port(), beast_http::verb::delete_, "/hello");
  EXPECT_EQ(m.result(), beast_http::status::method_not_allowed);
  EXPECT_EQ(m[beast_http::field::allow], "GET");
  EXPECT_EQ(Get(server_->port(), beast_http::verb::post, "/echo", "abc").body(), "abc");
}

TEST_F(HttpServerTest, RefusesOversizedBodyAndGarbage) {
  EXPECT_EQ(Get(server_->port(), beast_http::verb::post, "/echo", std::string(5000, 'x')).result(),
            beast_http::status::payload_too_large);
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  sock.connect({asio::ip::make_address("127.0.0.1"), server_->port()});
  asio::write(sock, asio::buffer(std::string("NOT HTTP AT ALL\r\n\r\n")));
  beast::flat_buffer buf;
  Response res;
  beast::error_code ec;
  beast_http::read(sock, buf, res, ec);
  EXPECT_EQ(res.result(), beast_http::status::bad_request);
  // The server keeps serving.
  EXPECT_EQ(Get(server_->port(), beast_http::verb::get, "/hello").body(), "hi");
}

TEST(HttpServerStartTest, TakenPortAndBadAddressAreClearErrors) {
  Router router;
  HttpServer a({}, router);
  ASSERT_TRUE(a.Start().ok());
  ServerOptions o;
  o.port = a.port();
  HttpServer b(o, router);
  Status s = b.Start();
  EXPECT_EQ(s.code(), StatusCode::kUnavailable);
  EXPECT_NE(s.message().find(std::to_string(a.port())), std::string::npos);
  ServerOptions bad;
  bad.address = "not-an-address";
  HttpServer c(bad, router);
  EXPECT_EQ(c.Start().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fieldstack::frontends::http
