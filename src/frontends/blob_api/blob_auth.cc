#include "frontends/blob_api/blob_auth.h"

#include <arpa/inet.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <ctime>
#include <pugixml.hpp>

#include "crypto/hash.h"

namespace fieldstack::frontends::blob_api {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Sort weights of @azure/storage-common's SharedKeyComparator (en-US culture order, as the
// .NET service sorts): level 0 compares letters case-insensitively and digits, and ignores
// characters of weight 0 ('-' and '\''); level 2 separates case; level 4 the ignored ones.
uint32_t Weight(int level, unsigned char c) {
  if (c >= 128) return 0xf000 + c;
  if (level == 0) {
    if (c >= 'a' && c <= 'z') c = static_cast<unsigned char>(c - 'a' + 'A');
    if (c >= 'A' && c <= 'Z') {
      static constexpr uint16_t kLetters[26] = {0xe02, 0xe09, 0xe0a, 0xe1a, 0xe21, 0xe23, 0xe25,
                                                0xe2c, 0xe32, 0xe35, 0xe36, 0xe48, 0xe51, 0xe70,
                                                0xe7c, 0xe7e, 0xe89, 0xe8a, 0xe91, 0xe99, 0xe9f,
                                                0xea2, 0xea4, 0xea6, 0xea7, 0xea9};
      return kLetters[c - 'A'];
    }
    if (c >= '0' && c <= '9') {
      static constexpr uint16_t kDigits[10] = {0xd03, 0xd1a, 0xd1c, 0xd1e, 0xd20,
                                               0xd22, 0xd24, 0xd26, 0xd28, 0xd2a};
      return kDigits[c - '0'];
    }
    switch (c) {
      case '!':
        return 0x71c;
      case '#':
        return 0x71f;
      case '$':
        return 0x721;
      case '%':
        return 0x723;
      case '&':
        return 0x725;
      case '*':
        return 0x72d;
      case '+':
        return 0x803;
      case '.':
        return 0x733;
      case '^':
        return 0x743;
      case '_':
        return 0x744;
      case '`':
        return 0x748;
      case '|':
        return 0x74c;
      case '~':
        return 0x750;
      default:
        return 0;
    }
  }
  if (level == 1) return c >= 'A' && c <= 'Z' ? 0x12 : 0;
  if (c == '\'') return 0x8012;
  if (c == '-') return 0x8212;
  return 0;
}

bool CultureLess(std::string_view lhs, std::string_view rhs) {
  size_t i = 0, j = 0;
  int level = 0;
  while (level < 3) {
    if (level == 2 && i != j) return i > j;
    uint32_t w1 = i < lhs.size() ? Weight(level, static_cast<unsigned char>(lhs[i])) : 1;
    uint32_t w2 = j < rhs.size() ? Weight(level, static_cast<unsigned char>(rhs[j])) : 1;
    if (w1 == 1 && w2 == 1) {
      i = j = 0;
      ++level;
    } else if (w1 == w2) {
      ++i;
      ++j;
    } else if (w1 == 0) {
      ++i;
    } else if (w2 == 0) {
      ++j;
    } else {
      return w1 < w2;
    }
  }
  return false;
}

std::string Header(const SignedRequest& req, std::string_view name) {
  for (const auto& [k, v] : req.headers) {
    if (EqualsIgnoreCase(k, name)) return std::string(Trim(v));
  }
  return "";
}

std::string CanonicalHeaders(std::vector<std::pair<std::string, std::string>> ms) {
  std::string out;
  for (const auto& [k, v] : ms) out += k + ":" + v + "\n";
  return out;
}

bool ParseIpv4(std::string_view s, uint32_t* out) {
  std::string z(s);
  in_addr a{};
  if (::inet_pton(AF_INET, z.c_str(), &a) != 1) return false;
  *out = ntohl(a.s_addr);
  return true;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

}  // namespace

std::optional<std::string> UrlDecode(std::string_view in) {
  std::string out;
  out.reserve(in.size());
  for (size_t i = 0; i < in.size(); ++i) {
    if (in[i] != '%') {
      out += in[i];
      continue;
    }
    if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
        !std::isxdigit(static_cast<unsigned char>(in[i + 2]))) {
      return std::nullopt;
    }
    out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
    i += 2;
  }
  return out;
}

std::optional<QueryParams> ParseQuery(std::string_view query) {
  QueryParams out;
  while (!query.empty()) {
    size_t amp = query.find('&');
    std::string_view kv = query.substr(0, amp);
    query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
    if (kv.empty()) continue;
    size_t eq = kv.find('=');
    auto k = UrlDecode(kv.substr(0, eq));
    auto v = UrlDecode(eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1));
    if (!k || !v) return std::nullopt;
    out.emplace_back(std::move(*k), std::move(*v));
  }
  return out;
}

