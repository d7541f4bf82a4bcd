#include "frontends/http/server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/asio/error.hpp>
#include <boost/beast/core.hpp>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <functional>
#include <limits>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>

namespace fieldstack::frontends::http {

namespace asio = boost::asio;
namespace beast = boost::beast;
using SteadyClock = std::chrono::steady_clock;

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

Result<std::string> Exchange::ReadWholeBody(size_t limit) {
  std::string out;
  uint8_t buf[16384];
  for (;;) {
    FS_ASSIGN_OR_RETURN(size_t n, ReadBody(buf));
    if (n == 0) return out;
    if (out.size() + n > limit) {
      return InvalidArgumentError("request body larger than " + std::to_string(limit) + " bytes");
    }
    out.append(reinterpret_cast<const char*>(buf), n);
  }
}

namespace {

// A blocking connection, plain or TLS, as a Beast SyncStream. Idle time is bounded by the
// socket's SO_RCVTIMEO/SO_SNDTIMEO; `deadline` (when set) bounds the total time of reads.
class Transport {
 public:
  using DeadlineHook = std::function<void(std::optional<SteadyClock::time_point>)>;
  Transport(int fd, SSL* ssl, DeadlineHook hook = nullptr)
      : fd_(fd), ssl_(ssl), hook_(std::move(hook)) {}
  // Bounds the total time of the reads that follow (nullopt: no bound). A watchdog enforces it
  // too, since one TLS record read can take many socket reads.
  void set_deadline(std::optional<SteadyClock::time_point> d) {
    deadline_ = d;
    if (hook_) hook_(d);
  }

  template <class Buffers>
  size_t read_some(const Buffers& buffers, beast::error_code& ec) {
    ec = {};
    auto it = asio::buffer_sequence_begin(buffers);
    auto end = asio::buffer_sequence_end(buffers);
    for (; it != end; ++it) {
      asio::mutable_buffer b(*it);
      if (b.size() == 0) continue;
      if (deadline_ && SteadyClock::now() > *deadline_) {
        ec = beast::error::timeout;
        return 0;
      }
      ssize_t n;
      if (ssl_ != nullptr) {
        ERR_clear_error();
        int r = SSL_read(ssl_, b.data(), static_cast<int>(std::min<size_t>(b.size(), 1 << 30)));
        if (r > 0) return static_cast<size_t>(r);
        int err = SSL_get_error(ssl_, r);
        if (err == SSL_ERROR_ZERO_RETURN) {
          ec = asio::error::eof;
        } else if (err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)) {
          ec = beast::error::timeout;
        } else {
          ec = asio::error::connection_reset;
        }
        return 0;
      }
      do {
        n = ::recv(fd_, b.data(), b.size(), 0);
      } while (n < 0 && errno == EINTR);
      if (n > 0) return static_cast<size_t>(n);
      if (n == 0) {
        ec = asio::error::eof;
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        ec = beast::error::timeout;
      } else {
        ec = beast::error_code(errno, boost::system::system_category());
      }
      return 0;
    }
    return 0;
  }
  template <class Buffers>
  size_t read_some(const Buffers& buffers) {
    beast::error_code ec;
    size_t n = read_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  template <class Buffers>
  size_t write_some(const Buffers& buffers, beast::error_code& ec) {
    ec = {};
    auto it = asio::buffer_sequence_begin(buffers);
    auto end = asio::buffer_sequence_end(buffers);
    for (; it != end; ++it) {
      asio::const_buffer b(*it);
      if (b.size() == 0) continue;
      return WriteRaw(b.data(), b.size(), ec);
    }
    return 0;
  }
  template <class Buffers>
  size_t write_some(const Buffers& buffers) {
    beast::error_code ec;
    size_t n = write_some(buffers, ec);
    if (ec) throw boost::system::system_error(ec);
    return n;
  }

  // Writes all of [data, data+size).
  Status WriteAll(const void* data, size_t size) {
    const char* p = static_cast<const char*>(data);
    while (size > 0) {
      beast::error_code ec;
      size_t n = WriteRaw(p, size, ec);
      if (ec) return UnavailableError("client connection: " + ec.message());
      p += n;
      size -= n;
    }
    return Status::Ok();
  }

 private:
  size_t WriteRaw(const void* data, size_t size, beast::error_code& ec) {
    if (ssl_ != nullptr) {
      ERR_clear_error();
      int r = SSL_write(ssl_, data, static_cast<int>(std::min<size_t>(size, 1 << 30)));
      if (r > 0) return static_cast<size_t>(r);
      int err = SSL_get_error(ssl_, r);
      ec = err == SSL_ERROR_SYSCALL && (errno == EAGAIN || errno == EWOULDBLOCK)
               ? beast::error_code(beast::error::timeout)
               : beast::error_code(asio::error::connection_reset);
      return 0;
    }
    ssize_t n;
    do {
      n = ::send(fd_, data, size, MSG_NOSIGNAL);
    } while (n < 0 && errno == EINTR);
    if (n >= 0) return static_cast<size_t>(n);
    ec = errno == EAGAIN || errno == EWOULDBLOCK
             ? beast::error_code(beast::error::timeout)
             : beast::error_code(errno, boost::system::system_category());
    return 0;
  }

  int fd_;
  SSL* ssl_;
  DeadlineHook hook_;
  std::optional<SteadyClock::time_point> deadline_;
};

using Parser = beast_http::request_parser<beast_http::buffer_body>;

class ConnExchange : public Exchange {
 public:
  ConnExchange(Transport& t, beast::flat_buffer& buf, Parser& parser, const std::string& peer,
               bool secure)
      : t_(t), buf_(buf), parser_(parser), peer_(peer), secure_(secure) {
    auto cl = parser_.content_length();
    if (cl) content_length_ = *cl;
    head_ = parser_.get().method() == beast_http::verb::head;
    expect_continue_ = beast::iequals(parser_.get()[beast_http::field::expect], "100-continue");
  }

