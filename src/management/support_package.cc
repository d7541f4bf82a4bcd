#include "management/support_package.h"

// The package is a POSIX ustar archive (512-byte headers, regular files only, mode 0600, uid
// and gid 0) compressed as one zstd frame (level 3, with the frame checksum). It is streamed:
// each member is redacted in memory, framed and handed to the compressor, which writes to
// "<out_path>.tmp-<pid>-<random>"; the end blocks close the archive, the file is fsynced and
// renamed over out_path, and the directory is fsynced. Any failure or a cancel removes the
// temporary file.
//
// Redaction runs in two passes over a member's bytes:
//  1. Literal secrets: every occurrence of each non-empty secret and of its encodings (standard
//     and URL-safe base64, padded and not; the base64 of the secret inside a longer base64 text
//     at any of the three byte alignments when the secret has 6 bytes or more; URL encoding
//     with upper and lower case hex; JSON escaping, with and without "\/") becomes [REDACTED].
//     Short secrets are redacted too (only empty ones are ignored): a one-letter secret mangles the
//     text, which is the price of never leaking it.
//  2. Key-looking text: see IsSecretKeyName and RedactKeyValues below; also the bodies of PEM
//     "PRIVATE KEY" blocks.

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zstd.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <memory>
#include <random>
#include <set>
#include <span>

#include "common/clock.h"
#include "platform/file.h"

