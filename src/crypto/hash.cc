#include "crypto/hash.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <zlib.h>

#include <array>
#include <cctype>
#include <cstring>

namespace fieldstack::crypto {
namespace {

constexpr uint64_t kPolyReflected = 0x9A6C9329AC4BC9B5ull;  // 0xAD93D23594C93659 reversed

// Slicing-by-8 tables: table[k][b] is the CRC of byte b followed by k zero bytes.
struct Tables {
  uint64_t t[8][256];
  Tables() {
    for (int b = 0; b < 256; ++b) {
      uint64_t crc = static_cast<uint64_t>(b);
      for (int i = 0; i < 8; ++i) crc = (crc & 1) ? (crc >> 1) ^ kPolyReflected : crc >> 1;
      t[0][b] = crc;
    }
    for (int k = 1; k < 8; ++k) {
      for (int b = 0; b < 256; ++b) t[k][b] = (t[k - 1][b] >> 8) ^ t[0][t[k - 1][b] & 0xff];
    }
  }
};

const Tables& CrcTables() {
  static const Tables tables;
  return tables;
}

}  // namespace

void Crc64Nvme::Update(std::span<const uint8_t> data) {
  const auto& t = CrcTables().t;
  uint64_t crc = state_;
  const uint8_t* p = data.data();
  size_t n = data.size();
  while (n >= 8) {
    uint64_t v = crc;
    for (int i = 0; i < 8; ++i) v ^= uint64_t{p[i]} << (8 * i);  // little-endian load
    crc = t[7][v & 0xff] ^ t[6][(v >> 8) & 0xff] ^ t[5][(v >> 16) & 0xff] ^ t[4][(v >> 24) & 0xff] ^
          t[3][(v >> 32) & 0xff] ^ t[2][(v >> 40) & 0xff] ^ t[1][(v >> 48) & 0xff] ^ t[0][v >> 56];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) crc = (crc >> 8) ^ t[0][(crc ^ *p++) & 0xff];
  state_ = crc;
}

uint64_t Crc64Nvme::Of(std::span<const uint8_t> data) {
  Crc64Nvme c;
  c.Update(data);
  return c.Final();
}

std::array<uint8_t, 8> Crc64Nvme::ToWire(uint64_t crc) {
  std::array<uint8_t, 8> out;
  for (int i = 0; i < 8; ++i) out[i] = static_cast<uint8_t>(crc >> (8 * i));
  return out;
}

struct Digest::Ctx {
  EVP_MD_CTX* md = EVP_MD_CTX_new();
  ~Ctx() { EVP_MD_CTX_free(md); }
};

Digest::Digest(Kind kind) : ctx_(std::make_unique<Ctx>()) {
  EVP_DigestInit_ex(ctx_->md,
                    kind == Kind::kMd5    ? EVP_md5()
                    : kind == Kind::kSha1 ? EVP_sha1()
                                          : EVP_sha256(),
                    nullptr);
}

Digest::~Digest() = default;

void Digest::Update(std::span<const uint8_t> data) {
  EVP_DigestUpdate(ctx_->md, data.data(), data.size());
}

std::string Digest::Final() {
  unsigned char out[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_->md, out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

std::string Digest::Md5(std::string_view data) {
  Digest d(Kind::kMd5);
  d.Update(data);
  return d.Final();
}

std::string Digest::Sha256(std::string_view data) {
  Digest d(Kind::kSha256);
  d.Update(data);
  return d.Final();
}

std::string Base64(std::string_view raw) {
  std::string out(4 * ((raw.size() + 2) / 3) + 1, '\0');
  int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(raw.data()),
                          static_cast<int>(raw.size()));
  out.resize(static_cast<size_t>(n));
  return out;
}

std::string Base64Decode(std::string_view in) {
  // Strict: whole quads of the standard alphabet, '=' only as the last one or two characters.
  if (in.size() % 4 != 0) return {};
  size_t pad = 0;
  while (pad < in.size() && pad < 2 && in[in.size() - 1 - pad] == '=') ++pad;
  for (size_t i = 0; i < in.size() - pad; ++i) {
    char c = in[i];
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '/') return {};
  }
  std::string out(in.size() * 3 / 4 + 3, '\0');
  int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                          reinterpret_cast<const unsigned char*>(in.data()),
                          static_cast<int>(in.size()));
  if (n < 0 || pad > static_cast<size_t>(n)) return {};
  out.resize(static_cast<size_t>(n) - pad);
  return out;
}

