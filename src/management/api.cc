#include "management/api.h"

#include <spdlog/spdlog.h>
#include <zlib.h>

#include <atomic>
#include <charconv>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>

#include "common/mutex.h"
#include "platform/file.h"

namespace fieldstack::management {
namespace {

namespace bh = boost::beast::http;
namespace fh = frontends::http;

std::string CodeName(StatusCode c) {
  switch (c) {
    case StatusCode::kOk:
      return "ok";
    case StatusCode::kNotFound:
      return "not_found";
    case StatusCode::kAlreadyExists:
      return "already_exists";
    case StatusCode::kInvalidArgument:
      return "invalid_argument";
    case StatusCode::kFailedPrecondition:
      return "failed_precondition";
    case StatusCode::kNoSpace:
      return "no_space";
    case StatusCode::kUnavailable:
      return "unavailable";
    case StatusCode::kPermissionDenied:
      return "permission_denied";
    case StatusCode::kUnauthenticated:
      return "unauthenticated";
    case StatusCode::kResourceExhausted:
      return "too_many_requests";
    default:
      return "internal";
  }
}

int FromHex(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; nullopt for a malformed escape or a NUL.
std::optional<std::string> Decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = FromHex(s[i + 1]), lo = FromHex(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      char c = static_cast<char>(hi * 16 + lo);
      if (c == '\0') return std::nullopt;
      out.push_back(c);
      i += 2;
    } else if (plus_is_space && s[i] == '+') {
      out.push_back(' ');
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  size_t pos = 1;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    out.push_back(path.substr(pos, slash - pos));
    pos = slash + 1;
  }
  return out;
}

bool ValidUtf8NoControl(std::string_view s, bool allow_newlines) {
  size_t i = 0;
  while (i < s.size()) {
    auto c = static_cast<unsigned char>(s[i]);
    if (c < 0x80) {
      bool nl = c == '\n' || c == '\r' || c == '\t';
      if ((c < 0x20 && !(allow_newlines && nl)) || c == 0x7f) return false;
      ++i;
      continue;
    }
    int n = (c & 0xe0) == 0xc0 ? 1 : (c & 0xf0) == 0xe0 ? 2 : (c & 0xf8) == 0xf0 ? 3 : -1;
    if (n < 0 || i + static_cast<size_t>(n) >= s.size()) return false;
    for (int k = 1; k <= n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return false;
    }
    if (c == 0xc0 || c == 0xc1 || c > 0xf4) return false;
    i += n + 1;
  }
  return true;
}

// JSON text; invalid UTF-8 (from a request's path or fields) becomes U+FFFD instead of throwing.
std::string Dump(const nlohmann::json& j) {
  return j.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
}

const char* TypeName(FieldType t) {
  switch (t) {
    case FieldType::kString:
      return "a string";
    case FieldType::kInt:
      return "an integer";
    case FieldType::kBool:
      return "true or false";
    case FieldType::kStringArray:
      return "an array of strings";
    case FieldType::kObject:
      return "an object";
    case FieldType::kNumber:
      return "a number";
  }
  return "?";
}

}  // namespace

std::string ApiRequest::Query(const std::string& name, const std::string& fallback) const {
  auto it = query.find(name);
  return it == query.end() ? fallback : it->second;
}

Result<int64_t> ApiRequest::QueryInt(const std::string& name, int64_t fallback, int64_t lo,
                                     int64_t hi) const {
  auto it = query.find(name);
  if (it == query.end()) return fallback;
  const std::string& v = it->second;
  std::string msg = "query parameter '" + name + "' must be an integer from " + std::to_string(lo) +
                    " to " + std::to_string(hi);
  if (v.empty() || v.size() > 19 || v.find_first_not_of("-0123456789") != std::string::npos ||
      v.find('-', 1) != std::string::npos) {
    return InvalidArgumentError(msg);
  }
  int64_t n = 0;
  auto [end, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
  if (ec != std::errc() || end != v.data() + v.size() || n < lo || n > hi) {
    return InvalidArgumentError(msg);
  }
  return n;
}

Result<bool> ApiRequest::QueryBool(const std::string& name, bool fallback) const {
  auto it = query.find(name);
  if (it == query.end()) return fallback;
  if (it->second == "true" || it->second == "1") return true;
  if (it->second == "false" || it->second == "0") return false;
  return InvalidArgumentError("query parameter '" + name + "' must be true or false");
}

ApiResponse ApiResponse::Json(nlohmann::json body, int status) {
  ApiResponse r;
  r.status = status;
  r.body = std::move(body);
  return r;
}

ApiResponse ApiResponse::NoContent() {
  ApiResponse r;
  r.status = 204;
  r.body = nullptr;
  return r;
}

int HttpStatusOf(StatusCode code) {
  switch (code) {
    case StatusCode::kOk:
      return 200;
    case StatusCode::kNotFound:
      return 404;
    case StatusCode::kAlreadyExists:
    case StatusCode::kFailedPrecondition:
      return 409;
    case StatusCode::kInvalidArgument:
      return 400;
    case StatusCode::kPermissionDenied:
      return 403;
    case StatusCode::kUnauthenticated:
      return 401;
    case StatusCode::kResourceExhausted:
      return 429;
    case StatusCode::kUnavailable:
      return 503;
    case StatusCode::kNoSpace:
      return 507;
    default:
      return 500;
  }
}

nlohmann::json ErrorBody(const Status& s) {
  return {{"error", {{"code", CodeName(s.code())}, {"message", s.message()}}}};
}

Status CheckText(const nlohmann::json& body, const std::string& field, size_t max_len,
                 bool required) {
  if (!body.is_object() || !body.contains(field)) {
    return required ? InvalidArgumentError("field '" + field + "' is required") : Status::Ok();
  }
  const auto& v = body[field];
  if (!v.is_string()) return InvalidArgumentError("field '" + field + "' must be a string");
  const auto& s = v.get_ref<const std::string&>();
  if (s.size() > max_len) {
    return InvalidArgumentError("field '" + field + "' is longer than " + std::to_string(max_len) +
                                " bytes");
  }
  if (!ValidUtf8NoControl(s, true)) {
    return InvalidArgumentError("field '" + field + "' must be UTF-8 text");
  }
  return Status::Ok();
}

Status CheckBody(const nlohmann::json& body, const std::vector<Field>& fields) {
  if (!body.is_object()) return InvalidArgumentError("the body must be a JSON object");
  for (auto& [key, value] : body.items()) {
    bool known = false;
    for (const Field& f : fields) known = known || f.name == key;
    if (!known) {
      std::string names;
      for (const Field& f : fields) names += (names.empty() ? "" : ", ") + f.name;
      return InvalidArgumentError("unknown field '" + key.substr(0, 64) +
                                  "' (known: " + (names.empty() ? "none" : names) + ")");
    }
  }
  for (const Field& f : fields) {
    if (!body.contains(f.name)) {
      if (f.required) return InvalidArgumentError("field '" + f.name + "' is required");
      continue;
    }
    if (body[f.name].is_null()) {
      return InvalidArgumentError("field '" + f.name + "' must be " + TypeName(f.type) +
                                  ", not null (leave it out to keep the current value)");
    }
    const auto& v = body[f.name];
    std::string bad = "field '" + f.name + "' must be " + TypeName(f.type);
    switch (f.type) {
      case FieldType::kString: {
        if (!v.is_string()) return InvalidArgumentError(bad);
        const auto& s = v.get_ref<const std::string&>();
        if (s.size() > f.max_len) {
          return InvalidArgumentError("field '" + f.name + "' is longer than " +
                                      std::to_string(f.max_len) + " bytes");
        }
        if (!ValidUtf8NoControl(s, false)) {
          return InvalidArgumentError("field '" + f.name +
                                      "' must be UTF-8 text without control characters");
        }
        break;
      }
      case FieldType::kInt: {
        if (!v.is_number_integer()) return InvalidArgumentError(bad);
        if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(INT64_MAX)) {
          return InvalidArgumentError("field '" + f.name + "' is out of range");
        }
        int64_t n = v.get<int64_t>();
        if (n < f.min || n > f.max) {
          return InvalidArgumentError("field '" + f.name + "' must be from " +
                                      std::to_string(f.min) + " to " + std::to_string(f.max));
        }
        break;
      }
      case FieldType::kNumber:
        if (!v.is_number()) return InvalidArgumentError(bad);
        break;
      case FieldType::kBool:
        if (!v.is_boolean()) return InvalidArgumentError(bad);
        break;
      case FieldType::kObject:
        if (!v.is_object()) return InvalidArgumentError(bad);
        break;
      case FieldType::kStringArray: {
        if (!v.is_array()) return InvalidArgumentError(bad);
        if (v.size() > f.max_len) {
          return InvalidArgumentError("field '" + f.name + "' has more than " +
                                      std::to_string(f.max_len) + " entries");
        }
        for (const auto& e : v) {
          if (!e.is_string()) return InvalidArgumentError(bad);
          const auto& s = e.get_ref<const std::string&>();
          if (s.size() > 256 || !ValidUtf8NoControl(s, false)) {
            return InvalidArgumentError("field '" + f.name +
                                        "' has an entry that is too long or not text");
          }
        }
        break;
      }
    }
  }
  return Status::Ok();
}

struct ManagementApi::Impl {
  struct Route {
    Verb method;
    std::string pattern;
    std::vector<std::string> segments;
    Access access;
    ApiHandler handler;
  };
  ApiOptions options;
  Auth& auth;
  std::vector<Route> routes;
  std::unique_ptr<fh::HttpServer> server;
  Mutex audit_mu;
  struct Gzipped {
    std::filesystem::file_time_type mtime;
    size_t size = 0;
    std::string data;
  };
  Mutex gzip_mu;
  std::map<std::string, Gzipped> gzip_cache GUARDED_BY(gzip_mu);

