// libFuzzer target for the HTTP core's request parsing: the input is sent to a live HttpServer
// (plain HTTP) whose handler reads the whole body and answers; the server must answer or close
// without crashing, and keep serving (a well-formed request afterwards gets its answer).

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

#include "frontends/http/server.h"

using namespace fieldstack::frontends::http;

namespace {

HttpServer* Server() {
  static HttpServer* server = [] {
    ServerOptions o;
    o.read_timeout_s = 1;
    o.header_timeout_s = 1;
    auto* s = new HttpServer(o, [](Exchange& ex) {
      auto body = ex.ReadWholeBody(1 << 20);
      Response res{beast_http::status::ok, 11};
      res.body() = body.ok() ? std::to_string(body->size()) : "bad";
      res.prepare_payload();
      (void)ex.Respond(std::move(res));
    });
    if (!s->Start().ok()) __builtin_trap();
    return s;
  }();
  return server;
}

std::string SendRaw(uint16_t port, std::string_view bytes, bool half_close) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
  // Closed with a reset: thousands of runs a second would otherwise use up the ephemeral ports
  // in TIME_WAIT (connect then fails).
  linger lg{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  int tries = 0;
  while (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0) {
    if (++tries == 50) __builtin_trap();  // the server stopped accepting
    usleep(20000);
  }
  timeval tv{3, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  // The server may answer and close before it has read everything: no SIGPIPE for that.
  (void)!send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL);
  if (half_close) shutdown(fd, SHUT_WR);
  std::string out;
  char buf[4096];
  ssize_t n;
  while ((n = read(fd, buf, sizeof buf)) > 0) out.append(buf, static_cast<size_t>(n));
  close(fd);
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  uint16_t port = Server()->port();
  SendRaw(port, {reinterpret_cast<const char*>(data), size}, /*half_close=*/true);
  if (size % 64 == 0) {
    std::string ok = SendRaw(port, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", false);
    if (ok.rfind("HTTP/1.1 200", 0) != 0) __builtin_trap();
  }
  return 0;
}
