#include "crypto/key_store.h"

#include <fcntl.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <sys/stat.h>

#include <cstring>

#include "platform/file.h"

namespace fieldstack::crypto {
namespace {

constexpr std::string_view kKeyFileHeader = "fieldstack-master-key v1";

Result<Key> ParseHexKey(std::string_view hex) {
  if (hex.size() != 2 * kKeyBytes) return InvalidArgumentError("key must be 64 hex digits");
  Key key;
  for (size_t i = 0; i < kKeyBytes; ++i) {
    auto nib = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      if (c >= 'A' && c <= 'F') return c - 'A' + 10;
      return -1;
    };
    int hi = nib(hex[2 * i]), lo = nib(hex[2 * i + 1]);
    if (hi < 0 || lo < 0) return InvalidArgumentError("key has a non-hex digit");
    key[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return key;
}

}  // namespace

std::string ToHex(std::string_view bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  out.reserve(bytes.size() * 2);
  for (unsigned char c : bytes) {
    out.push_back(kDigits[c >> 4]);
    out.push_back(kDigits[c & 15]);
  }
  return out;
}

Result<MasterKey> LoadKeyFile(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, "key file " + path);
  if ((st.st_mode & 077) != 0) {
    return PermissionDeniedError("key file " + path +
                                 " is readable by group or others; chmod 600 it");
  }
  FS_ASSIGN_OR_RETURN(std::string text, platform::ReadFileToString(path));
  // Format: header line, "id N", "key HEX".
  MasterKey mk;
  bool have_id = false, have_key = false, have_header = false;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    if (nl == std::string::npos) nl = text.size();
    std::string_view line(text.data() + pos, nl - pos);
    pos = nl + 1;
    if (line.empty()) continue;
    if (line == kKeyFileHeader) {
      have_header = true;
    } else if (line.starts_with("id ")) {
      try {
        mk.id = static_cast<uint32_t>(std::stoul(std::string(line.substr(3))));
        have_id = mk.id > 0;
      } catch (...) {
        have_id = false;
      }
    } else if (line.starts_with("key ")) {
      auto k = ParseHexKey(line.substr(4));
      if (!k.ok()) return k.status().WithContext("key file " + path + " is malformed");
      mk.key = *k;
      have_key = true;
    }
  }
  if (!have_header || !have_id || !have_key) {
    return InvalidArgumentError("key file " + path +
                                " is malformed (expected header, 'id N' and 'key HEX')");
  }
  return mk;
}

Status WriteKeyFile(const std::string& path, const MasterKey& key) {
  std::string text(kKeyFileHeader);
  text += "\nid " + std::to_string(key.id) + "\nkey " +
          ToHex({reinterpret_cast<const char*>(key.key.data()), key.key.size()}) + "\n";
  Status s = platform::WriteFileAtomic(path, text, 0600);
  OPENSSL_cleanse(text.data(), text.size());
  return s;
}

Result<MasterKey> NewRandomMasterKey(uint32_t id) {
  MasterKey mk;
  mk.id = id;
  FS_RETURN_IF_ERROR(RandomBytes(mk.key));
  return mk;
}

Result<MasterKey> LoadOrCreateKeyFile(const std::string& path) {
  if (platform::PathExists(path)) return LoadKeyFile(path);
  FS_ASSIGN_OR_RETURN(MasterKey mk, NewRandomMasterKey(1));
  FS_RETURN_IF_ERROR(WriteKeyFile(path, mk));
  return mk;
}

Result<MasterKey> DeriveFromPassphrase(std::string_view passphrase, std::string_view salt,
                                       uint32_t id) {
  if (passphrase.size() < 8) return InvalidArgumentError("passphrase must be 8 or more bytes");
  MasterKey mk;
  mk.id = id;
  if (EVP_PBE_scrypt(passphrase.data(), passphrase.size(),
                     reinterpret_cast<const unsigned char*>(salt.data()), salt.size(), 1 << 15, 8,
                     1, 64ull << 20, mk.key.data(), mk.key.size()) != 1) {
    return InternalError("scrypt failed");
  }
  return mk;
}

Result<std::string> WrapKey(const MasterKey& master, const Key& file_key, uint64_t context) {
  auto codec = NewAesGcmCodec(master.key);
  Nonce nonce;
  Tag tag;
  Key sealed;
  FS_RETURN_IF_ERROR(codec->Seal({context, 0, master.id, kKeyBytes}, file_key, sealed, nonce, tag));
  std::string out;
  out.append(reinterpret_cast<const char*>(nonce.data()), nonce.size());
  out.append(reinterpret_cast<const char*>(sealed.data()), sealed.size());
  out.append(reinterpret_cast<const char*>(tag.data()), tag.size());
  return out;
}

Result<Key> UnwrapKey(const MasterKey& master, std::string_view wrapped, uint64_t context) {
  if (wrapped.size() != kNonceBytes + kKeyBytes + kTagBytes) {
    return CorruptionError("wrapped key has the wrong size");
  }
  Nonce nonce;
  Tag tag;
  Key sealed, out;
  std::memcpy(nonce.data(), wrapped.data(), kNonceBytes);
  std::memcpy(sealed.data(), wrapped.data() + kNonceBytes, kKeyBytes);
  std::memcpy(tag.data(), wrapped.data() + kNonceBytes + kKeyBytes, kTagBytes);
  auto codec = NewAesGcmCodec(master.key);
  Status s = codec->Open({context, 0, master.id, kKeyBytes}, sealed, nonce, tag, out);
  if (!s.ok()) return UnauthenticatedError("master key does not unwrap this key");
  return out;
}

}  // namespace fieldstack::crypto