std::optional<std::string> QueryValue(const QueryParams& q, std::string_view name) {
  for (const auto& [k, v] : q) {
    if (EqualsIgnoreCase(k, name)) return v;
  }
  return std::nullopt;
}

std::vector<std::string> SharedKeyStringsToSign(const SignedRequest& req,
                                                std::string_view account) {
  std::string_view target = req.target;
  size_t q = target.find('?');
  std::string_view path = target.substr(0, q);
  if (path.empty()) path = "/";
  std::optional<QueryParams> params =
      ParseQuery(q == std::string_view::npos ? std::string_view() : target.substr(q + 1));
  if (!params) return {};

  // Canonicalized resource: /account + the path as sent, then "name:v1,v2" per parameter.
  std::string resource = "/" + std::string(account) + std::string(path);
  std::vector<std::pair<std::string, std::vector<std::string>>> grouped;
  for (auto& [k, v] : *params) {
    std::string lk = Lower(k);
    auto it =
        std::find_if(grouped.begin(), grouped.end(), [&](const auto& g) { return g.first == lk; });
    if (it == grouped.end()) {
      grouped.push_back({lk, {v}});
    } else {
      it->second.push_back(v);
    }
  }
  std::sort(grouped.begin(), grouped.end());
  for (auto& [k, vs] : grouped) {
    std::sort(vs.begin(), vs.end());
    resource += "\n" + k + ":";
    for (size_t i = 0; i < vs.size(); ++i) resource += (i ? "," : "") + vs[i];
  }

  std::vector<std::pair<std::string, std::string>> ms;
  for (const auto& [k, v] : req.headers) {
    std::string lk = Lower(Trim(k));
    if (!lk.starts_with("x-ms-")) continue;
    if (std::any_of(ms.begin(), ms.end(), [&](const auto& e) { return e.first == lk; })) continue;
    ms.emplace_back(lk, std::string(Trim(v)));
  }
  std::sort(ms.begin(), ms.end());
  std::vector<std::string> header_variants{CanonicalHeaders(ms)};
  auto culture = ms;
  std::stable_sort(culture.begin(), culture.end(),
                   [](const auto& a, const auto& b) { return CultureLess(a.first, b.first); });
  if (culture != ms) header_variants.push_back(CanonicalHeaders(culture));

  std::string length = Header(req, "Content-Length");
  if (length == "0") length.clear();
  std::string encoding = Header(req, "Content-Encoding");
  std::string language = Header(req, "Content-Language");
  std::string rest = length + "\n" + Header(req, "Content-MD5") + "\n" +
                     Header(req, "Content-Type") + "\n" + Header(req, "Date") + "\n" +
                     Header(req, "If-Modified-Since") + "\n" + Header(req, "If-Match") + "\n" +
                     Header(req, "If-None-Match") + "\n" + Header(req, "If-Unmodified-Since") +
                     "\n" + Header(req, "Range") + "\n";
  std::vector<std::string> heads{req.method + "\n" + encoding + "\n" + language + "\n" + rest};
  if (encoding != language)
    heads.push_back(req.method + "\n" + language + "\n" + encoding + "\n" + rest);

  std::vector<std::string> out;
  for (const auto& h : heads) {
    for (const auto& c : header_variants) out.push_back(h + c + resource);
  }
  return out;
}

bool VerifySharedKey(const SignedRequest& req, std::string_view account, std::string_view key,
                     std::string_view signature_b64) {
  if (key.empty() || signature_b64.empty()) return false;
  for (const auto& s : SharedKeyStringsToSign(req, account)) {
    if (ConstantTimeEquals(crypto::Base64(crypto::HmacSha256(key, s)), signature_b64)) return true;
  }
  return false;
}

std::optional<SharedKeyHeader> ParseSharedKeyHeader(std::string_view authorization) {
  authorization = Trim(authorization);
  constexpr std::string_view kScheme = "SharedKey ";
  if (!authorization.starts_with(kScheme)) return std::nullopt;
  std::string_view rest = Trim(authorization.substr(kScheme.size()));
  size_t colon = rest.rfind(':');
  if (colon == std::string_view::npos || colon == 0 || colon + 1 == rest.size()) {
    return std::nullopt;
  }
  return SharedKeyHeader{std::string(rest.substr(0, colon)), std::string(rest.substr(colon + 1))};
}

