#include "crypto/chunk_codec.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <xxhash.h>

#include <cstring>

namespace fieldstack::crypto {
namespace {

std::array<uint8_t, 28> EncodeAad(const ChunkAad& aad) {
  std::array<uint8_t, 28> out{};
  auto put = [&out](size_t at, uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out[at + i] = static_cast<uint8_t>(v >> (8 * i));
  };
  put(0, aad.file_id, 8);
  put(8, aad.chunk_index, 8);
  put(16, aad.generation, 8);
  put(24, aad.length, 4);
  return out;
}

struct CtxDeleter {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};
using CtxPtr = std::unique_ptr<EVP_CIPHER_CTX, CtxDeleter>;

class AesGcmCodec final : public ChunkCodec {
 public:
  explicit AesGcmCodec(const Key& key) : key_(key) {}
  ~AesGcmCodec() override { OPENSSL_cleanse(key_.data(), key_.size()); }

  Status Seal(const ChunkAad& aad, std::span<const uint8_t> plain, std::span<uint8_t> out,
              Nonce& nonce, Tag& tag) const override {
    FS_RETURN_IF_ERROR(RandomBytes(nonce));
    CtxPtr ctx(EVP_CIPHER_CTX_new());
    auto a = EncodeAad(aad);
    int len = 0;
    if (!ctx ||
        EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce.data()) != 1 ||
        EVP_EncryptUpdate(ctx.get(), nullptr, &len, a.data(), a.size()) != 1 ||
        EVP_EncryptUpdate(ctx.get(), out.data(), &len, plain.data(),
                          static_cast<int>(plain.size())) != 1 ||
        EVP_EncryptFinal_ex(ctx.get(), out.data() + len, &len) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagBytes, tag.data()) != 1) {
      return InternalError("AES-GCM encryption failed");
    }
    return Status::Ok();
  }

  Status Open(const ChunkAad& aad, std::span<const uint8_t> sealed, const Nonce& nonce,
              const Tag& tag, std::span<uint8_t> out) const override {
    CtxPtr ctx(EVP_CIPHER_CTX_new());
    auto a = EncodeAad(aad);
    Tag t = tag;
    int len = 0;
    if (!ctx ||
        EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce.data()) != 1 ||
        EVP_DecryptUpdate(ctx.get(), nullptr, &len, a.data(), a.size()) != 1 ||
        EVP_DecryptUpdate(ctx.get(), out.data(), &len, sealed.data(),
                          static_cast<int>(sealed.size())) != 1 ||
        EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagBytes, t.data()) != 1) {
      return InternalError("AES-GCM decryption setup failed");
    }
    if (EVP_DecryptFinal_ex(ctx.get(), out.data() + len, &len) != 1) {
      std::memset(out.data(), 0, out.size());  // never hand out unauthenticated bytes
      return CorruptionError("chunk failed authentication");
    }
    return Status::Ok();
  }

 private:
  Key key_;
};

class ChecksumCodec final : public ChunkCodec {
 public:
  Status Seal(const ChunkAad& aad, std::span<const uint8_t> plain, std::span<uint8_t> out,
              Nonce& nonce, Tag& tag) const override {
    nonce.fill(0);
    if (out.data() != plain.data()) std::memcpy(out.data(), plain.data(), plain.size());
    tag = Checksum(aad, plain);
    return Status::Ok();
  }

  Status Open(const ChunkAad& aad, std::span<const uint8_t> sealed, const Nonce&, const Tag& tag,
              std::span<uint8_t> out) const override {
    if (Checksum(aad, sealed) != tag) {
      std::memset(out.data(), 0, out.size());
      return CorruptionError("chunk checksum mismatch");
    }
    if (out.data() != sealed.data()) std::memcpy(out.data(), sealed.data(), sealed.size());
    return Status::Ok();
  }

 private:
  static Tag Checksum(const ChunkAad& aad, std::span<const uint8_t> data) {
    auto a = EncodeAad(aad);
    XXH3_state_t* st = XXH3_createState();
    XXH3_128bits_reset(st);
    XXH3_128bits_update(st, a.data(), a.size());
    XXH3_128bits_update(st, data.data(), data.size());
    XXH128_hash_t h = XXH3_128bits_digest(st);
    XXH3_freeState(st);
    XXH128_canonical_t c;
    XXH128_canonicalFromHash(&c, h);
    Tag t;
    std::memcpy(t.data(), c.digest, t.size());
    return t;
  }
};

}  // namespace

std::unique_ptr<ChunkCodec> NewAesGcmCodec(const Key& key) {
  return std::make_unique<AesGcmCodec>(key);
}
std::unique_ptr<ChunkCodec> NewChecksumCodec() { return std::make_unique<ChecksumCodec>(); }

Status RandomBytes(std::span<uint8_t> out) {
  if (RAND_bytes(out.data(), static_cast<int>(out.size())) != 1) {
    return InternalError("RAND_bytes failed");
  }
  return Status::Ok();
}

}  // namespace fieldstack::crypto