namespace fieldstack::management {

namespace {

constexpr std::string_view kRedacted = "[REDACTED]";

// ---- pass 1: literal secrets ----------------------------------------------------------------

constexpr char kBase64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
constexpr char kBase64Url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string Base64(std::string_view in, const char* alphabet, bool pad) {
  std::string out;
  size_t i = 0;
  for (; i + 3 <= in.size(); i += 3) {
    uint32_t v = (uint32_t{static_cast<uint8_t>(in[i])} << 16) |
                 (uint32_t{static_cast<uint8_t>(in[i + 1])} << 8) | static_cast<uint8_t>(in[i + 2]);
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    out += alphabet[(v >> 6) & 63];
    out += alphabet[v & 63];
  }
  size_t rest = in.size() - i;
  if (rest > 0) {
    uint32_t v = uint32_t{static_cast<uint8_t>(in[i])} << 16;
    if (rest == 2) v |= uint32_t{static_cast<uint8_t>(in[i + 1])} << 8;
    out += alphabet[v >> 18];
    out += alphabet[(v >> 12) & 63];
    if (rest == 2) out += alphabet[(v >> 6) & 63];
    if (pad) out.append(3 - rest, '=');
  }
  return out;
}

std::string UrlEncode(std::string_view in, bool upper_hex) {
  const char* hex = upper_hex ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (char c : in) {
    auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '.' || c == '_' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += hex[u >> 4];
      out += hex[u & 15];
    }
  }
  return out;
}

std::string JsonEscape(std::string_view in) {
  std::string out;
  for (char c : in) {
    auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (u < 0x20) {
      out += fmt::format("\\u{:04x}", u);
    } else {
      out += c;
    }
  }
  return out;
}

// The texts that give `secret` away.
std::vector<std::string> SecretForms(std::string_view secret) {
  std::set<std::string> forms;
  forms.insert(std::string(secret));
  for (const char* alphabet : {kBase64, kBase64Url}) {
    forms.insert(Base64(secret, alphabet, true));
    forms.insert(Base64(secret, alphabet, false));
    if (secret.size() >= 6) {
      // Inside a longer base64 text the secret starts at byte offset 0, 1 or 2 of a 3-byte
      // group; the characters that only hold bits of the secret are the same whatever
      // surrounds it.
      for (size_t shift = 0; shift < 3; ++shift) {
        std::string enc = Base64(std::string(shift, '\0') + std::string(secret), alphabet, false);
        size_t begin = (8 * shift + 5) / 6;
        size_t end = 8 * (shift + secret.size()) / 6;
        if (end > begin) forms.insert(enc.substr(begin, end - begin));
      }
    }
  }
  forms.insert(UrlEncode(secret, true));
  forms.insert(UrlEncode(secret, false));
  std::string json = JsonEscape(secret);
  forms.insert(json);
  std::string json_slash;  // some encoders also escape '/'
  for (char c : json) json_slash += c == '/' ? std::string("\\/") : std::string(1, c);
  forms.insert(json_slash);
  forms.erase("");
  return {forms.begin(), forms.end()};
}

struct Span {
  size_t begin;
  size_t end;
};

// `text` with the (possibly overlapping) spans replaced by kRedacted.
std::string ReplaceSpans(std::string_view text, std::vector<Span> spans) {
  if (spans.empty()) return std::string(text);
  std::sort(spans.begin(), spans.end(),
            [](const Span& a, const Span& b) { return a.begin < b.begin; });
  std::string out;
  out.reserve(text.size());
  size_t pos = 0;
  for (size_t i = 0; i < spans.size();) {
    size_t begin = spans[i].begin;
    size_t end = spans[i].end;
    for (++i; i < spans.size() && spans[i].begin <= end; ++i) end = std::max(end, spans[i].end);
    out.append(text.substr(pos, begin - pos));
    out.append(kRedacted);
    pos = end;
  }
  out.append(text.substr(pos));
  return out;
}

std::string RedactLiterals(std::string_view text, const std::vector<std::string>& secrets) {
  std::vector<Span> spans;
  for (const std::string& secret : secrets) {
    if (secret.empty()) continue;
    for (const std::string& form : SecretForms(secret)) {
      for (size_t at = text.find(form); at != std::string_view::npos;
           at = text.find(form, at + 1)) {
        spans.push_back({at, at + form.size()});
      }
    }
  }
  return ReplaceSpans(text, std::move(spans));
}

// ---- pass 2: key-looking text ---------------------------------------------------------------

bool IsKeyChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// Words of a key name, lower case: split at '_', '-', '.' and camelCase humps
// ("AccountKey" -> account, key; "SAS_URL" -> sas, url).
std::vector<std::string> KeyWords(std::string_view name) {
  std::vector<std::string> words;
  std::string cur;
  for (size_t i = 0; i < name.size(); ++i) {
    char c = name[i];
    if (c == '_' || c == '-' || c == '.') {
      if (!cur.empty()) words.push_back(std::move(cur));
      cur.clear();
      continue;
    }
    bool upper = std::isupper(static_cast<unsigned char>(c));
    bool prev_lower = i > 0 && std::islower(static_cast<unsigned char>(name[i - 1]));
    if (upper && prev_lower && !cur.empty()) {
      words.push_back(std::move(cur));
      cur.clear();
    }
    cur += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (!cur.empty()) words.push_back(std::move(cur));
  return words;
}

// Whether the value of a key named `name` is redacted. The rule, refined from "the name contains
// one of password, secret, key, token, sas, signature, credential, authorization" to keep
// useful text:
//  - password, passwd, secret, token, signature, credential and authorization match anywhere
//    in the name, case-insensitively ("DB_PASSWORD", "x-amz-security-token");
//  - key matches a word of the name that ends in "key" or "keys" ("AccountKey", "api_key",
//    "apikey"; not "keyspace"); sas matches a word that is or starts with "sas" other than
//    "sasl" ("sas", "sasUrl");
//  - a name whose last word describes the value rather than being it is never redacted:
//    file, path, dir, id, name, type, size, bits, length, count, format, version, algorithm
//    ("key_file = /etc/x.pem", "access_key_id", "secret_name").
bool IsSecretKeyName(std::string_view name) {
  static constexpr std::array<std::string_view, 13> kDescriptors = {
      "file", "path",   "dir",   "id",     "name",    "type",     "size",
      "bits", "length", "count", "format", "version", "algorithm"};
  std::vector<std::string> words = KeyWords(name);
  if (words.empty()) return false;
  if (std::find(kDescriptors.begin(), kDescriptors.end(), words.back()) != kDescriptors.end()) {
    return false;
  }
  std::string lower = Lower(name);
  for (std::string_view w :
       {"password", "passwd", "secret", "token", "signature", "credential", "authorization"}) {
    if (lower.find(w) != std::string::npos) return true;
  }
  for (const std::string& w : words) {
    if (w.ends_with("key") || w.ends_with("keys")) return true;
    if (w.starts_with("sas") && w != "sasl") return true;
  }
  return false;
}

bool IsValueEnd(char c) {
  switch (c) {
    case ' ':
    case '\t':
    case '\r':
    case '\n':
    case ',':
    case '&':
    case ';':
    case '"':
    case '\'':
    case '<':
    case '>':
    case '}':
    case ']':
      return true;
    default:
      return false;
  }
}

// An HTTP authentication scheme that comes before the credentials in an Authorization value.
bool IsAuthScheme(std::string_view word) {
  std::string w = Lower(word);
  for (std::string_view scheme : {"basic", "bearer", "digest", "sharedkey", "sharedkeylite", "aws",
                                  "aws4-hmac-sha256", "negotiate", "ntlm", "token", "oauth"}) {
    if (w == scheme) return true;
  }
  return false;
}

// Replaces values of secret-looking keys. At each '=' or ':' the key is the run of [A-Za-z0-9_.-]
// before it (after optional spaces and an optional, possibly backslash-escaped, quote). Its
// value starts after optional spaces and is:
//  - a quoted string ('...', "..." or the JSON-escaped \"...\"): its contents up to the closing
//    quote (or the line end when there is none);
//  - otherwise everything up to whitespace, ',', '&', ';', a quote, '<', '>', '}' or ']'.
// An Authorization value that starts with a known scheme and a space ("Bearer x",
// "SharedKey a:b") keeps the scheme and loses the token after it. "sig" after '?' or '&' (SAS URLs)
// is a secret key too. "://" (URLs) and "==" are not separators; an empty value or one that is
// already [REDACTED] is left alone.
std::string RedactKeyValues(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t copied = 0;
  for (size_t i = 0; i < text.size(); ++i) {
    char sep = text[i];
    if (sep != '=' && sep != ':') continue;
    if (sep == ':' && text.substr(i + 1, 2) == "//") continue;
    if (sep == '=' && i + 1 < text.size() && text[i + 1] == '=') continue;
    size_t j = i;
    while (j > 0 && (text[j - 1] == ' ' || text[j - 1] == '\t')) --j;
    if (j > 0 && (text[j - 1] == '"' || text[j - 1] == '\'')) {
      --j;
      if (j > 0 && text[j - 1] == '\\') --j;
    }
    size_t k = j;
    while (k > 0 && IsKeyChar(text[k - 1])) --k;
    std::string_view name = text.substr(k, j - k);
    if (name.empty() || j - k > 128) continue;
    bool secret = IsSecretKeyName(name) ||
                  (Lower(name) == "sig" && k > 0 && (text[k - 1] == '?' || text[k - 1] == '&'));
    if (!secret) continue;

    size_t v = i + 1;
    while (v < text.size() && (text[v] == ' ' || text[v] == '\t')) ++v;
    size_t begin = v;
    size_t end = v;
    if (text.substr(v, 2) == "\\\"") {
      begin = v + 2;
      end = text.find("\\\"", begin);
      size_t eol = text.find('\n', begin);
      end = std::min(end, eol);
      if (end == std::string_view::npos) end = text.size();
    } else if (v < text.size() && (text[v] == '"' || text[v] == '\'')) {
      char quote = text[v];
      begin = v + 1;
      end = begin;
      while (end < text.size() && text[end] != quote && text[end] != '\n') {
        end += text[end] == '\\' ? 2 : 1;
      }
      end = std::min(end, text.size());
    } else {
      while (end < text.size() && !IsValueEnd(text[end])) ++end;
      std::string_view value = text.substr(begin, end - begin);
      if (IsAuthScheme(value) && Lower(name).find("authorization") != std::string::npos &&
          end + 1 < text.size() && text[end] == ' ' && !IsValueEnd(text[end + 1])) {
        begin = end + 1;
        end = begin;
        while (end < text.size() && !IsValueEnd(text[end])) ++end;
      }
    }
    if (end <= begin) continue;
    if (text.substr(begin, kRedacted.size()) == kRedacted) {
      i = begin + kRedacted.size() - 1;
      continue;
    }
    out.append(text.substr(copied, begin - copied));
    out.append(kRedacted);
    copied = end;
    i = end - 1;
  }
  out.append(text.substr(copied));
  return out;
}

// Replaces the bodies of PEM blocks whose label has "PRIVATE KEY" (to the END line, or the end of
// the text when it is missing).
std::string RedactPrivateKeyBlocks(std::string text) {
  size_t pos = 0;
  while ((pos = text.find("-----BEGIN ", pos)) != std::string::npos) {
    size_t label_end = text.find("-----", pos + 11);
    if (label_end == std::string::npos) break;
    std::string_view label(text.data() + pos + 11, label_end - pos - 11);
    size_t body = label_end + 5;
    if (label.find("PRIVATE KEY") == std::string_view::npos || label.find('\n') != label.npos) {
      pos = body;
      continue;
    }
    size_t end = text.find("-----END ", body);
    if (end == std::string::npos) end = text.size();
    text.replace(body, end - body, "\n" + std::string(kRedacted) + "\n");
    pos = body + kRedacted.size() + 2;
  }
  return text;
}

// ---- ustar ----------------------------------------------------------------------------------

constexpr size_t kBlock = 512;
constexpr size_t kRecord = 20 * kBlock;  // GNU tar's default record
constexpr size_t kNameLen = 100;
constexpr size_t kPrefixLen = 155;
constexpr uint64_t kMaxMemberBytes = (uint64_t{1} << 33) - 1;  // 11 octal digits
constexpr uint64_t kMaxUnpackedBytes = uint64_t{4} << 30;

// Header field offsets (POSIX.1-1988 ustar).
constexpr size_t kOffName = 0, kOffMode = 100, kOffUid = 108, kOffGid = 116, kOffSize = 124,
                 kOffMtime = 136, kOffChksum = 148, kOffType = 156, kOffMagic = 257,
                 kOffVersion = 263, kOffPrefix = 345;

void PutOctal(uint8_t* field, size_t width, uint64_t v) {
  // width - 1 digits, then NUL.
  for (size_t i = width - 1; i-- > 0;) {
    field[i] = static_cast<uint8_t>('0' + (v & 7));
    v >>= 3;
  }
  field[width - 1] = 0;
}

uint32_t HeaderSum(const uint8_t* h) {
  uint32_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    sum += (i >= kOffChksum && i < kOffChksum + 8) ? ' ' : h[i];
  }
  return sum;
}

int32_t HeaderSignedSum(const uint8_t* h) {
  int32_t sum = 0;
  for (size_t i = 0; i < kBlock; ++i) {
    sum += (i >= kOffChksum && i < kOffChksum + 8) ? ' ' : static_cast<int8_t>(h[i]);
  }
  return sum;
}

// Splits `path` into ustar prefix and name; false when it cannot be stored.
bool SplitName(const std::string& path, std::string* prefix, std::string* name) {
  if (path.empty()) return false;
  if (path.size() <= kNameLen) {
    prefix->clear();
    *name = path;
    return true;
  }
  for (size_t slash = path.find('/'); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    if (slash > kPrefixLen) break;
    size_t rest = path.size() - slash - 1;
    if (rest > 0 && rest <= kNameLen) {
      *prefix = path.substr(0, slash);
      *name = path.substr(slash + 1);
      return true;
    }
  }
  return false;
}

Status MakeHeader(const std::string& path, uint64_t size, int64_t mtime, uint8_t* h) {
  std::string prefix;
  std::string name;
  if (!SplitName(path, &prefix, &name)) {
    return InvalidArgumentError("name too long for a ustar archive: " + path);
  }
  if (size > kMaxMemberBytes) return InvalidArgumentError("member too big: " + path);
  std::memset(h, 0, kBlock);
  std::memcpy(h + kOffName, name.data(), name.size());
  PutOctal(h + kOffMode, 8, 0600);
  PutOctal(h + kOffUid, 8, 0);
  PutOctal(h + kOffGid, 8, 0);
  PutOctal(h + kOffSize, 12, size);
  PutOctal(h + kOffMtime, 12, static_cast<uint64_t>(std::max<int64_t>(mtime, 0)));
  h[kOffType] = '0';
  std::memcpy(h + kOffMagic, "ustar", 6);  // with its NUL
  std::memcpy(h + kOffVersion, "00", 2);
  std::memcpy(h + kOffPrefix, prefix.data(), prefix.size());
  uint32_t sum = HeaderSum(h);
  PutOctal(h + kOffChksum, 7, sum);  // six digits, NUL,
  h[kOffChksum + 7] = ' ';           // then a space
  return Status::Ok();
}

// A numeric header field: optional leading spaces, octal digits, then NUL or spaces.
bool ParseOctal(const uint8_t* field, size_t width, uint64_t* out) {
  size_t i = 0;
  while (i < width && field[i] == ' ') ++i;
  uint64_t v = 0;
  size_t digits = 0;
  for (; i < width && field[i] >= '0' && field[i] <= '7'; ++i, ++digits) {
    if (v >> 60) return false;
    v = v * 8 + (field[i] - '0');
  }
  for (; i < width; ++i) {
    if (field[i] != 0 && field[i] != ' ') return false;
  }
  *out = v;
  return digits > 0;
}

bool AllZero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

Result<std::map<std::string, std::string>> ParseTar(std::string_view tar) {
  std::map<std::string, std::string> files;
  size_t pos = 0;
  while (true) {
    if (tar.size() - pos < kBlock) return CorruptionError("tar: truncated (no end blocks)");
    const auto* h = reinterpret_cast<const uint8_t*>(tar.data() + pos);
    if (AllZero(tar.substr(pos, kBlock))) {
      if (tar.size() - pos < 2 * kBlock || !AllZero(tar.substr(pos + kBlock, kBlock))) {
        return CorruptionError("tar: a lone zero block at offset " + std::to_string(pos));
      }
      if (!AllZero(tar.substr(pos + 2 * kBlock))) {
        return CorruptionError("tar: data after the end blocks");
      }
      return files;
    }
    uint64_t stored = 0;
    if (!ParseOctal(h + kOffChksum, 8, &stored) ||
        (stored != HeaderSum(h) && static_cast<int64_t>(stored) != HeaderSignedSum(h))) {
      return CorruptionError("tar: bad header checksum at offset " + std::to_string(pos));
    }
    bool ustar = std::memcmp(h + kOffMagic, "ustar", 5) == 0;
    if (!ustar) return CorruptionError("tar: not a ustar header at offset " + std::to_string(pos));
    uint64_t size = 0;
    if (!ParseOctal(h + kOffSize, 12, &size)) {
      return CorruptionError("tar: bad size field at offset " + std::to_string(pos));
    }
    std::string name(reinterpret_cast<const char*>(h + kOffName),
                     strnlen(reinterpret_cast<const char*>(h + kOffName), kNameLen));
    std::string prefix(reinterpret_cast<const char*>(h + kOffPrefix),
                       strnlen(reinterpret_cast<const char*>(h + kOffPrefix), kPrefixLen));
    if (h[kOffMagic + 5] == ' ') prefix.clear();  // GNU "ustar  ": no prefix field
    if (!prefix.empty()) name = prefix + "/" + name;
    if (name.empty()) return CorruptionError("tar: empty name at offset " + std::to_string(pos));
    size_t data = pos + kBlock;
    if (size > tar.size() - data) {
      return CorruptionError("tar: " + name + " is truncated");
    }
    char type = static_cast<char>(h[kOffType]);
    if (type == '0' || type == '\0') {
      files[name] = std::string(tar.substr(data, size));
    } else if (type != '5') {
      return CorruptionError(fmt::format("tar: {} has unsupported type '{}'", name, type));
    }
    uint64_t padded = (size + kBlock - 1) / kBlock * kBlock;
    if (padded > tar.size() - data) return CorruptionError("tar: " + name + " is truncated");
    pos = data + padded;
  }
}

// ---- the writer -----------------------------------------------------------------------------

// Streams ustar members through zstd into a temporary file and renames it over the target.
// Not thread-safe. The temporary file is removed unless Finish succeeded.
class PackageWriter {
 public:
  ~PackageWriter() {
    if (!finished_ && !tmp_path_.empty()) {
      (void)file_.Close();
      (void)platform::RemoveFile(tmp_path_);
    }
  }
  PackageWriter(const PackageWriter&) = delete;
  PackageWriter& operator=(const PackageWriter&) = delete;

