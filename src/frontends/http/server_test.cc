#include "frontends/http/server.h"

#include <gtest/gtest.h>

#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "crypto/certificate.h"
#include "test/support/temp_dir.h"

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

// Raw bytes to a server, the answer (until the server closes or 5 s pass).
std::string Raw(uint16_t port, const std::string& bytes, bool half_close = true) {
  asio::io_context io;
  asio::ip::tcp::socket sock(io);
  sock.connect({asio::ip::make_address("127.0.0.1"), port});
  beast::error_code ec;
  asio::write(sock, asio::buffer(bytes), ec);
  if (half_close) sock.shutdown(asio::ip::tcp::socket::shutdown_send, ec);
  std::string out;
  char buf[4096];
  for (;;) {
    size_t n = sock.read_some(asio::buffer(buf), ec);
    if (ec) break;
    out.append(buf, n);
  }
  return out;
}

TEST(HttpServerStreamTest, BoundsHeadsBodiesSlowClientsAndConnections) {
  std::atomic<int> calls{0};
  ServerOptions o;
  o.header_limit_bytes = 1024;
  o.read_timeout_s = 1;
  o.header_timeout_s = 2;
  o.max_connections = 3;
  HttpServer server(o, [&](Exchange& ex) {
    ++calls;
    auto body = ex.ReadWholeBody(1 << 20);
    Response res{beast_http::status::ok, 11};
    res.body() = body.ok() ? "got " + std::to_string(body->size()) : body.status().message();
    res.prepare_payload();
    (void)ex.Respond(std::move(res));
  });
  ASSERT_TRUE(server.Start().ok());
  uint16_t port = server.port();
  // A head over the limit: 431, the handler never runs.
  std::string big = "GET / HTTP/1.1\r\nX-Big: " + std::string(2000, 'x') + "\r\n\r\n";
  EXPECT_EQ(Raw(port, big).rfind("HTTP/1.1 431", 0), 0u);
  EXPECT_EQ(calls, 0);
  // Expect: 100-continue is answered when the body is read; the body then arrives.
  {
    asio::io_context io;
    asio::ip::tcp::socket sock(io);
    sock.connect({asio::ip::make_address("127.0.0.1"), port});
    asio::write(sock, asio::buffer(std::string("PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n"
                                               "Expect: 100-continue\r\n\r\n")));
    char buf[256];
    size_t n = sock.read_some(asio::buffer(buf));
    EXPECT_EQ(std::string(buf, n), "HTTP/1.1 100 Continue\r\n\r\n");
    asio::write(sock, asio::buffer(std::string("hello")));
    beast::flat_buffer fb;
    Response res;
    beast::error_code ec;
    beast_http::read(sock, fb, res, ec);
    EXPECT_EQ(res.body(), "got 5") << ec.message();
  }
  // HEAD answers keep the connection (sync tools HEAD every object).
  {
    asio::io_context io;
    asio::ip::tcp::socket sock(io);
    sock.connect({asio::ip::make_address("127.0.0.1"), port});
    for (int i = 0; i < 2; ++i) {
      asio::write(sock, asio::buffer(std::string("HEAD /x HTTP/1.1\r\nHost: a\r\n\r\n")));
      beast::flat_buffer buf;
      beast_http::response_parser<beast_http::empty_body> p;
      p.skip(true);
      beast::error_code ec;
      beast_http::read(sock, buf, p, ec);
      EXPECT_FALSE(ec) << "HEAD " << i << ": " << ec.message();
    }
  }
  // A client that stops in the middle of its head is cut off after the timeout.
  auto t0 = std::chrono::steady_clock::now();
  std::string slow = Raw(port, "GET / HTTP/1.1\r\nHost: a\r\n", /*half_close=*/false);
  double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_EQ(slow, "");
  EXPECT_LT(waited, 4.0);
  // A body shorter than its Content-Length fails the read; nothing hangs.
  std::string short_body =
      Raw(port, "PUT /x HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\nabc");
  EXPECT_NE(short_body.find("client closed"), std::string::npos) << short_body;
  // Past max_connections: 503 for the extra client, the others are served.
  std::vector<std::unique_ptr<asio::ip::tcp::socket>> held;
  asio::io_context io;
  for (int i = 0; i < 3; ++i) {
    held.push_back(std::make_unique<asio::ip::tcp::socket>(io));
    held.back()->connect({asio::ip::make_address("127.0.0.1"), port});
  }
  // The server counts them once it has accepted them (later on a loaded machine).
  std::string answer;
  for (int i = 0; i < 50; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    answer = Raw(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
    if (answer.rfind("HTTP/1.1 503", 0) == 0) break;
  }
  EXPECT_EQ(answer.rfind("HTTP/1.1 503", 0), 0u) << answer;
  held.clear();
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // their sessions time out
  EXPECT_NE(Raw(port, "GET / HTTP/1.1\r\nHost: a\r\n\r\n").find("got 0"), std::string::npos);
}

TEST(HttpServerStreamTest, ServesTlsWithTheBoxCertificate) {
  fieldstack::testing::TempDir dir;
  ASSERT_TRUE(crypto::EnsureSelfSignedCertificate(dir / "box.crt", dir / "box.key",
                                                  {"localhost", "127.0.0.1"})
                  .ok());
  ServerOptions o;
  o.tls_cert_file = dir / "box.crt";
  o.tls_key_file = dir / "box.key";
  HttpServer server(o, [](Exchange& ex) {
    Response res{beast_http::status::ok, 11};
    res.body() = ex.secure() ? "secure" : "plain";
    res.prepare_payload();
    (void)ex.Respond(std::move(res));
  });
  ASSERT_TRUE(server.Start().ok());
  std::string cmd = "curl -sS --cacert " + (dir / "box.crt") +
                    " https://127.0.0.1:" + std::to_string(server.port()) + "/ 2>&1";
  FILE* p = popen(cmd.c_str(), "r");
  char buf[256] = {};
  size_t n = fread(buf, 1, sizeof buf - 1, p);
  pclose(p);
  EXPECT_EQ(std::string(buf, n), "secure");
  // A plain-HTTP client gets no answer, and the server keeps serving TLS.
  std::string plain = Raw(server.port(), "GET / HTTP/1.1\r\nHost: a\r\n\r\n");
  EXPECT_EQ(plain.find("secure"), std::string::npos);
  // A client that never finishes its handshake is cut off after the head's time.
  {
    ServerOptions quick = o;
    quick.header_timeout_s = 1;
    HttpServer q(quick, [](Exchange&) {});
    ASSERT_TRUE(q.Start().ok());
    asio::io_context io2;
    asio::ip::tcp::socket sock(io2);
    sock.connect({asio::ip::make_address("127.0.0.1"), q.port()});
    auto t0 = std::chrono::steady_clock::now();
    // A TLS record header announcing 16 KiB, then a byte at a time.
    asio::write(sock, asio::buffer(std::string("\x16\x03\x01\x40\x00", 5)));
    beast::error_code ec;
    for (int i = 0; i < 8 && !ec; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(500));
      asio::write(sock, asio::buffer(std::string("\x01")), ec);
      char c;
      sock.non_blocking(true);
      sock.read_some(asio::buffer(&c, 1), ec);
      if (ec == asio::error::would_block) ec = {};
      sock.non_blocking(false);
    }
    double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    EXPECT_TRUE(ec) << "still connected after " << waited << " s";
    EXPECT_LT(waited, 3.5);
  }
  // A bad key or certificate is a clear error at start.
  ServerOptions bad = o;
  bad.tls_key_file = dir / "missing.key";
  HttpServer b(bad, [](Exchange&) {});
  Status s = b.Start();
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("missing.key"), std::string::npos) << s.ToString();
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
