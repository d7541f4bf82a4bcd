#pragma once

// Content hashes used on the wire to clouds: MD5 (Content-MD5 of Azure and S3), SHA-256
// (SigV4 payload hashes) and CRC-64/NVME (Azure's x-ms-content-crc64). Streaming: Update any
// number of times, then Final.
//
// Thread safety: one object per thread; the classes are cheap to create.

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>

namespace fieldstack::crypto {

// CRC-64/NVME: poly 0xAD93D23594C93659 (reflected), init and xorout all ones. The CRC Azure
// Storage calls CRC64. check("123456789") = 0xAE8B14860A799888.
class Crc64Nvme {
 public:
  void Update(std::span<const uint8_t> data);
  uint64_t Final() const { return ~state_; }
  static uint64_t Of(std::span<const uint8_t> data);
  // The 8 little-endian bytes Azure sends base64-encoded in x-ms-content-crc64.
  static std::array<uint8_t, 8> ToWire(uint64_t crc);

 private:
  uint64_t state_ = ~uint64_t{0};
};

// MD5 or SHA-256 over OpenSSL's EVP interface.
class Digest {
 public:
  enum class Kind { kMd5, kSha256, kSha1 };
  explicit Digest(Kind kind);
  ~Digest();
  Digest(const Digest&) = delete;
  Digest& operator=(const Digest&) = delete;

  void Update(std::span<const uint8_t> data);
  void Update(std::string_view data) {
    Update({reinterpret_cast<const uint8_t*>(data.data()), data.size()});
  }
  // The raw digest (16 or 32 bytes). The object may not be updated afterwards.
  std::string Final();

  static std::string Md5(std::string_view data);
  static std::string Sha256(std::string_view data);

 private:
  struct Ctx;
  std::unique_ptr<Ctx> ctx_;
};

// A whole-object checksum as S3 clients send it (x-amz-checksum-<name>): crc32, crc32c,
// crc64nvme, sha1 or sha256. Final gives the raw bytes (CRCs big-endian), which go on the wire
// base64-encoded.
class Checksum {
 public:
  virtual ~Checksum() = default;
  // nullptr for an unknown name (lower case).
  static std::unique_ptr<Checksum> Make(std::string_view name);
  virtual void Update(std::span<const uint8_t> data) = 0;
  virtual std::string Final() = 0;
};

// CRC-32C (Castagnoli), hardware-accelerated where the CPU has SSE 4.2.
uint32_t Crc32c(uint32_t crc, std::span<const uint8_t> data);

std::string Base64(std::string_view raw);
// The decoded bytes, or empty when `in` is not base64.
std::string Base64Decode(std::string_view in);
// Raw HMAC-SHA256 (SigV4 and Azure Shared Key signatures).
std::string HmacSha256(std::string_view key, std::string_view msg);

}  // namespace fieldstack::crypto