  static Result<std::unique_ptr<PackageWriter>> Create(const std::string& out_path) {
    std::unique_ptr<PackageWriter> w(new PackageWriter);
    w->out_path_ = out_path;
    std::random_device rd;
    std::string tmp = fmt::format("{}.tmp-{}-{:08x}{:08x}", out_path, ::getpid(), rd(), rd());
    auto file = platform::File::Open(tmp, O_CREAT | O_EXCL | O_WRONLY, 0600);
    if (!file.ok()) return Wrap(file.status());
    w->tmp_path_ = tmp;
    w->file_ = std::move(file).value();
    struct stat st;
    if (::fstat(w->file_.fd(), &st) == 0) {
      w->tmp_dev_ = st.st_dev;
      w->tmp_ino_ = st.st_ino;
    }
    w->cctx_.reset(ZSTD_createCCtx());
    if (!w->cctx_) return InternalError("zstd: cannot allocate a compression context");
    size_t rc = ZSTD_CCtx_setParameter(w->cctx_.get(), ZSTD_c_compressionLevel, 3);
    if (!ZSTD_isError(rc)) rc = ZSTD_CCtx_setParameter(w->cctx_.get(), ZSTD_c_checksumFlag, 1);
    if (ZSTD_isError(rc)) {
      return InternalError(std::string("zstd: ") + ZSTD_getErrorName(rc));
    }
    w->out_buf_.resize(ZSTD_CStreamOutSize());
    return w;
  }