  // `text` as a gzip stream; empty on failure (then it is sent as it is).
  static std::string Gzip(const std::string& text) {
    z_stream z{};
    if (deflateInit2(&z, 9, Z_DEFLATED, 31, 8, Z_DEFAULT_STRATEGY) != Z_OK) return "";
    std::string out(deflateBound(&z, text.size()) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(text.data()));
    z.avail_in = static_cast<uInt>(text.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    int rc = deflate(&z, Z_FINISH);
    size_t n = out.size() - z.avail_out;
    deflateEnd(&z);
    if (rc != Z_STREAM_END) return "";
    out.resize(n);
    return out;
  }

  Impl(ApiOptions o, Auth& a) : options(std::move(o)), auth(a) {}

  void Audit(const ApiRequest& req, const std::string& method, int status) {
    if (options.log_dir.empty()) return;
    nlohmann::json j;
    char when[32];
    std::time_t t = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&t, &tm);
    std::strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
    j["time"] = when;
    j["user"] = req.principal ? req.principal->user : "";
    j["token"] = req.principal ? req.principal->token_id : "";
    j["peer"] = req.peer;
    j["method"] = method;
    j["path"] = req.path;
    j["status"] = status;
    MutexLock l(audit_mu);
    Status s = platform::AppendToRotatingLog(options.log_dir + "/api-audit.log", Dump(j) + "\n",
                                             16 << 20, 3);
    if (!s.ok()) spdlog::warn("api: cannot write the audit log: {}", s.ToString());
  }

