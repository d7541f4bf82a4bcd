#include "test/support/fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <cstring>

namespace fieldstack::testing {
namespace {

bool SendAll(int fd, const std::string& data) {
  size_t done = 0;
  while (done < data.size()) {
    ssize_t n = ::send(fd, data.data() + done, data.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<size_t>(n);
  }
  return true;
}

// Reads one HTTP message (head + Content-Length body) from fd into msg, starting with what is
// already in `buf`. For responses to HEAD, `no_body` skips the body.
bool ReadMessage(int fd, std::string& buf, std::string& msg, bool no_body = false) {
  size_t head_end;
  while ((head_end = buf.find("\r\n\r\n")) == std::string::npos) {
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
  }
  size_t body_len = 0;
  std::string head = buf.substr(0, head_end);
  std::string lower = head;
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (!no_body && lower.find("\r\ntransfer-encoding: chunked") != std::string::npos) {
    size_t end;
    while ((end = buf.find("\r\n0\r\n\r\n", head_end)) == std::string::npos) {
      char tmp[65536];
      ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
      if (n <= 0) return false;
      buf.append(tmp, static_cast<size_t>(n));
    }
    msg = buf.substr(0, end + 7);
    buf.erase(0, end + 7);
    return true;
  }
  size_t cl = lower.find("\r\ncontent-length:");
  if (cl != std::string::npos && !no_body) body_len = std::stoul(head.substr(cl + 17));
  size_t total = head_end + 4 + body_len;
  while (buf.size() < total) {
    char tmp[65536];
    ssize_t n = ::recv(fd, tmp, sizeof tmp, 0);
    if (n <= 0) return false;
    buf.append(tmp, static_cast<size_t>(n));
  }
  msg = buf.substr(0, total);
  buf.erase(0, total);
  return true;
}

std::string Reply(int status, const char* reason) {
  std::string body =
      "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>ServerBusy</Code>"
      "<Message>injected by FaultProxy</Message></Error>";
  return "HTTP/1.1 " + std::to_string(status) + " " + reason +
         "\r\nContent-Type: application/xml\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\nConnection: close\r\n\r\n" + body;
}

}  // namespace

FaultProxy::FaultProxy(std::string upstream_host, uint16_t upstream_port, Options options)
    : upstream_host_(std::move(upstream_host)),
      upstream_port_(upstream_port),
      options_(std::move(options)),
      rng_(options_.seed) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  addr.sin_port = 0;
  ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  ::listen(listen_fd_, 64);
  socklen_t len = sizeof addr;
  ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len);
  port_ = ntohs(addr.sin_port);
  acceptor_ = std::thread([this] { Accept(); });
}

FaultProxy::~FaultProxy() {
  stopping_ = true;
  ::shutdown(listen_fd_, SHUT_RDWR);
  ::close(listen_fd_);
  acceptor_.join();
  {
    std::lock_guard l(mu_);
    for (int fd : open_fds_) ::shutdown(fd, SHUT_RDWR);
  }
  for (auto& t : threads_) t.join();
}

std::map<FaultProxy::Fault, int> FaultProxy::counts() const {
  std::lock_guard l(mu_);
  return counts_;
}

FaultProxy::Fault FaultProxy::Draw() {
  std::lock_guard l(mu_);
  std::uniform_real_distribution<double> u(0, 1);
  Fault f = Fault::kNone;
  if (u(rng_) < options_.fault_rate && !options_.faults.empty()) {
    f = options_.faults[rng_() % options_.faults.size()];
  }
  ++counts_[f];
  return f;
}

void FaultProxy::Accept() {
  while (!stopping_) {
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) {
      if (stopping_) return;
      continue;
    }
    std::lock_guard l(mu_);
    open_fds_.push_back(client);
    threads_.emplace_back([this, client] { Serve(client); });
  }
}

void FaultProxy::Serve(int client) {
  std::string in_buf;
  for (;;) {
    std::string request;
    if (!ReadMessage(client, in_buf, request)) break;
    ++requests_;
    Fault fault = Draw();
    if (fault == Fault::k500 || fault == Fault::k503 || fault == Fault::k429) {
      int code = fault == Fault::k500 ? 500 : fault == Fault::k503 ? 503 : 429;
      SendAll(client, Reply(code, code == 429 ? "Too Many Requests" : "Server Error"));
      break;
    }
    if (fault == Fault::kReset) {
      linger lg{1, 0};  // RST instead of FIN
      ::setsockopt(client, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
      break;
    }
    if (fault == Fault::kBlackhole) {
      // Swallow the request and say nothing; the client's stall timeout must notice.
      for (int waited = 0; waited < options_.blackhole_ms && !stopping_; waited += 20) {
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
      break;
    }
    if (fault == Fault::kDelay) {
      std::this_thread::sleep_for(std::chrono::milliseconds(options_.delay_ms));
    }
    size_t head_end = request.find("\r\n\r\n") + 4;
    bool has_body = request.size() > head_end;
    // Only payloads the service can check (they carry Content-MD5) get a flipped byte.
    std::string head_lower = request.substr(0, request.find("\r\n\r\n"));
    for (char& c : head_lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool checked = head_lower.find("\r\ncontent-md5:") != std::string::npos;
    if (fault == Fault::kFlipByte && has_body && checked) {
      size_t at = head_end + (request.size() - head_end) / 2;
      request[at] = static_cast<char>(request[at] ^ 0x20);
    }
    int up = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_port = htons(upstream_port_);
    ::inet_pton(AF_INET, upstream_host_.c_str(), &addr.sin_addr);
    if (::connect(up, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      ::close(up);
      break;
    }
    if (fault == Fault::kTruncate && has_body) {
      // Half the body, then both connections go away.
      SendAll(up, request.substr(0, head_end + (request.size() - head_end) / 2));
      ::close(up);
      break;
    }
    std::string response, up_buf;
    bool head = request.rfind("HEAD ", 0) == 0;
    bool ok = SendAll(up, request) && ReadMessage(up, up_buf, response, head);
    ::close(up);
    if (!ok || !SendAll(client, response)) break;
  }
  {
    std::lock_guard l(mu_);
    std::erase(open_fds_, client);
  }
  ::close(client);
}

}  // namespace fieldstack::testing
