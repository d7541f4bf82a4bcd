#include "cli/client.h"

#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <mutex>

#include "platform/file.h"

namespace fieldstack::cli {
namespace {

constexpr char kUserAgent[] = "fieldstack-cli/0.1.0";

void InitCurlOnce() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// Where a response body goes: a string, or (for a 2xx download) a file descriptor.
struct Sink {
  CURL* curl = nullptr;
  int fd = -1;
  std::string text;
  uint64_t written = 0;
  int write_errno = 0;
};

size_t OnData(char* data, size_t size, size_t n, void* user) {
  auto* sink = static_cast<Sink*>(user);
  size_t len = size * n;
  long code = 0;
  curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &code);
  if (sink->fd < 0 || code < 200 || code >= 300) {
    if (sink->text.size() < (16u << 20)) sink->text.append(data, len);
    return len;
  }
  for (size_t off = 0; off < len;) {
    ssize_t w = ::write(sink->fd, data + off, len - off);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      sink->write_errno = errno;
      return 0;  // stops the transfer
    }
    off += static_cast<size_t>(w);
  }
  sink->written += len;
  return len;
}

std::string StatusPhrase(long status) {
  switch (status) {
    case 400:
      return "the box refused the request (400 Bad Request)";
    case 401:
      return "not signed in (401)";
    case 403:
      return "not allowed (403)";
    case 404:
      return "not found (404)";
    case 409:
      return "conflict (409)";
    case 413:
      return "the request is too large (413)";
    case 429:
      return "too many requests (429)";
    case 502:
    case 503:
    case 504:
      return "the box is unavailable (" + std::to_string(status) + ")";
    default:
      return "the box answered HTTP " + std::to_string(status);
  }
}

// A one-line explanation of a transport failure, with what to try.
std::string TransportError(CURLcode code, const char* detail, const std::string& server) {
  std::string why = detail[0] != '\0' ? detail : curl_easy_strerror(code);
  std::string msg = "cannot reach the box at " + server + ": " + why;
  switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
      msg +=
          " (the box's certificate is not trusted: pass --cacert with the box certificate, "
          "<data_dir>/tls/box.crt on the box, or --insecure to skip the check)";
      break;
    case CURLE_SSL_CACERT_BADFILE:
      msg += " (check the --cacert file: it must hold PEM certificates)";
      break;
    case CURLE_SSL_CONNECT_ERROR:
      if (server.starts_with("https://")) {
        msg += " (does the box serve plain HTTP? then use an http:// URL)";
      }
      break;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_UNSUPPORTED_PROTOCOL:
      if (server.starts_with("http://")) msg += " (the box may serve HTTPS: use an https:// URL)";
      break;
    default:
      break;
  }
  return msg;
}

}  // namespace

std::string ApiReply::ErrorMessage() const {
  if (body.is_object() && body.contains("error")) {
    const auto& e = body["error"];
    if (e.is_object() && e.contains("message") && e["message"].is_string()) {
      return e["message"].get<std::string>();
    }
    if (e.is_string()) return e.get<std::string>();
  }
  if (body.is_string()) {
    std::string text = body.get<std::string>();
    while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.pop_back();
    if (!text.empty() && text.size() < 300 && text.find('\n') == std::string::npos) return text;
  }
  return StatusPhrase(status);
}

struct ApiClient::Handle {
  CURL* curl = nullptr;
  ~Handle() {
    if (curl != nullptr) curl_easy_cleanup(curl);
  }
};

ApiClient::ApiClient(ClientOptions options)
    : options_(std::move(options)), handle_(std::make_unique<Handle>()) {
  InitCurlOnce();
  while (options_.server.ends_with("/")) options_.server.pop_back();
  if (options_.insecure && options_.server.starts_with("https://")) {
    static std::atomic<bool> warned{false};
    if (!warned.exchange(true)) {
      std::fprintf(stderr,
                   "fieldstack: warning: --insecure: the box's certificate is not checked; "
                   "anyone on the path can read the password and token\n");
    }
  }
}

ApiClient::~ApiClient() = default;