  // Finds the route for `path`; `allowed` collects the methods of routes matching the path.
  const Route* Match(Verb method, const std::vector<std::string_view>& segs,
                     std::map<std::string, std::string>& params, std::string& allowed,
                     bool& bad_escape) const {
    const Route* found = nullptr;
    for (const Route& r : routes) {
      if (r.segments.size() != segs.size()) continue;
      std::map<std::string, std::string> p;
      bool ok = true;
      for (size_t i = 0; i < segs.size() && ok; ++i) {
        const std::string& want = r.segments[i];
        if (want.size() > 2 && want.front() == '{' && want.back() == '}') {
          auto v = Decode(segs[i], false);
          if (!v) {
            bad_escape = true;
            ok = false;
          } else if (v->empty()) {
            ok = false;
          } else {
            p[want.substr(1, want.size() - 2)] = *v;
          }
        } else {
          ok = want == segs[i];
        }
      }
      if (!ok) continue;
      if (r.method == method && found == nullptr) {
        found = &r;
        params = std::move(p);
      }
      allowed += (allowed.empty() ? "" : ", ") + std::string(bh::to_string(r.method));
    }
    return found;
  }

  void Respond(fh::Exchange& ex, bool keep_alive, const ApiResponse& r) {
    if (!r.file_path.empty()) {
      std::error_code ec;
      uint64_t file_size = std::filesystem::file_size(r.file_path, ec);
      std::ifstream in(r.file_path, std::ios::binary);
      if (ec || !in) {
        Send(ex, keep_alive, 500, Dump(ErrorBody(InternalError("the file is gone"))),
             "application/json", {});
        return;
      }
      fh::ResponseHeader head;
      head.result(r.status);
      head.version(11);
      head.set(bh::field::content_type,
               r.content_type.empty() ? "application/octet-stream" : r.content_type);
      head.set(bh::field::content_disposition, "attachment; filename=\"" + r.download_name + "\"");
      head.set(bh::field::cache_control, "no-store");
      if (!ex.BeginResponse(head, file_size).ok()) return;
      std::vector<char> buf(1 << 20);
      uint64_t left = file_size;
      while (left > 0 && in) {
        in.read(buf.data(), static_cast<std::streamsize>(std::min<uint64_t>(buf.size(), left)));
        std::streamsize n = in.gcount();
        if (n <= 0) break;
        if (!ex.WriteBody({reinterpret_cast<const uint8_t*>(buf.data()), static_cast<size_t>(n)})
                 .ok()) {
          return;
        }
        left -= static_cast<uint64_t>(n);
      }
      return;
    }
    if (!r.content_type.empty()) {
      Send(ex, keep_alive, r.status, r.text, r.content_type, r.headers);
      return;
    }
    Send(ex, keep_alive, r.status, r.status == 204 ? "" : Dump(r.body), "application/json",
         r.headers);
  }

