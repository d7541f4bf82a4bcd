#pragma once

// The metadata a file carries into the cloud with its object, and back into a share when a
// refresh brings the object in as a stub: times, owner, mode and extended attributes. Samba
// keeps a file's DOS attributes ("user.DOSATTRIB") and its Windows ACL ("security.NTACL") in
// xattrs, so an evicted or refreshed file keeps them only if they travel with the object.
//
// Object metadata (names as cloud::ObjectMeta requires; all values ASCII):
//   mtime_ns, mode, uid, gid     decimal, as the uploader always sent them (mode: 07777 bits)
//   fieldstack_xattrs            base64 of the xattrs, each as
//                                  varint(name length) name varint(value length) value
//                                (varint: unsigned LEB128), in the order given
//   fieldstack_xattrs_partial    "1" when some xattrs did not fit the budget
// The budget counts the bytes of every name and value (as S3 counts its 2 KiB of user
// metadata); mtime_ns, mode, uid and gid always go, xattrs only as far as they fit, dropping
// the largest first. Names starting with "fieldstack." or "user.fieldstack." are the box's own
// (staging state of the object front ends, the read-only cache state) and never go up; they
// are also ignored when read back, so a cloud object cannot plant them in a share.
//
// Thread safety: free functions without state.

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "cloud/object_store.h"
#include "store/types.h"

namespace fieldstack::sync {

inline constexpr char kXattrsMetaKey[] = "fieldstack_xattrs";
inline constexpr char kXattrsPartialMetaKey[] = "fieldstack_xattrs_partial";

struct FileMeta {
  std::optional<int64_t> mtime_ns;
  std::optional<uint32_t> mode, uid, gid;
  std::vector<std::pair<std::string, std::string>> xattrs;
  bool xattrs_complete = true;  // false: some did not fit the metadata budget at upload
};

// Whether xattr `name` is internal to the box (never uploaded, never taken from the cloud).
bool IsInternalXattr(std::string_view name);

// Object metadata of a file: "mtime_ns", "mode", "uid", "gid" (decimal, as the uploader sends
// today) and its xattrs in "fieldstack_xattrs" (base64 of length-prefixed name/value pairs),
// within budget_bytes of metadata in all (names + values); xattrs that do not fit are left
// out, largest first, and "fieldstack_xattrs_partial" = "1" says so. Names starting with
// "fieldstack." (internal to the box) are never sent.
cloud::ObjectMeta EncodeFileMeta(const store::Attr& attr,
                                 const std::vector<std::pair<std::string, std::string>>& xattrs,
                                 size_t budget_bytes);
// Reads it back; malformed values are ignored (absent in FileMeta), never an error. A malformed
// "fieldstack_xattrs" gives no xattrs and xattrs_complete = false.
FileMeta DecodeFileMeta(const cloud::ObjectMeta& meta);

}  // namespace fieldstack::sync
