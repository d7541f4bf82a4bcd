#include "store/names.h"

#include "store/types.h"

namespace fieldstack::store {
namespace {

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = s[i];
    size_t n;
    uint32_t cp;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      n = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + n >= s.size()) return false;  // truncated sequence
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = s[i + k];
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    // Overlong forms, surrogates and values past U+10FFFF are not UTF-8.
    if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000) ||
        (cp >= 0xD800 && cp <= 0xDFFF) || cp > 0x10FFFF) {
      return false;
    }
    i += n + 1;
  }
  return true;
}

}  // namespace

Status ValidateName(std::string_view name) {
  if (name.empty()) return InvalidArgumentError("empty name");
  if (name.size() > kMaxNameBytes) {
    return InvalidArgumentError("name is " + std::to_string(name.size()) +
                                " bytes; at most 255 are allowed");
  }
  if (name == "." || name == "..") {
    return InvalidArgumentError("'" + std::string(name) + "' is not allowed as a name");
  }
  if (name.find('/') != std::string_view::npos) return InvalidArgumentError("name contains '/'");
  if (name.find('\0') != std::string_view::npos) return InvalidArgumentError("name contains NUL");
  if (!ValidUtf8(name)) return InvalidArgumentError("name is not valid UTF-8");
  return Status::Ok();
}

Result<std::vector<std::string>> SplitPath(std::string_view path) {
  if (path.size() > kMaxPathBytes) {
    return InvalidArgumentError("path is " + std::to_string(path.size()) +
                                " bytes; at most 1024 are allowed");
  }
  std::vector<std::string> parts;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    if (slash == std::string_view::npos) slash = path.size();
    std::string_view part = path.substr(pos, slash - pos);
    if (!part.empty()) {
      FS_RETURN_IF_ERROR(ValidateName(part).WithContext("path '" + std::string(path) + "'"));
      parts.emplace_back(part);
    }
    pos = slash + 1;
  }
  return parts;
}

}  // namespace fieldstack::store