  static void Send(fh::Exchange& ex, bool keep_alive, int status, std::string body,
                   const std::string& type,
                   const std::vector<std::pair<std::string, std::string>>& headers) {
    fh::Response res;
    res.result(status);
    res.version(11);
    if (status != 204) res.set(bh::field::content_type, type);
    res.set(bh::field::cache_control, "no-store");
    res.set("X-Content-Type-Options", "nosniff");
    for (auto& [k, v] : headers) res.set(k, v);
    res.keep_alive(keep_alive);
    res.body() = std::move(body);
    res.prepare_payload();
    (void)ex.Respond(std::move(res));
  }

  // Serves `path` from the UI's files, or index.html for a path without a file extension
  // (the UI's own routes). False when there is no UI or no such file.
  bool ServeUi(fh::Exchange& ex, const std::string& path, bool head_only) {
    if (options.ui_dir.empty()) return false;
    auto decoded = Decode(path, false);
    if (!decoded) return false;
    std::string rel = *decoded == "/" ? "/index.html" : *decoded;
    for (size_t pos = 1; pos <= rel.size();) {
      size_t slash = std::min(rel.find('/', pos), rel.size());
      std::string_view seg(rel.data() + pos, slash - pos);
      if (seg == ".." || seg == "." || (seg.empty() && slash < rel.size())) return false;
      pos = slash + 1;
    }
    std::string file = options.ui_dir + rel;
    std::error_code ec;
    if (!std::filesystem::is_regular_file(file, ec)) {
      std::string last = rel.substr(rel.rfind('/') + 1);
      if (last.find('.') != std::string::npos) return false;  // a missing asset
      file = options.ui_dir + "/index.html";
      if (!std::filesystem::is_regular_file(file, ec)) return false;
    }
    std::ifstream in(file, std::ios::binary);
    std::string body((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (!in.good() && !in.eof()) return false;
    // Text goes gzipped to browsers that take it (a third of the bytes on a field link),
    // compressed once per file version.
    bool gzipped = false;
    std::string accept(ex.header()[bh::field::accept_encoding]);
    std::string ext0 = file.substr(std::min(file.rfind('.'), file.size()));
    if (accept.find("gzip") != std::string::npos &&
        (ext0 == ".html" || ext0 == ".js" || ext0 == ".css" || ext0 == ".svg" || ext0 == ".json" ||
         ext0 == ".txt" || ext0 == ".map")) {
      auto mtime = std::filesystem::last_write_time(file, ec);
      MutexLock l(gzip_mu);
      auto& cached = gzip_cache[file];
      if (cached.mtime != mtime || cached.size != body.size() || cached.data.empty()) {
        cached = {mtime, body.size(), Gzip(body)};
      }
      if (!cached.data.empty()) {
        body = cached.data;
        gzipped = true;
      }
    }
    static const std::map<std::string, std::string> kTypes = {
        {".html", "text/html; charset=utf-8"},
        {".js", "text/javascript; charset=utf-8"},
        {".css", "text/css; charset=utf-8"},
        {".svg", "image/svg+xml"},
        {".png", "image/png"},
        {".ico", "image/x-icon"},
        {".json", "application/json"},
        {".woff2", "font/woff2"},
        {".txt", "text/plain; charset=utf-8"},
        {".map", "application/json"}};
    std::string ext = file.substr(std::min(file.rfind('.'), file.size()));
    auto type = kTypes.find(ext);
    fh::Response res;
    res.result(200);
    res.version(11);
    res.set(bh::field::content_type,
            type == kTypes.end() ? "application/octet-stream" : type->second);
    // Hashed asset names never change; index.html must be fetched again after an upgrade.
    res.set(bh::field::cache_control,
            rel.starts_with("/assets/") ? "public, max-age=31536000, immutable" : "no-cache");
    res.set("Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
            "connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'");
    res.set("X-Content-Type-Options", "nosniff");
    res.set(bh::field::vary, "Accept-Encoding");
    if (gzipped) res.set(bh::field::content_encoding, "gzip");
    res.set("X-Frame-Options", "DENY");
    res.set("Referrer-Policy", "no-referrer");
    res.keep_alive(true);
    if (head_only) {
      res.content_length(body.size());
    } else {
      res.body() = std::move(body);
      res.prepare_payload();
    }
    (void)ex.Respond(std::move(res));
    return true;
  }

  void Handle(fh::Exchange& ex) {
    const fh::RequestHeader& h = ex.header();
    bool keep_alive = true;  // the server closes when the request or the body says so
    std::string target(h.target());
    std::string path = target.substr(0, target.find('?'));
    std::string query = target.size() > path.size() ? target.substr(path.size() + 1) : "";
    ApiRequest req;
    req.method = h.method();
    req.path = path;
    req.peer = ex.peer();
    req.user_agent = std::string(h[bh::field::user_agent]);
    auto fail = [&](const Status& s, std::vector<std::pair<std::string, std::string>> hdrs = {}) {
      Send(ex, keep_alive, HttpStatusOf(s.code()), Dump(ErrorBody(s)), "application/json", hdrs);
    };
    if (path.empty() || path[0] != '/') return fail(InvalidArgumentError("bad request target"));
    // The query.
    for (size_t pos = 0; pos < query.size();) {
      size_t amp = std::min(query.find('&', pos), query.size());
      std::string_view kv(query.data() + pos, amp - pos);
      pos = amp + 1;
      if (kv.empty()) continue;
      size_t eq = kv.find('=');
      auto k = Decode(kv.substr(0, eq), true);
      auto v = Decode(eq == std::string_view::npos ? "" : kv.substr(eq + 1), true);
      if (!k || !v) return fail(InvalidArgumentError("malformed query string"));
      req.query[*k] = *v;
    }
    std::map<std::string, std::string> params;
    std::string allowed;
    bool bad_escape = false;
    const Route* route = Match(req.method, Segments(path), params, allowed, bad_escape);
    if (route == nullptr) {
      if (bad_escape) return fail(InvalidArgumentError("malformed escape in the path"));
      if (!allowed.empty()) {
        return fail({StatusCode::kInvalidArgument, "method not allowed; use " + allowed},
                    {{"Allow", allowed}});
      }
      if ((req.method == Verb::get || req.method == Verb::head) && !path.starts_with("/api/") &&
          ServeUi(ex, path, req.method == Verb::head)) {
        return;
      }
      return Send(ex, keep_alive, 404,
                  Dump(ErrorBody(NotFoundError("no such route: " + path.substr(0, 200)))),
                  "application/json", {});
    }
    req.params = std::move(params);
    // Who calls.
    if (route->access != Access::kPublic) {
      std::string authz(h[bh::field::authorization]);
      std::string token;
      if (authz.size() > 7 && strncasecmp(authz.c_str(), "bearer ", 7) == 0) {
        token = authz.substr(7);
      }
      if (token.empty()) {
        return fail(UnauthenticatedError("sign in first: send 'Authorization: Bearer <token>' "
                                         "(POST /api/v1/login gives one)"),
                    {{"WWW-Authenticate", "Bearer realm=\"fieldstack\""}});
      }
      auto who = auth.Authenticate(token);
      if (!who.ok()) {
        return fail(who.status(), {{"WWW-Authenticate", "Bearer error=\"invalid_token\""}});
      }
      req.principal = *who;
      req.bearer = token;
      Role need = route->access == Access::kAdmin      ? Role::kAdmin
                  : route->access == Access::kOperator ? Role::kOperator
                                                       : Role::kReader;
      if (static_cast<int>(who->role) < static_cast<int>(need)) {
        Status denied = PermissionDeniedError("this needs the " + std::string(RoleName(need)) +
                                              " role; user '" + who->user + "' is " +
                                              std::string(RoleName(who->role)));
        if (req.method != Verb::get) Audit(req, std::string(bh::to_string(req.method)), 403);
        return fail(denied);
      }
    }
    // The body.
    auto length = ex.content_length();
    if (length && *length > options.server.body_limit_bytes) {
      return Send(ex, false, 413,
                  Dump(ErrorBody(InvalidArgumentError(
                      "the body is larger than " + std::to_string(options.server.body_limit_bytes) +
                      " bytes"))),
                  "application/json", {});
    }
    auto body = ex.ReadWholeBody(options.server.body_limit_bytes);
    if (!body.ok()) {
      if (body.status().code() == StatusCode::kUnavailable) return;  // the client is gone
      // Past the limit without a Content-Length (chunked), or a malformed body.
      bool large = body.status().message().find("larger") != std::string::npos ||
                   body.status().message().find("limit") != std::string::npos;
      return Send(ex, false, large ? 413 : 400, Dump(ErrorBody(body.status())), "application/json",
                  {});
    }
    if (!body->empty()) {
      req.body = nlohmann::json::parse(*body, nullptr, false);
      if (req.body.is_discarded()) {
        return fail(InvalidArgumentError("the body is not valid JSON (send application/json)"));
      }
    }
    Result<ApiResponse> res = InternalError("no response");
    try {
      res = route->handler(req);
    } catch (const std::exception& e) {
      spdlog::error("api: {} {} threw: {}", std::string(bh::to_string(req.method)), path, e.what());
      res = InternalError("the server failed; see the error log");
    }
    int status = res.ok() ? res->status : HttpStatusOf(res.status().code());
    if (req.method != Verb::get || (res.ok() && res->audit)) {
      Audit(req, std::string(bh::to_string(req.method)), status);
    }
    if (!res.ok()) return fail(res.status());
    Respond(ex, keep_alive, *res);
  }
};

ManagementApi::ManagementApi(ApiOptions options, Auth& auth)
    : impl_(std::make_unique<Impl>(std::move(options), auth)) {}

ManagementApi::~ManagementApi() { Stop(); }

void ManagementApi::Add(Verb method, std::string pattern, Access access, ApiHandler handler) {
  Impl::Route r{method, pattern, {}, access, std::move(handler)};
  if (access != Access::kPublic && impl_->options.public_paths.count(pattern)) {
    r.access = Access::kPublic;
  }
  for (auto s : Segments(pattern)) r.segments.emplace_back(s);
  impl_->routes.push_back(std::move(r));
}

std::vector<RouteInfo> ManagementApi::Routes() const {
  std::vector<RouteInfo> out;
  for (const auto& r : impl_->routes) out.push_back({r.method, r.pattern, r.access});
  return out;
}

Status ManagementApi::Start() {
  impl_->server = std::make_unique<fh::HttpServer>(
      impl_->options.server, [im = impl_.get()](fh::Exchange& ex) { im->Handle(ex); });
  return impl_->server->Start();
}

void ManagementApi::Stop() {
  if (impl_->server) impl_->server->Stop();
}

uint16_t ManagementApi::port() const { return impl_->server ? impl_->server->port() : 0; }

bool ManagementApi::secure() const { return !impl_->options.server.tls_cert_file.empty(); }

Status ManagementApi::ReloadCertificate() {
  if (!impl_->server) return FailedPreconditionError("the API is not started");
  return impl_->server->ReloadCertificate();
}

}  // namespace fieldstack::management