  // Whether (dev, ino) is the temporary file (a package written into a log directory).
  bool IsOwnFile(dev_t dev, ino_t ino) const { return dev == tmp_dev_ && ino == tmp_ino_; }

  Status Add(const std::string& path, std::string_view data, int64_t mtime) {
    uint8_t header[kBlock];
    FS_RETURN_IF_ERROR(MakeHeader(path, data.size(), mtime, header));
    FS_RETURN_IF_ERROR(Write({reinterpret_cast<const char*>(header), kBlock}));
    FS_RETURN_IF_ERROR(Write(data));
    static const char kZeros[kBlock] = {};
    size_t pad = (kBlock - data.size() % kBlock) % kBlock;
    return Write({kZeros, pad});
  }

  Status Finish() {
    static const char kZeros[kBlock] = {};
    FS_RETURN_IF_ERROR(Write({kZeros, kBlock}));
    FS_RETURN_IF_ERROR(Write({kZeros, kBlock}));
    while (tar_bytes_ % kRecord != 0) FS_RETURN_IF_ERROR(Write({kZeros, kBlock}));
    FS_RETURN_IF_ERROR(Compress({}, ZSTD_e_end));
    FS_RETURN_IF_ERROR(Wrap(file_.Sync()));
    FS_RETURN_IF_ERROR(Wrap(file_.Close()));
    if (::rename(tmp_path_.c_str(), out_path_.c_str()) != 0) {
      return Wrap(ErrnoStatus(errno, "rename " + tmp_path_ + " to " + out_path_));
    }
    finished_ = true;
    return Wrap(platform::SyncDir(platform::DirName(out_path_)));
  }