std::string HmacSha256(std::string_view key, std::string_view msg) {
  unsigned char out[32];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(msg.data()), msg.size(), out, &len);
  return std::string(reinterpret_cast<char*>(out), len);
}

namespace {

uint32_t Crc32cSoft(uint32_t crc, std::span<const uint8_t> data) {
  static const auto table = [] {
    std::array<uint32_t, 256> t{};
    for (uint32_t i = 0; i < 256; ++i) {
      uint32_t c = i;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
      t[i] = c;
    }
    return t;
  }();
  for (uint8_t b : data) crc = table[(crc ^ b) & 0xff] ^ (crc >> 8);
  return crc;
}

__attribute__((target("sse4.2"))) uint32_t Crc32cHard(uint32_t crc, std::span<const uint8_t> data) {
  const uint8_t* p = data.data();
  size_t n = data.size();
  uint64_t c = crc;
  while (n >= 8) {
    uint64_t v;
    std::memcpy(&v, p, 8);
    c = __builtin_ia32_crc32di(c, v);
    p += 8;
    n -= 8;
  }
  uint32_t c32 = static_cast<uint32_t>(c);
  while (n-- > 0) c32 = __builtin_ia32_crc32qi(c32, *p++);
  return c32;
}

std::string BigEndian(uint64_t v, int bytes) {
  std::string out(bytes, '\0');
  for (int i = bytes - 1; i >= 0; --i) {
    out[i] = static_cast<char>(v & 0xff);
    v >>= 8;
  }
  return out;
}

class Crc32Sum : public Checksum {
 public:
  void Update(std::span<const uint8_t> d) override { crc_ = crc32_z(crc_, d.data(), d.size()); }
  std::string Final() override { return BigEndian(crc_, 4); }

 private:
  uLong crc_ = crc32_z(0, nullptr, 0);
};

class Crc32cSum : public Checksum {
 public:
  void Update(std::span<const uint8_t> d) override { crc_ = Crc32c(crc_, d); }
  std::string Final() override { return BigEndian(crc_, 4); }

 private:
  uint32_t crc_ = 0;
};

class Crc64Sum : public Checksum {
 public:
  void Update(std::span<const uint8_t> d) override { crc_.Update(d); }
  std::string Final() override { return BigEndian(crc_.Final(), 8); }

 private:
  Crc64Nvme crc_;
};

class DigestSum : public Checksum {
 public:
  explicit DigestSum(Digest::Kind k) : d_(k) {}
  void Update(std::span<const uint8_t> d) override { d_.Update(d); }
  std::string Final() override { return d_.Final(); }

 private:
  Digest d_;
};

}  // namespace

uint32_t Crc32c(uint32_t crc, std::span<const uint8_t> data) {
  static const bool hard = __builtin_cpu_supports("sse4.2");
  crc = ~crc;
  crc = hard ? Crc32cHard(crc, data) : Crc32cSoft(crc, data);
  return ~crc;
}

std::unique_ptr<Checksum> Checksum::Make(std::string_view name) {
  if (name == "crc32") return std::make_unique<Crc32Sum>();
  if (name == "crc32c") return std::make_unique<Crc32cSum>();
  if (name == "crc64nvme") return std::make_unique<Crc64Sum>();
  if (name == "sha1") return std::make_unique<DigestSum>(Digest::Kind::kSha1);
  if (name == "sha256") return std::make_unique<DigestSum>(Digest::Kind::kSha256);
  return nullptr;
}

}  // namespace fieldstack::crypto