  const RequestHeader& header() const override { return parser_.get().base(); }
  const std::string& peer() const override { return peer_; }
  bool secure() const override { return secure_; }
  std::optional<uint64_t> content_length() const override { return content_length_; }
  bool body_done() const override { return parser_.is_done(); }
  bool responded() const override { return responded_; }
  bool keep_alive() const { return keep_alive_; }
  bool failed() const { return failed_; }

  Result<size_t> ReadBody(std::span<uint8_t> out) override {
    if (parser_.is_done() || out.empty()) return size_t{0};
    if (expect_continue_ && !responded_) {
      if (Status s = SendContinue(); !s.ok()) return s;
    }
    for (;;) {
      auto& body = parser_.get().body();
      body.data = out.data();
      body.size = out.size();
      beast::error_code ec;
      beast_http::read(t_, buf_, parser_, ec);
      size_t got = out.size() - parser_.get().body().size;
      if (ec == beast_http::error::need_buffer) ec = {};
      if (ec) {
        if (ec == beast::error::timeout) {
          return Fail(UnavailableError("client idle too long while sending the body"));
        }
        if (ec == asio::error::eof || ec == beast_http::error::partial_message ||
            ec == asio::error::connection_reset) {
          return Fail(UnavailableError("client closed the connection before the end of the body"));
        }
        return Fail(InvalidArgumentError("malformed request body: " + ec.message()));
      }
      if (got > 0 || parser_.is_done()) return got;
    }
  }

  Status Respond(Response res) override {
    if (responded_) return FailedPreconditionError("response already sent");
    if (Status c = ContinueIfBodyless(); !c.ok()) return c;
    responded_ = true;
    res.version(parser_.get().version());
    if (!parser_.is_done() || !parser_.get().keep_alive()) res.keep_alive(false);
    keep_alive_ = res.keep_alive();
    auto st = res.result();
    bool bodyless = beast_http::to_status_class(st) == beast_http::status_class::informational ||
                    st == beast_http::status::no_content || st == beast_http::status::not_modified;
    if (!res.has_content_length() && !bodyless) res.prepare_payload();
    beast::error_code ec;
    if (head_) {
      // A HEAD answer: the head of what GET would send, without its body.
      beast_http::response_serializer<beast_http::string_body> sr(res);
      beast_http::write_header(t_, sr, ec);
    } else {
      beast_http::write(t_, res, ec);
    }
    if (ec) return Fail(UnavailableError("client connection: " + ec.message()));
    return Status::Ok();
  }

