#include "cloud/object_store.h"

#include "crypto/hash.h"
#include "crypto/key_store.h"

namespace fieldstack::cloud {

Status ValidateKey(std::string_view key) {
  if (key.empty()) return InvalidArgumentError("empty object key");
  if (key.size() > kMaxKeyBytes) {
    return InvalidArgumentError("object key is " + std::to_string(key.size()) +
                                " bytes; at most 1024 are allowed");
  }
  if (key.front() == '/') return InvalidArgumentError("object key starts with '/'");
  size_t pos = 0;
  while (pos <= key.size()) {
    size_t slash = key.find('/', pos);
    if (slash == std::string_view::npos) slash = key.size();
    std::string_view part = key.substr(pos, slash - pos);
    if (part.empty() || part == "." || part == "..") {
      return InvalidArgumentError("object key '" + std::string(key) +
                                  "' has an empty, '.' or '..' component");
    }
    pos = slash + 1;
  }
  if (key.find('\0') != std::string_view::npos) return InvalidArgumentError("key contains NUL");
  return Status::Ok();
}

Status ValidatePartNumber(uint32_t number) {
  if (number < 1 || number > kMaxParts) {
    return InvalidArgumentError("part number " + std::to_string(number) + " is outside 1-10000");
  }
  return Status::Ok();
}

Status ValidatePartList(const std::vector<uint32_t>& parts) {
  uint32_t last = 0;
  for (uint32_t n : parts) {
    FS_RETURN_IF_ERROR(ValidatePartNumber(n));
    if (n <= last) return InvalidArgumentError("parts must be ascending");
    last = n;
  }
  return Status::Ok();
}

std::string Md5Hex(std::span<const uint8_t> data) {
  crypto::Digest d(crypto::Digest::Kind::kMd5);
  d.Update(data);
  return crypto::ToHex(d.Final());
}

}  // namespace fieldstack::cloud
