#include "cloud/s3/sigv4.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "common/clock.h"
#include "crypto/hash.h"
#include "crypto/key_store.h"

namespace fieldstack::cloud::s3 {
namespace {

constexpr char kAlgorithm[] = "AWS4-HMAC-SHA256";

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Trims and collapses runs of spaces, as SigV4 canonical headers require.
std::string CanonicalValue(std::string_view v) {
  std::string out;
  bool space = false;
  for (char c : v) {
    if (c == ' ' || c == '\t') {
      space = !out.empty();
      continue;
    }
    if (space) out.push_back(' ');
    space = false;
    out.push_back(c);
  }
  return out;
}

struct UrlParts {
  std::string host;  // with the port when the URL has one
  std::string path;  // as sent, "/" when empty
  std::string query;
};

UrlParts Split(std::string_view url) {
  UrlParts p;
  size_t scheme = url.find("://");
  size_t start = scheme == std::string_view::npos ? 0 : scheme + 3;
  size_t path_at = url.find_first_of("/?", start);
  p.host = std::string(url.substr(start, path_at - start));
  if (path_at == std::string_view::npos) {
    p.path = "/";
    return p;
  }
  std::string_view rest = url.substr(path_at);
  size_t q = rest.find('?');
  p.path = std::string(rest.substr(0, q));
  if (p.path.empty()) p.path = "/";
  if (q != std::string_view::npos) p.query = std::string(rest.substr(q + 1));
  return p;
}

std::string CanonicalQuery(std::string_view query) {
  std::vector<std::pair<std::string, std::string>> params;
  size_t pos = 0;
  while (pos < query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view kv = query.substr(pos, amp - pos);
    if (!kv.empty()) {
      size_t eq = kv.find('=');
      std::string k = UrlEncode(UrlDecode(kv.substr(0, eq)));
      std::string v = eq == std::string_view::npos ? "" : UrlEncode(UrlDecode(kv.substr(eq + 1)));
      params.emplace_back(std::move(k), std::move(v));
    }
    pos = amp + 1;
  }
  std::sort(params.begin(), params.end());
  std::string out;
  for (const auto& [k, v] : params) {
    if (!out.empty()) out += '&';
    out += k + "=" + v;
  }
  return out;
}

std::string Scope(std::string_view date, std::string_view region) {
  return std::string(date) + "/" + std::string(region) + "/s3/aws4_request";
}

std::string Signature(const Credentials& creds, std::string_view date, std::string_view region,
                      std::string_view string_to_sign) {
  return crypto::ToHex(
      crypto::HmacSha256(SigningKey(creds.secret_key, date, region), string_to_sign));
}

std::string StringToSign(std::string_view amz_date, std::string_view region,
                         std::string_view canonical_request) {
  return std::string(kAlgorithm) + "\n" + std::string(amz_date) + "\n" +
         Scope(amz_date.substr(0, 8), region) + "\n" +
         crypto::ToHex(crypto::Digest::Sha256(canonical_request));
}

// "name:value\n" lines and the ';'-joined names of all headers, sorted by lower-case name.
std::pair<std::string, std::string> CanonicalHeaders(const HttpRequest& req) {
  std::vector<std::pair<std::string, std::string>> h;
  for (const auto& [k, v] : req.headers) h.emplace_back(Lower(k), CanonicalValue(v));
  std::stable_sort(h.begin(), h.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::string lines, names;
  for (size_t i = 0; i < h.size(); ++i) {
    if (i > 0 && h[i].first == h[i - 1].first) {
      // Repeated header: values joined by commas on one line.
      lines.pop_back();
      lines += "," + h[i].second + "\n";
      continue;
    }
    lines += h[i].first + ":" + h[i].second + "\n";
    if (!names.empty()) names += ';';
    names += h[i].first;
  }
  return {lines, names};
}

}  // namespace

std::string SigningKey(std::string_view secret, std::string_view date, std::string_view region) {
  std::string k = crypto::HmacSha256("AWS4" + std::string(secret), date);
  k = crypto::HmacSha256(k, region);
  k = crypto::HmacSha256(k, "s3");
  return crypto::HmacSha256(k, "aws4_request");
}

std::string CanonicalQueryOf(std::string_view query) { return CanonicalQuery(query); }
std::string CanonicalHeaderValue(std::string_view v) { return CanonicalValue(v); }

std::string AmzDate(int64_t unix_ns) { return FormatUtc(unix_ns, "%Y%m%dT%H%M%SZ"); }

std::string HostOf(std::string_view url) { return Split(url).host; }

std::string CanonicalRequest(const HttpRequest& req, std::string_view payload_hash) {
  UrlParts u = Split(req.url);
  auto [lines, names] = CanonicalHeaders(req);
  return req.method + "\n" + u.path + "\n" + CanonicalQuery(u.query) + "\n" + lines + "\n" + names +
         "\n" + std::string(payload_hash);
}

void SignRequest(HttpRequest& req, const Credentials& creds, std::string_view region,
                 int64_t unix_ns, std::string_view payload_hash) {
  std::string date = AmzDate(unix_ns);
  req.headers.emplace_back("host", HostOf(req.url));
  req.headers.emplace_back("x-amz-date", date);
  req.headers.emplace_back("x-amz-content-sha256", std::string(payload_hash));
  if (!creds.session_token.empty()) {
    req.headers.emplace_back("x-amz-security-token", creds.session_token);
  }
  std::string canonical = CanonicalRequest(req, payload_hash);
  std::string names = CanonicalHeaders(req).second;
  std::string sig =
      Signature(creds, date.substr(0, 8), region, StringToSign(date, region, canonical));
  req.headers.emplace_back("Authorization", std::string(kAlgorithm) +
                                                " Credential=" + creds.access_key + "/" +
                                                Scope(date.substr(0, 8), region) +
                                                ", SignedHeaders=" + names + ", Signature=" + sig);
}

std::string PresignUrl(std::string_view method, std::string_view url, const Credentials& creds,
                       std::string_view region, int64_t unix_ns, int64_t expires_s) {
  std::string date = AmzDate(unix_ns);
  std::string query =
      "X-Amz-Algorithm=" + std::string(kAlgorithm) +
      "&X-Amz-Credential=" + UrlEncode(creds.access_key + "/" + Scope(date.substr(0, 8), region)) +
      "&X-Amz-Date=" + date +
      "&X-Amz-Expires=" + std::to_string(std::clamp<int64_t>(expires_s, 1, 604800)) +
      "&X-Amz-SignedHeaders=host";
  if (!creds.session_token.empty()) {
    query += "&X-Amz-Security-Token=" + UrlEncode(creds.session_token);
  }
  std::string full(url);
  full += (full.find('?') == std::string::npos ? "?" : "&") + query;
  HttpRequest req{std::string(method), full, {{"host", HostOf(url)}}, {}};
  std::string canonical = CanonicalRequest(req, kUnsignedPayload);
  std::string sig =
      Signature(creds, date.substr(0, 8), region, StringToSign(date, region, canonical));
  return full + "&X-Amz-Signature=" + sig;
}

}  // namespace fieldstack::cloud::s3
