#include "frontends/fuse/errno_map.h"

#include <cerrno>
#include <string_view>

namespace fieldstack::frontends::fuse {
namespace {

bool Has(const Status& s, std::string_view what) {
  return s.message().find(what) != std::string::npos;
}

}  // namespace

int ToErrno(const Status& s) {
  switch (s.code()) {
    case StatusCode::kOk:
      return 0;
    case StatusCode::kNotFound:
      return Has(s, "no xattr") ? ENODATA : ENOENT;
    case StatusCode::kAlreadyExists:
      return EEXIST;
    case StatusCode::kInvalidArgument:
      // The Store's messages name the POSIX case (store.cc, names.cc).
      if (Has(s, "is a directory")) return EISDIR;
      if (Has(s, "is not a directory") || Has(s, "not a directory")) return ENOTDIR;
      if (Has(s, "across shares")) return EXDEV;
      if (Has(s, "bytes; at most") || Has(s, "too long")) return ENAMETOOLONG;
      if (Has(s, "5 TiB")) return EFBIG;
      if (Has(s, "read-only")) return EBADF;
      return EINVAL;
    case StatusCode::kFailedPrecondition:
      if (Has(s, "not empty")) return ENOTEMPTY;
      if (Has(s, "into itself")) return EINVAL;
      return EBUSY;
    case StatusCode::kNoSpace:
    case StatusCode::kResourceExhausted:
      return ENOSPC;
    case StatusCode::kPermissionDenied:
      return EPERM;
    case StatusCode::kUnauthenticated:
      return EACCES;
    case StatusCode::kCorruption:
      return EIO;  // never hand out bytes that failed verification
    case StatusCode::kUnavailable:
      // A recall that cannot reach the cloud: an I/O error, never short or wrong data.
      if (Has(s, "recall") || Has(s, "in the cloud only")) return EIO;
      return EAGAIN;
    case StatusCode::kInternal:
      return EIO;
  }
  return EIO;
}

}  // namespace fieldstack::frontends::fuse
