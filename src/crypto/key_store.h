#pragma once

// Master keys and per-file key wrapping (encryption at rest, docs/design/store-format.md).
//
// Every file has its own random 256-bit data key. The Store keeps it wrapped (AES-256-GCM)
// under the box's master key; the master key never touches the metadata db. The master key comes
// from a key file (mode 0600, made on first start) or is derived from a passphrase with scrypt.
// Rotation makes a new master key (a new id) and re-wraps every file key; data is not rewritten.
//
// Thread safety: free functions; MasterKey is a value.

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "crypto/chunk_codec.h"

namespace fieldstack::crypto {

struct MasterKey {
  uint32_t id = 0;  // increases by one on each rotation
  Key key{};
};

// Reads the key file at `path`, or creates one (id 1, random key, mode 0600) when it does not
// exist. Errors: PermissionDenied when the file is readable by group or others;
// InvalidArgument when it is malformed.
Result<MasterKey> LoadOrCreateKeyFile(const std::string& path);
// Reads an existing key file (NotFound when absent).
Result<MasterKey> LoadKeyFile(const std::string& path);
// Writes `key` to `path` atomically and durably, mode 0600.
Status WriteKeyFile(const std::string& path, const MasterKey& key);

// Derives a master key from a passphrase and a random salt (scrypt, N=2^15, r=8, p=1).
Result<MasterKey> DeriveFromPassphrase(std::string_view passphrase, std::string_view salt,
                                       uint32_t id);

Result<MasterKey> NewRandomMasterKey(uint32_t id);

// Wraps a file key under the master key; `context` (the file id) is bound as associated data.
Result<std::string> WrapKey(const MasterKey& master, const Key& file_key, uint64_t context);
// Unwraps; Unauthenticated when the master key is not the one that wrapped it.
Result<Key> UnwrapKey(const MasterKey& master, std::string_view wrapped, uint64_t context);

std::string ToHex(std::string_view bytes);

}  // namespace fieldstack::crypto