  Status BeginResponse(ResponseHeader& head, uint64_t content_length) override {
    if (responded_) return FailedPreconditionError("response already sent");
    if (Status c = ContinueIfBodyless(); !c.ok()) return c;
    responded_ = true;
    head.version(parser_.get().version());
    bool keep = parser_.is_done() && parser_.get().keep_alive() && content_length != kUntilClose;
    head.set(beast_http::field::connection, keep ? "keep-alive" : "close");
    keep_alive_ = keep;
    if (content_length != kUntilClose) {
      head.set(beast_http::field::content_length, std::to_string(content_length));
    }
    remaining_ = head_ ? 0 : content_length;  // a HEAD answer has no body
    std::string text;
    {
      std::ostringstream os;
      os << head;
      text = os.str();
    }
    Status s = t_.WriteAll(text.data(), text.size());
    if (!s.ok()) return Fail(s);
    return Status::Ok();
  }

  Status WriteBody(std::span<const uint8_t> data) override {
    if (!responded_ || data.size() > remaining_) {
      failed_ = true;
      return InternalError("response body longer than its Content-Length");
    }
    remaining_ -= data.size();
    Status s = t_.WriteAll(data.data(), data.size());
    if (!s.ok()) return Fail(s);
    return Status::Ok();
  }

  // Bytes promised by BeginResponse and not written (the connection must then close).
  uint64_t remaining() const { return remaining_; }

 private:
  Status Fail(Status s) {
    failed_ = true;
    return s;
  }

  Status SendContinue() {
    expect_continue_ = false;
    static constexpr char kContinue[] = "HTTP/1.1 100 Continue\r\n\r\n";
    Status s = t_.WriteAll(kContinue, sizeof(kContinue) - 1);
    return s.ok() ? s : Fail(s);
  }

  // A client that sent "Expect: 100-continue" with an empty body still gets the 100 first:
  // botocore otherwise keeps the final status line it read as the next response's (it reuses
  // the connection and misreads that response).
  Status ContinueIfBodyless() {
    if (expect_continue_ && parser_.is_done()) return SendContinue();
    return Status::Ok();
  }

  Transport& t_;
  beast::flat_buffer& buf_;
  Parser& parser_;
  const std::string& peer_;
  bool secure_;
  std::optional<uint64_t> content_length_;
  bool expect_continue_ = false;
  bool head_ = false;
  bool responded_ = false;
  bool keep_alive_ = false;
  bool failed_ = false;
  uint64_t remaining_ = 0;
};

Response ErrorResponse(beast_http::status status, const char* body) {
  Response res{status, 11};
  res.set(beast_http::field::server, "fieldstack");
  res.set(beast_http::field::content_type, "application/json");
  res.keep_alive(false);
  res.body() = body;
  res.prepare_payload();
  return res;
}

void SetTimeouts(int fd, int seconds) {
  timeval tv{};
  tv.tv_sec = seconds;
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

std::string PeerOf(int fd) {
  sockaddr_storage ss{};
  socklen_t len = sizeof(ss);
  if (getpeername(fd, reinterpret_cast<sockaddr*>(&ss), &len) != 0) return "";
  char text[INET6_ADDRSTRLEN] = {};
  if (ss.ss_family == AF_INET) {
    inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr, text, sizeof(text));
  } else if (ss.ss_family == AF_INET6) {
    inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr, text, sizeof(text));
  }
  return text;
}

std::string SslError() {
  unsigned long e = ERR_get_error();
  if (e == 0) return "unknown TLS error";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof(buf));
  return buf;
}

}  // namespace

