#pragma once

// ChunkCodec seals and opens one data chunk of a file. Two mechanisms share one on-disk slot
// format (docs/design/store-format.md): AES-256-GCM under a per-file key (encryption at rest,
// the default), or plaintext with an XXH3-128 checksum (encryption turned off for the box).
// Both detect a torn or tampered chunk: Open returns Corruption and never the bad bytes.
//
// The associated data binds a chunk to its file, index, generation and length, so a chunk
// copied to another place or replayed from an older generation does not open.
//
// Thread safety: Seal and Open may be called concurrently.

#include <array>
#include <cstdint>
#include <memory>
#include <span>

#include "common/status.h"

namespace fieldstack::crypto {

inline constexpr size_t kNonceBytes = 12;
inline constexpr size_t kTagBytes = 16;
inline constexpr size_t kKeyBytes = 32;
using Nonce = std::array<uint8_t, kNonceBytes>;
using Tag = std::array<uint8_t, kTagBytes>;
using Key = std::array<uint8_t, kKeyBytes>;

struct ChunkAad {
  uint64_t file_id;
  uint64_t chunk_index;
  uint64_t generation;
  uint32_t length;
};

class ChunkCodec {
 public:
  virtual ~ChunkCodec() = default;
  // Encodes `plain` into `out` (same size) and sets `nonce` (fresh per call) and `tag`.
  // REQUIRES: out.size() == plain.size().
  virtual Status Seal(const ChunkAad& aad, std::span<const uint8_t> plain, std::span<uint8_t> out,
                      Nonce& nonce, Tag& tag) const = 0;
  // Decodes `sealed` into `out` (same size). Corruption if the tag does not verify.
  virtual Status Open(const ChunkAad& aad, std::span<const uint8_t> sealed, const Nonce& nonce,
                      const Tag& tag, std::span<uint8_t> out) const = 0;
};

// AES-256-GCM with a random 96-bit nonce per Seal: a key is never used twice with one nonce
// except with probability ~2^-96 per pair.
std::unique_ptr<ChunkCodec> NewAesGcmCodec(const Key& key);
// No confidentiality; integrity only (torn or flipped bytes give Corruption).
std::unique_ptr<ChunkCodec> NewChecksumCodec();

// Fills `out` from OpenSSL's CSPRNG.
Status RandomBytes(std::span<uint8_t> out);

}  // namespace fieldstack::crypto