std::optional<int64_t> ParseIso8601(std::string_view text) {
  auto digits = [&](size_t at, size_t n, int* out) {
    if (at + n > text.size()) return false;
    int v = 0;
    for (size_t i = at; i < at + n; ++i) {
      if (!std::isdigit(static_cast<unsigned char>(text[i]))) return false;
      v = v * 10 + (text[i] - '0');
    }
    *out = v;
    return true;
  };
  std::tm tm{};
  int y, mo, d, h = 0, mi = 0, s = 0;
  if (!digits(0, 4, &y) || text.size() < 10 || text[4] != '-' || !digits(5, 2, &mo) ||
      text[7] != '-' || !digits(8, 2, &d)) {
    return std::nullopt;
  }
  size_t at = 10;
  if (at < text.size()) {
    if (text[at] != 'T' || !digits(at + 1, 2, &h) || at + 3 >= text.size() || text[at + 3] != ':' ||
        !digits(at + 4, 2, &mi)) {
      return std::nullopt;
    }
    at += 6;
    if (at < text.size() && text[at] == ':') {
      if (!digits(at + 1, 2, &s)) return std::nullopt;
      at += 3;
      if (at < text.size() && text[at] == '.') {
        ++at;
        size_t start = at;
        while (at < text.size() && std::isdigit(static_cast<unsigned char>(text[at]))) ++at;
        if (at == start || at - start > 9) return std::nullopt;
      }
    }
    if (at + 1 != text.size() || text[at] != 'Z') return std::nullopt;
  }
  if (mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || s > 60) return std::nullopt;
  tm.tm_year = y - 1900;
  tm.tm_mon = mo - 1;
  tm.tm_mday = d;
  tm.tm_hour = h;
  tm.tm_min = mi;
  tm.tm_sec = s;
  return static_cast<int64_t>(::timegm(&tm)) * 1'000'000'000LL;
}

Result<SasGrant> VerifySas(const QueryParams& query, std::string_view account,
                           std::string_view container, std::string_view blob, std::string_view key,
                           int64_t now_ns, bool https, std::string_view peer) {
  auto get = [&](std::string_view n) { return QueryValue(query, n).value_or(""); };
  std::string sv = get("sv"), sig = get("sig"), sp = get("sp"), st = get("st"), se = get("se");
  std::string sip = get("sip"), spr = get("spr");
  if (sv.empty() || sig.empty()) return UnauthenticatedError("SAS without sv or sig");
  if (sv < "2015-04-05") return UnauthenticatedError("SAS version " + sv + " is not supported");
  if (!get("si").empty()) return UnauthenticatedError("stored access policies are not supported");
  for (const char* udk : {"skoid", "sktid", "skt", "ske", "sks", "skv"}) {
    if (!get(udk).empty()) return UnauthenticatedError("user delegation SAS is not supported");
  }
  if (se.empty() || sp.empty()) return UnauthenticatedError("SAS without se or sp");
  SasGrant grant;
  grant.permissions = sp;
  std::string to_sign;
  std::string ss = get("ss"), srt = get("srt");
  if (!ss.empty() || !srt.empty()) {
    if (ss.find('b') == std::string::npos) return UnauthenticatedError("SAS is not for blobs");
    grant.account_sas = true;
    grant.resource_types = srt;
    to_sign = std::string(account) + "\n" + sp + "\n" + ss + "\n" + srt + "\n" + st + "\n" + se +
              "\n" + sip + "\n" + spr + "\n" + sv + "\n";
    if (sv >= "2020-12-06") to_sign += get("ses") + "\n";
  } else {
    std::string sr = get("sr");
    std::string canonical = "/blob/" + std::string(account) + "/" + std::string(container);
    if (sr == "c") {
      if (container.empty()) return UnauthenticatedError("container SAS used above a container");
    } else if (sr == "b") {
      if (blob.empty()) return UnauthenticatedError("blob SAS used for a container");
      canonical += "/" + std::string(blob);
      grant.blob = blob;
    } else {
      return UnauthenticatedError("SAS resource '" + sr + "' is not supported");
    }
    grant.container = container;
    std::string tail = get("rscc") + "\n" + get("rscd") + "\n" + get("rsce") + "\n" + get("rscl") +
                       "\n" + get("rsct");
    to_sign = sp + "\n" + st + "\n" + se + "\n" + canonical + "\n" + get("si") + "\n" + sip + "\n" +
              spr + "\n" + sv + "\n";
    if (sv >= "2020-12-06") {
      to_sign += sr + "\n" + get("snapshot") + "\n" + get("ses") + "\n" + tail;
    } else if (sv >= "2018-11-09") {
      to_sign += sr + "\n" + get("snapshot") + "\n" + tail;
    } else {
      to_sign += tail;
    }
  }
  if (!ConstantTimeEquals(crypto::Base64(crypto::HmacSha256(key, to_sign)), sig)) {
    return UnauthenticatedError("SAS signature does not match");
  }
  auto expiry = ParseIso8601(se);
  if (!expiry) return UnauthenticatedError("SAS se is not an ISO 8601 time");
  if (now_ns > *expiry) return UnauthenticatedError("SAS expired at " + se);
  if (!st.empty()) {
    auto start = ParseIso8601(st);
    if (!start) return UnauthenticatedError("SAS st is not an ISO 8601 time");
    if (now_ns < *start) return UnauthenticatedError("SAS not valid before " + st);
  }
  if (!spr.empty() && spr != "https" && spr != "https,http" && spr != "http,https") {
    return UnauthenticatedError("SAS spr is invalid");
  }
  if (spr == "https" && !https) return UnauthenticatedError("SAS allows HTTPS only");
  if (!sip.empty()) {
    size_t dash = sip.find('-');
    uint32_t lo, hi, ip;
    if (!ParseIpv4(sip.substr(0, dash), &lo) ||
        !ParseIpv4(dash == std::string::npos ? sip : sip.substr(dash + 1), &hi)) {
      return UnauthenticatedError("SAS sip is invalid");
    }
    if (!ParseIpv4(peer, &ip) || ip < lo || ip > hi) {
      return UnauthenticatedError("SAS does not allow this client address");
    }
  }

  return grant;
}