struct HttpServer::Impl {
  const Router* router = nullptr;
  StreamHandler handler;
  int listen_fd = -1;
  int wake[2] = {-1, -1};
  SSL_CTX* ssl_ctx = nullptr;
  std::thread acceptor;
  std::mutex mu;
  std::condition_variable idle;
  // Open connection fds (shut down by Stop) and the deadline of each, if any, which the
  // watchdog enforces by shutting the connection down.
  std::map<int, std::optional<SteadyClock::time_point>> conns;
  bool stopping = false;
  std::thread watchdog;
  std::condition_variable wake_watchdog;

  void SetDeadline(int fd, std::optional<SteadyClock::time_point> d) {
    std::lock_guard l(mu);
    auto it = conns.find(fd);
    if (it != conns.end()) it->second = d;
  }
  void Watch() {
    std::unique_lock l(mu);
    while (!stopping) {
      wake_watchdog.wait_for(l, std::chrono::milliseconds(250));
      auto now = SteadyClock::now();
      for (auto& [fd, deadline] : conns) {
        if (deadline && now > *deadline) {
          shutdown(fd, SHUT_RDWR);
          deadline.reset();
        }
      }
    }
  }

  void Serve(int fd, const ServerOptions& o);
  void Session(Transport& t, const std::string& peer, bool secure, const ServerOptions& o);
  void RouterExchange(Exchange& ex, const ServerOptions& o);
};

void HttpServer::Impl::RouterExchange(Exchange& ex, const ServerOptions& o) {
  Request req{ex.header()};
  auto body = ex.ReadWholeBody(o.body_limit_bytes);
  if (!body.ok()) {
    if (body.status().code() == StatusCode::kInvalidArgument &&
        body.status().message().starts_with("request body larger")) {
      (void)ex.Respond(
          ErrorResponse(beast_http::status::payload_too_large, R"({"error":"PayloadTooLarge"})"));
    }
    return;
  }
  req.body() = std::move(*body);
  Response res;
  try {
    res = router->Dispatch(req);
  } catch (const std::exception& e) {
    spdlog::error("http: handler for {} threw: {}", std::string(req.target()), e.what());
    res = MakeResponse(req, beast_http::status::internal_server_error, "application/json",
                       R"({"error":"Internal"})");
  }
  (void)ex.Respond(std::move(res));
}

void HttpServer::Impl::Session(Transport& t, const std::string& peer, bool secure,
                               const ServerOptions& o) {
  beast::flat_buffer buffer;
  buffer.reserve(64 * 1024);  // else Beast reads bodies 512 bytes per recv()
  for (;;) {
    Parser parser;
    parser.header_limit(o.header_limit_bytes);
    // Not boost::none: Boost 1.74 compares lengths with an empty optional as "over the limit".
    parser.body_limit(std::numeric_limits<uint64_t>::max());
    t.set_deadline(SteadyClock::now() + std::chrono::seconds(o.header_timeout_s));
    beast::error_code ec;
    beast_http::read_header(t, buffer, parser, ec);
    t.set_deadline(std::nullopt);
    if (ec == beast_http::error::end_of_stream || ec == asio::error::eof ||
        ec == beast::error::timeout || ec == asio::error::connection_reset) {
      return;
    }
    if (ec) {
      Response res =
          ec == beast_http::error::header_limit
              ? ErrorResponse(beast_http::status::request_header_fields_too_large,
                              R"({"error":"RequestHeaderFieldsTooLarge"})")
              : ErrorResponse(beast_http::status::bad_request,
                              R"({"error":"BadRequest","message":"malformed HTTP request"})");
      beast::error_code wec;
      beast_http::write(t, res, wec);
      return;
    }
    ConnExchange ex(t, buffer, parser, peer, secure);
    try {
      if (router != nullptr) {
        RouterExchange(ex, o);
      } else {
        handler(ex);
      }
    } catch (const std::exception& e) {
      spdlog::error("http: handler for {} threw: {}", std::string(parser.get().target()), e.what());
      if (!ex.responded()) {
        (void)ex.Respond(
            ErrorResponse(beast_http::status::internal_server_error, R"({"error":"Internal"})"));
      }
      return;
    }
    if (ex.failed() || !ex.responded() || ex.remaining() != 0 || !ex.keep_alive()) return;
  }
}