 private:
  PackageWriter() : cctx_(nullptr, ZSTD_freeCCtx) {}

  static Status Wrap(const Status& s) {
    if (s.ok()) return s;
    return InternalError("support package: " + s.ToString());
  }

  Status Write(std::string_view data) {
    tar_bytes_ += data.size();
    return Compress(data, ZSTD_e_continue);
  }

  Status Compress(std::string_view data, ZSTD_EndDirective mode) {
    ZSTD_inBuffer in{data.data(), data.size(), 0};
    while (true) {
      ZSTD_outBuffer out{out_buf_.data(), out_buf_.size(), 0};
      size_t rc = ZSTD_compressStream2(cctx_.get(), &out, &in, mode);
      if (ZSTD_isError(rc)) return InternalError(std::string("zstd: ") + ZSTD_getErrorName(rc));
      if (out.pos > 0) {
        FS_RETURN_IF_ERROR(
            Wrap(file_.PWrite(file_bytes_, std::span<const uint8_t>(out_buf_.data(), out.pos))));
        file_bytes_ += out.pos;
      }
      bool done = mode == ZSTD_e_end ? rc == 0 : in.pos == in.size;
      if (done) return Status::Ok();
    }
  }

  std::string out_path_;
  std::string tmp_path_;
  platform::File file_;
  dev_t tmp_dev_ = 0;
  ino_t tmp_ino_ = 0;
  std::unique_ptr<ZSTD_CCtx, decltype(&ZSTD_freeCCtx)> cctx_;
  std::vector<uint8_t> out_buf_;
  uint64_t tar_bytes_ = 0;
  uint64_t file_bytes_ = 0;
  bool finished_ = false;
};

// The last path component of `dir`, made short and safe as a folder name in the archive.
std::string DirLabel(std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::string base = dir.substr(dir.rfind('/') + 1);
  if (base.empty() || base == "." || base == "..") base = "logs";
  if (base.size() > 40) base.resize(40);
  return base;
}

// Cuts `name` to at most `max` bytes without splitting a UTF-8 sequence.
std::string CutName(std::string name, size_t max) {
  if (name.size() <= max) return name;
  size_t n = max;
  while (n > 0 && (static_cast<uint8_t>(name[n]) & 0xC0) == 0x80) --n;
  name.resize(n);
  return name;
}

// Reads the newest `max_bytes` of the regular file `path`, starting after the first line break
// when it had to cut (so that no secret is cut in half and escapes redaction). NotFound when
// the file vanished or is not a regular file (skipped by the caller).
Result<std::string> ReadLogTail(const std::string& path, uint64_t max_bytes,
                                const PackageWriter& writer) {
  struct stat st;
  if (::lstat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "stat " + path);
  if (!S_ISREG(st.st_mode)) return NotFoundError(path + " is not a regular file");
  auto file = platform::File::Open(path, O_RDONLY | O_NOFOLLOW | O_NONBLOCK);
  if (!file.ok()) return file.status();
  if (::fstat(file->fd(), &st) != 0) return ErrnoStatus(errno, "stat " + path);
  if (!S_ISREG(st.st_mode) || writer.IsOwnFile(st.st_dev, st.st_ino)) {
    return NotFoundError(path);
  }
  uint64_t size = static_cast<uint64_t>(st.st_size);
  uint64_t start = size > max_bytes ? size - max_bytes : 0;
  std::string data(size - start, '\0');
  FS_ASSIGN_OR_RETURN(
      size_t n,
      file->PRead(start, std::span<uint8_t>(reinterpret_cast<uint8_t*>(data.data()), data.size())));
  data.resize(n);  // the file shrank meanwhile
  if (start > 0) {
    size_t nl = data.find('\n');
    if (nl != std::string::npos) data.erase(0, nl + 1);
  }
  return data;
}

}  // namespace

