#pragma once

// Objects: the object view of the Store shared by the S3 and Blob APIs (docs/objects.md).
//
// Mapping: a bucket (S3) or storage account (Blob) is a share; an object key is a path in it,
// "/" separating folders ("a/b/c.txt" is file c.txt in folder a/b, made as needed). So what
// one front end writes, every other one sees at once with the same bytes.
//
// Atomicity: an object is written to a staging file in the share's hidden folder
// ".fieldstack-staging" (never listed, never uploaded) and renamed into place only when its
// whole body arrived and verified. A failed or interrupted PUT leaves nothing visible; the
// staging folder's "put" files are removed when the box starts.
//
// Object metadata (content type and other standard headers, user metadata, the ETag and
// checksums of the bytes as written) is kept with the file as the xattr "fieldstack.object"
// (JSON), tagged with the data generation it describes. When the file was changed since
// (over SMB, say), that metadata's ETag no longer applies and a generated one is used.
//
// Thread safety: all methods may be called concurrently.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "common/status.h"
#include "store/store.h"

namespace fieldstack::frontends::objects {

using store::kStagingDir;
inline constexpr char kMetaXattr[] = "fieldstack.object";
inline constexpr size_t kMaxKeyBytes = 1024;

struct ObjectMeta {
  std::string etag;       // unquoted: MD5 hex, or "<hex>-<parts>" for multipart
  uint64_t data_gen = 0;  // the data generation `etag` and `checksums` describe
  std::string content_type;
  std::string content_encoding;
  std::string content_disposition;
  std::string content_language;
  std::string cache_control;
  std::string content_md5;                       // base64, as Blob returns it
  std::map<std::string, std::string> user;       // user metadata, names lower-cased
  std::map<std::string, std::string> checksums;  // "crc32" -> base64 value
  std::map<std::string, std::string> extra;      // front-end specific (e.g. blob tier)

  std::string ToJson() const;
  static ObjectMeta FromJson(std::string_view json);  // empty meta for bad JSON
};

struct ObjectInfo {
  std::string key;
  store::Attr attr;
  ObjectMeta meta;
  // meta.etag when it describes the current data, else one derived from node and generation
  // (with a "-1" suffix, so clients do not take it for an MD5).
  std::string ETag() const;
  bool meta_current() const { return meta.data_gen == attr.data_gen && !meta.etag.empty(); }
};

// A listing entry: an object, or (with a delimiter) a common prefix.
struct ListEntry {
  std::string key;
  bool is_prefix = false;
  ObjectInfo info;  // objects only
};

struct ListResult {
  std::vector<ListEntry> entries;
  bool truncated = false;
  std::string next_marker;  // the last key or prefix returned, when truncated
};

// Pulls body bytes: fills up to out.size() bytes, 0 at the end.
using Source = std::function<Result<size_t>(std::span<uint8_t>)>;
// Called with the raw MD5 and size of the whole body once it is stored, before it becomes
// visible; it may complete the metadata (checksums computed on the way). An error discards it.
using Verify = std::function<Status(const std::string& md5_raw, uint64_t size, ObjectMeta* meta)>;

// How Objects::PutStaged stores.
struct StageOptions {
  bool make_dirs = true;  // false: NotFound when the folder of `rel` does not exist
  // Called with the data's MD5, size and node before it replaces `rel` (verify it, tag it with
  // xattrs); an error discards it and leaves `rel` as it was.
  std::function<Status(const std::string& md5_raw, uint64_t size, store::NodeId node)> verify;
};

class Objects {
 public:
  explicit Objects(store::Store& store);

  // InvalidArgument naming the problem: empty, longer than 1024 bytes, a NUL, an empty, "."
  // or ".." segment, a segment over 255 bytes, or the staging folder.
  static Status ValidKey(std::string_view key);
  // A share by name; NotFound when there is none.
  Result<store::ShareInfo> Bucket(std::string_view name);