// Before close: a response sent before the request's body was read (401, 413, an early
// error) must reach the client, but closing a socket with unread data makes the kernel send a
// reset that can destroy the response in flight. So half-close, and read and drop what the
// client still sends for a short while (at most 1 s and 8 MiB) until it closes its side.
static void LingeringClose(int fd) {
  if (shutdown(fd, SHUT_WR) != 0) return;
  auto until = SteadyClock::now() + std::chrono::seconds(1);
  timeval tv{0, 100'000};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  char buf[16384];
  size_t total = 0;
  while (SteadyClock::now() < until && total < (8u << 20)) {
    ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n == 0) return;
    if (n < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) continue;
      return;
    }
    total += static_cast<size_t>(n);
  }
}

// A TLS context serving the certificate chain and key of `o`.
static Result<SSL_CTX*> MakeTlsContext(const ServerOptions& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  if (ctx == nullptr) return InternalError("cannot make a TLS context: " + SslError());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, o.tls_cert_file.c_str()) != 1 ||
      SSL_CTX_use_PrivateKey_file(ctx, o.tls_key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    std::string e = SslError();
    SSL_CTX_free(ctx);
    return InvalidArgumentError("unusable TLS certificate " + o.tls_cert_file + " or key " +
                                o.tls_key_file + ": " + e);
  }
  return ctx;
}

Status HttpServer::ReloadCertificate() {
  if (impl_->ssl_ctx == nullptr) return FailedPreconditionError("this server does not use TLS");
  FS_ASSIGN_OR_RETURN(SSL_CTX * ctx, MakeTlsContext(options_));
  SSL_CTX* old = nullptr;
  {
    std::lock_guard l(impl_->mu);
    old = impl_->ssl_ctx;
    impl_->ssl_ctx = ctx;
  }
  SSL_CTX_free(old);  // connections made with it hold their own references
  return Status::Ok();
}

void HttpServer::Impl::Serve(int fd, const ServerOptions& o) {
  SetTimeouts(fd, o.read_timeout_s);
  std::string peer = PeerOf(fd);
  auto hook = [this, fd](std::optional<SteadyClock::time_point> d) { SetDeadline(fd, d); };
  if (ssl_ctx == nullptr) {
    Transport t(fd, nullptr, hook);
    Session(t, peer, false, o);
    return;
  }
  SSL* ssl = nullptr;
  {
    std::lock_guard l(mu);  // ReloadCertificate may swap the context
    ssl = SSL_new(ssl_ctx);
  }
  if (ssl == nullptr) return;
  SSL_set_fd(ssl, fd);
  ERR_clear_error();
  // The handshake, too, must finish within the head's time.
  SetDeadline(fd, SteadyClock::now() + std::chrono::seconds(o.header_timeout_s));
  if (SSL_accept(ssl) == 1) {
    Transport t(fd, ssl, hook);
    Session(t, peer, true, o);
    SSL_shutdown(ssl);
  } else {
    spdlog::debug("http: TLS handshake with {} failed: {}", peer, SslError());
  }
  SSL_free(ssl);
}

HttpServer::HttpServer(ServerOptions options, const Router& router)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  impl_->router = &router;
}

HttpServer::HttpServer(ServerOptions options, StreamHandler handler)
    : options_(std::move(options)), impl_(std::make_unique<Impl>()) {
  impl_->handler = std::move(handler);
}

HttpServer::~HttpServer() {
  Stop();
  if (impl_->ssl_ctx != nullptr) SSL_CTX_free(impl_->ssl_ctx);
}