std::optional<std::string> DecodeBase64Strict(std::string_view in) {
  // Only padded base64 of the standard alphabet reaches the decoder (crypto::Base64Decode
  // trusts its input's padding).
  if (in.size() % 4 != 0) return std::nullopt;
  size_t pad = 0;
  for (size_t i = 0; i < in.size(); ++i) {
    char c = in[i];
    if (c == '=' && i + 2 >= in.size()) {
      ++pad;
    } else if (pad > 0 || !(std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '/')) {
      return std::nullopt;
    }
  }
  if (in.empty()) return std::string();
  if (pad == 1 && in[in.size() - 2] == '=') return std::nullopt;
  std::string raw = crypto::Base64Decode(in);
  if (crypto::Base64(raw) != in) return std::nullopt;
  return raw;
}

Result<std::string> DecodeBlockId(std::string_view base64) {
  auto raw = DecodeBase64Strict(base64);
  if (!raw) return InvalidArgumentError("block id is not base64");
  if (raw->empty()) return InvalidArgumentError("block id is empty");
  if (raw->size() > kMaxBlockIdBytes) return InvalidArgumentError("block id is over 64 bytes");
  return *raw;
}

Result<std::vector<BlockRef>> ParseBlockList(std::string_view xml) {
  if (xml.size() > kMaxBlockListBytes) return InvalidArgumentError("xml: block list too large");
  pugi::xml_document doc;
  pugi::xml_parse_result r =
      doc.load_buffer(xml.data(), xml.size(), pugi::parse_default, pugi::encoding_utf8);
  if (!r) return InvalidArgumentError(std::string("xml: ") + r.description());
  pugi::xml_node root = doc.document_element();
  if (std::string_view(root.name()) != "BlockList") {
    return InvalidArgumentError("xml: the root element is not BlockList");
  }
  std::vector<BlockRef> out;
  size_t id_size = 0;
  for (pugi::xml_node n : root.children()) {
    if (n.type() != pugi::node_element) continue;
    BlockRef ref;
    std::string_view name = n.name();
    if (name == "Committed") {
      ref.from = BlockRef::From::kCommitted;
    } else if (name == "Uncommitted") {
      ref.from = BlockRef::From::kUncommitted;
    } else if (name == "Latest") {
      ref.from = BlockRef::From::kLatest;
    } else {
      return InvalidArgumentError("xml: unexpected element " + std::string(name));
    }
    if (out.size() >= kMaxBlocksPerBlob) return InvalidArgumentError("block: over 50000 blocks");
    auto id = DecodeBlockId(Trim(n.text().get()));
    if (!id.ok()) return InvalidArgumentError("block: " + id.status().message());
    if (id_size != 0 && id->size() != id_size) {
      return InvalidArgumentError("block: block ids of different lengths");
    }
    id_size = id->size();
    ref.id = std::move(*id);
    out.push_back(std::move(ref));
  }
  return out;
}

std::string Hex(std::string_view raw) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(raw.size() * 2);
  for (unsigned char c : raw) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

}  // namespace fieldstack::frontends::blob_api