  // Stores a new object (replacing a file of the same key) from `body`. `meta.etag` is set to
  // the MD5 unless already set. A key ending in "/" with an empty body makes a folder.
  // FailedPrecondition when a folder stands where the file would go, or a file where a folder
  // of the key would.
  // With `no_replace`, AlreadyExists (and nothing stored) when the key exists by then.
  Result<ObjectInfo> Put(const store::ShareInfo& bucket, std::string_view key, const Source& body,
                         ObjectMeta meta, const Verify& verify = nullptr, bool no_replace = false);
  // NotFound for a missing object (and for folders).
  Result<ObjectInfo> Head(const store::ShareInfo& bucket, std::string_view key);
  Result<std::unique_ptr<store::FileHandle>> Open(const ObjectInfo& info);
  // Replaces the metadata of an existing object (ETag and checksums stay).
  Status SetMeta(const ObjectInfo& info, ObjectMeta meta);
  // Deletes a file (or an empty folder for a key ending in "/"), then parent folders left
  // empty, up to the share's root or the folder `keep` ("path/"). NotFound when nothing is
  // there.
  Status Delete(const store::ShareInfo& bucket, std::string_view key, std::string_view keep = "");
  // Objects with keys starting with `prefix` and after `marker`, in byte order. With a
  // delimiter, keys containing it after the prefix are rolled up into common prefixes.
  Result<ListResult> List(const store::ShareInfo& bucket, std::string_view prefix,
                          std::string_view delimiter, std::string_view marker, size_t max);

  // --- Staging (multipart parts, uncommitted blocks), below ".fieldstack-staging" ---
  // A staged file at `rel` ("uploads/<id>/00001"), replacing any; returns its size.
  Result<uint64_t> PutStaged(const store::ShareInfo& bucket, std::string_view rel,
                             const Source& body, std::string* md5_raw = nullptr,
                             const StageOptions& opts = {});
  Result<store::Attr> StatStaged(const store::ShareInfo& bucket, std::string_view rel);
  Result<std::unique_ptr<store::FileHandle>> OpenStaged(const store::ShareInfo& bucket,
                                                        std::string_view rel);
  // Names in staged folder `rel` (sorted); NotFound when it does not exist.
  Result<std::vector<store::Attr>> ListStaged(const store::ShareInfo& bucket, std::string_view rel);
  // An xattr on a staged file or folder (a folder is made when `rel` does not exist).
  Status SetStagedXattr(const store::ShareInfo& bucket, std::string_view rel, std::string_view name,
                        std::string_view value);
  Result<std::string> GetStagedXattr(const store::ShareInfo& bucket, std::string_view rel,
                                     std::string_view name);
  // Removes a staged file or folder with everything in it.
  Status RemoveStaged(const store::ShareInfo& bucket, std::string_view rel);
  // Removes leftovers of interrupted PUTs in every share (call at start, nothing in flight).
  Status CleanStaging();

  store::Store& store() { return store_; }

 private:
  Result<store::Attr> EnsureDirs(store::NodeId root, std::string_view rel);
  Result<store::Attr> StagingRoot(const store::ShareInfo& bucket);
  Status RemoveTree(store::NodeId parent, const store::Attr& a);
  Result<ObjectInfo> InfoOf(std::string key, const store::Attr& a);

  store::Store& store_;
};

// An access key of a box user for the S3 and Blob APIs. The secret is used as given by S3
// (SigV4) and base64-decoded by Blob Shared Key and SAS (so box secrets are base64 text).
struct AccessKey {
  std::string user;
  std::string id;                  // S3 access key id
  std::string secret;              // base64 text
  std::vector<std::string> read;   // buckets (shares) it may read, "*" for all
  std::vector<std::string> write;  // buckets it may write (and read), "*" for all
  bool CanRead(std::string_view bucket) const;
  bool CanWrite(std::string_view bucket) const;
};

// Text escaped for XML 1.0 (both object APIs answer in XML); control characters XML cannot
// carry become U+FFFD.
std::string XmlEscape(std::string_view s);

// Writes `body` to `h` from offset 0 in 1 MiB pieces, computing MD5; returns the size.
Result<uint64_t> CopyInto(const Source& body, store::FileHandle& h, std::string* md5_raw);
// A Source reading `h` from `offset`, at most `length` bytes.
Source ReadFrom(store::FileHandle& h, uint64_t offset, uint64_t length);

}  // namespace fieldstack::frontends::objects