Status HttpServer::Start() {
  std::string where = options_.address + ":" + std::to_string(options_.port);
  if (!options_.tls_cert_file.empty() || !options_.tls_key_file.empty()) {
    FS_ASSIGN_OR_RETURN(SSL_CTX * ctx, MakeTlsContext(options_));
    impl_->ssl_ctx = ctx;
    // OpenSSL writes with write(2): a client gone mid-answer must be an error, not SIGPIPE.
    signal(SIGPIPE, SIG_IGN);
  }
  sockaddr_storage ss{};
  socklen_t len = 0;
  auto* v4 = reinterpret_cast<sockaddr_in*>(&ss);
  auto* v6 = reinterpret_cast<sockaddr_in6*>(&ss);
  if (inet_pton(AF_INET, options_.address.c_str(), &v4->sin_addr) == 1) {
    v4->sin_family = AF_INET;
    v4->sin_port = htons(options_.port);
    len = sizeof(sockaddr_in);
  } else if (inet_pton(AF_INET6, options_.address.c_str(), &v6->sin6_addr) == 1) {
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(options_.port);
    len = sizeof(sockaddr_in6);
  } else {
    return InvalidArgumentError("bad listen address '" + options_.address + "'");
  }
  int fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return UnavailableError("cannot listen on " + where + ": " + std::strerror(errno));
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0 || listen(fd, 512) != 0) {
    int err = errno;
    close(fd);
    return UnavailableError("cannot listen on " + where + ": " + std::strerror(err));
  }
  sockaddr_storage bound{};
  socklen_t blen = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &blen);
  port_ = ntohs(bound.ss_family == AF_INET ? reinterpret_cast<sockaddr_in*>(&bound)->sin_port
                                           : reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port);
  if (pipe2(impl_->wake, O_CLOEXEC) != 0) {
    close(fd);
    return InternalError(std::string("pipe: ") + std::strerror(errno));
  }
  impl_->listen_fd = fd;
  impl_->stopping = false;
  impl_->watchdog = std::thread([this] { impl_->Watch(); });
  impl_->acceptor = std::thread([this] {
    Impl& im = *impl_;
    for (;;) {
      pollfd p[2] = {{im.listen_fd, POLLIN, 0}, {im.wake[0], POLLIN, 0}};
      if (poll(p, 2, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[1].revents != 0) return;
      int c = accept4(im.listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) {
        if (errno != EINTR && errno != EAGAIN && errno != ECONNABORTED) {
          spdlog::warn("http: accept failed: {}", std::strerror(errno));
          std::this_thread::sleep_for(std::chrono::milliseconds(50));
        }
        continue;
      }
      std::unique_lock lock(im.mu);
      if (im.stopping) {
        close(c);
        return;
      }
      if (static_cast<int>(im.conns.size()) >= options_.max_connections) {
        lock.unlock();
        SetTimeouts(c, 2);
        Transport t(c, nullptr);
        Response res =
            ErrorResponse(beast_http::status::service_unavailable,
                          R"({"error":"ServiceUnavailable","message":"too many connections"})");
        beast::error_code ec;
        if (im.ssl_ctx == nullptr) beast_http::write(t, res, ec);
        close(c);
        continue;
      }
      im.conns.emplace(c, std::nullopt);
      lock.unlock();
      std::thread([this, c] {
        Impl& im2 = *impl_;
        im2.Serve(c, options_);
        LingeringClose(c);
        std::lock_guard l(im2.mu);
        im2.conns.erase(c);
        close(c);
        im2.idle.notify_all();
      }).detach();
    }
  });
  return Status::Ok();
}

void HttpServer::Stop() {
  if (impl_->listen_fd < 0) return;
  char b = 1;
  (void)!write(impl_->wake[1], &b, 1);
  impl_->acceptor.join();
  std::unique_lock lock(impl_->mu);
  impl_->stopping = true;
  for (auto& [c, deadline] : impl_->conns) shutdown(c, SHUT_RDWR);
  impl_->wake_watchdog.notify_all();
  impl_->idle.wait(lock, [&] { return impl_->conns.empty(); });
  lock.unlock();
  impl_->watchdog.join();
  close(impl_->listen_fd);
  close(impl_->wake[0]);
  close(impl_->wake[1]);
  impl_->listen_fd = -1;
}

}  // namespace fieldstack::frontends::http