std::string Redact(std::string_view text, const std::vector<std::string>& secrets) {
  return RedactKeyValues(RedactPrivateKeyBlocks(RedactLiterals(text, secrets)));
}

Status WriteSupportPackage(const SupportPackageInput& in, const std::string& out_path,
                           const std::function<bool()>& cancelled) {
  auto is_cancelled = [&] { return cancelled && cancelled(); };
  const Status cancelled_status = FailedPreconditionError("support package cancelled");
  const std::string root =
      "fieldstack-support-" + FormatUtc(in.now_unix * 1'000'000'000LL, "%Y%m%dT%H%M%SZ");
  FS_ASSIGN_OR_RETURN(std::unique_ptr<PackageWriter> writer, PackageWriter::Create(out_path));

  const std::pair<const char*, const std::string*> kTop[] = {
      {"versions.json", &in.versions_json},
      {"diagnostics.json", &in.diagnostics_json},
      {"metrics.txt", &in.metrics_text},
      {"config.toml", &in.config_text}};
  for (const auto& [name, text] : kTop) {
    if (is_cancelled()) return cancelled_status;
    FS_RETURN_IF_ERROR(writer->Add(root + "/" + name, Redact(*text, in.secrets), in.now_unix));
  }

  std::set<std::string> labels;
  for (size_t d = 0; d < in.log_dirs.size(); ++d) {
    const std::string& dir = in.log_dirs[d];
    auto names = platform::ListDir(dir);
    if (!names.ok()) {
      if (names.status().code() == StatusCode::kNotFound) continue;
      return InternalError("support package: " + names.status().ToString());
    }
    std::sort(names->begin(), names->end());
    std::string label = Redact(DirLabel(dir), in.secrets);
    if (!labels.insert(label).second) {
      label += "-" + std::to_string(d + 1);
      labels.insert(label);
    }
    std::set<std::string> used;
    for (const std::string& name : *names) {
      if (is_cancelled()) return cancelled_status;
      auto data = ReadLogTail(dir + "/" + name, in.max_log_bytes, *writer);
      if (!data.ok()) {
        if (data.status().code() == StatusCode::kNotFound) continue;
        return InternalError("support package: " + data.status().ToString());
      }
      // A ustar name field holds 100 bytes; longer names are cut and kept unique.
      std::string member = CutName(Redact(name, in.secrets), kNameLen);
      if (member != name || used.count(member)) {
        std::string base = CutName(member, kNameLen - 8);
        for (int i = 1; used.count(member); ++i) member = base + "~" + std::to_string(i);
      }
      used.insert(member);
      FS_RETURN_IF_ERROR(writer->Add(root + "/logs/" + label + "/" + member,
                                     Redact(*data, in.secrets), in.now_unix));
    }
  }
  if (is_cancelled()) return cancelled_status;
  return writer->Finish();
}

Result<std::map<std::string, std::string>> ReadSupportPackage(const std::string& path) {
  FS_ASSIGN_OR_RETURN(std::string packed, platform::ReadFileToString(path));
  std::unique_ptr<ZSTD_DCtx, decltype(&ZSTD_freeDCtx)> dctx(ZSTD_createDCtx(), ZSTD_freeDCtx);
  if (!dctx) return InternalError("zstd: cannot allocate a decompression context");
  std::string tar;
  std::vector<char> buf(ZSTD_DStreamOutSize());
  ZSTD_inBuffer in{packed.data(), packed.size(), 0};
  ZSTD_outBuffer out{};
  size_t rc = 0;
  do {
    out = {buf.data(), buf.size(), 0};
    rc = ZSTD_decompressStream(dctx.get(), &out, &in);
    if (ZSTD_isError(rc)) {
      return CorruptionError(path + ": zstd: " + ZSTD_getErrorName(rc));
    }
    tar.append(buf.data(), out.pos);
    if (tar.size() > kMaxUnpackedBytes) return CorruptionError(path + ": unpacks past 4 GiB");
  } while (in.pos < in.size || out.pos == out.size);
  if (rc != 0 || packed.empty()) return CorruptionError(path + ": zstd: truncated");
  auto files = ParseTar(tar);
  if (!files.ok()) return CorruptionError(path + ": " + files.status().message());
  return files;
}

}  // namespace fieldstack::management