std::string EscapeSegment(std::string_view s) {
  static const char kHex[] = "0123456789ABCDEF";
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~') {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

std::string ApiClient::Url(std::string_view path, const Query& query) const {
  std::string url = options_.server + std::string(path);
  char sep = '?';
  for (const auto& [k, v] : query) {
    if (v.empty()) continue;
    url += sep + EscapeSegment(k) + "=" + EscapeSegment(v);
    sep = '&';
  }
  return url;
}

Result<ApiReply> ApiClient::Perform(std::string_view method, const std::string& url,
                                    const std::string* body, int out_fd) {
  if (!options_.server.starts_with("http://") && !options_.server.starts_with("https://")) {
    return InvalidArgumentError("--server must be an https:// (or http://) URL, got '" +
                                options_.server + "'");
  }
  if (handle_->curl == nullptr) handle_->curl = curl_easy_init();
  CURL* c = handle_->curl;
  if (c == nullptr) return InternalError("curl_easy_init failed");
  curl_easy_reset(c);
  char errbuf[CURL_ERROR_SIZE] = {};
  Sink sink;
  sink.curl = c;
  sink.fd = out_fd;
  std::string m(method);
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf);
  curl_easy_setopt(c, CURLOPT_USERAGENT, kUserAgent);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT, options_.connect_timeout_s);
  if (out_fd >= 0) {
    // A download may be large: give up only when nothing moves.
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_LIMIT, 1L);
    curl_easy_setopt(c, CURLOPT_LOW_SPEED_TIME, options_.timeout_s);
  } else {
    curl_easy_setopt(c, CURLOPT_TIMEOUT, options_.timeout_s);
  }
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnData);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &sink);
  if (options_.insecure) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  } else if (!options_.ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  }
  curl_slist* headers = nullptr;
  headers = curl_slist_append(headers, "Accept: application/json");
  std::string authz;
  if (!options_.token.empty()) {
    authz = "Authorization: Bearer " + options_.token;
    headers = curl_slist_append(headers, authz.c_str());
  }
  if (m == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, m.c_str());
  }
  if (body != nullptr) {
    headers = curl_slist_append(headers, "Content-Type: application/json");
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body->data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body->size()));
  } else if (m == "POST" || m == "PUT" || m == "PATCH") {
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, curl_off_t{0});
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, nullptr);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, nullptr);
  if (sink.write_errno != 0) {
    return ErrnoStatus(sink.write_errno, "write the downloaded file");
  }
  if (rc != CURLE_OK) return UnavailableError(TransportError(rc, errbuf, options_.server));
  ApiReply reply;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &reply.status);
  if (reply.ok() && out_fd >= 0) {
    reply.body = {{"size_bytes", sink.written}};
  } else if (!sink.text.empty()) {
    reply.body = nlohmann::json::parse(sink.text, nullptr, false);
    if (reply.body.is_discarded()) reply.body = sink.text;
  }
  return reply;
}

Result<ApiReply> ApiClient::Send(std::string_view method, std::string_view path,
                                 const nlohmann::json& body, const Query& query) {
  std::string text;
  if (!body.is_null()) text = body.dump();
  return Perform(method, Url(path, query), body.is_null() ? nullptr : &text, -1);
}

Result<ApiReply> ApiClient::Download(std::string_view path, const std::string& dest) {
  std::string dir = platform::DirName(dest);
  if (dir.empty()) dir = ".";
  std::string tmpl = dest + ".part-XXXXXX";
  int fd = ::mkstemp(tmpl.data());  // mode 0600
  if (fd < 0) return ErrnoStatus(errno, "create " + tmpl);
  auto discard = [&] {
    ::close(fd);
    ::unlink(tmpl.c_str());
  };
  auto fail = [&](Status s) -> Result<ApiReply> {
    discard();
    return s;
  };
  auto reply = Perform("GET", Url(path, {}), nullptr, fd);
  if (!reply.ok()) return fail(reply.status());
  if (!reply->ok()) {
    discard();
    return reply;
  }
  if (::fchmod(fd, 0600) != 0 || ::fsync(fd) != 0) return fail(ErrnoStatus(errno, "sync " + tmpl));
  if (::close(fd) != 0) {
    ::unlink(tmpl.c_str());
    return ErrnoStatus(errno, "close " + tmpl);
  }
  if (::rename(tmpl.c_str(), dest.c_str()) != 0) {
    Status s = ErrnoStatus(errno, "rename to " + dest);
    ::unlink(tmpl.c_str());
    return s;
  }
  (void)platform::SyncDir(dir);
  reply->body["path"] = dest;
  return reply;
}

}  // namespace fieldstack::cli
