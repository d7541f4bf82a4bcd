#pragma once

// ObjectStore is the uploader's view of one cloud container: an Azure Blob container, an S3
// bucket, a local directory (localfs) or memory (tests). Adapters live in subfolders named after
// the mechanism; only src/daemon names them. Every adapter passes the same conformance suite
// (object_store_conformance.h).
//
// Keys are '/'-separated, 1 to 1024 bytes, never start with '/', and have no empty, "." or ".."
// component (ValidateKey). An object becomes visible only whole: by Put, or by CommitUpload of
// its parts; nothing partial is ever listed or read.
//
// Thread safety: all methods may be called concurrently.
// Errors: NotFound for a missing key or upload; FailedPrecondition when a Precondition fails;
// InvalidArgument for a bad key or part number; Corruption when the service saw other bytes
// than the checksum we sent (the data was damaged on the way: send it again); Unavailable for
// failures worth retrying (throttling, timeouts, 5xx, connection loss). Others are permanent.

#include <cstdint>
#include <map>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace fieldstack::cloud {

inline constexpr size_t kMaxKeyBytes = 1024;
inline constexpr uint32_t kMaxParts = 10000;

// User metadata stored with an object (Azure x-ms-meta-*, S3 x-amz-meta-*): lower-case ASCII
// names of letters, digits and '_'.
using ObjectMeta = std::map<std::string, std::string>;

struct ObjectInfo {
  std::string key;
  uint64_t size = 0;
  std::string etag;         // opaque; changes whenever the content or metadata is replaced
  std::string content_md5;  // raw 16 bytes when the service keeps it, else empty
  int64_t mtime_ns = 0;     // when the service stored it
  ObjectMeta meta;
};

// A conditional write or delete. Both empty: unconditional.
struct Precondition {
  std::optional<std::string> if_match;  // the object exists with this etag
  bool if_none_match_any = false;       // the object does not exist
};

struct PutOptions {
  ObjectMeta meta;
  Precondition precondition;
  std::optional<std::string> content_md5;  // raw 16 bytes; the service checks the body with it
};

struct CommitOptions {
  ObjectMeta meta;  // services that take metadata at the start use BeginUpload's
  Precondition precondition;
  std::optional<std::string> content_md5;  // raw MD5 of the whole object, kept with it
};

// What BeginUpload knows of the object to come.
struct UploadPlan {
  ObjectMeta meta;         // services that take metadata at the start keep this
  uint64_t size = 0;       // total bytes
  uint64_t part_size = 0;  // every part but the last has this size
};

// A multi-part upload in progress. Persist it to resume after a restart.
struct Upload {
  std::string key;
  std::string id;
};

struct PartInfo {
  uint32_t number = 0;
  uint64_t size = 0;
};

struct ListPage {
  std::vector<ObjectInfo> objects;  // ascending byte order of keys
  std::string next_token;           // non-empty: more keys follow; pass it to List
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;

  // Writes a whole object atomically, replacing any object of that key.
  virtual Result<ObjectInfo> Put(std::string_view key, std::span<const uint8_t> data,
                                 const PutOptions& options) = 0;

  // Starts a multi-part upload of `key`. Nothing is visible until CommitUpload succeeds.
  virtual Result<Upload> BeginUpload(std::string_view key, const UploadPlan& plan) = 0;
  // Stores part `number` (1 to kMaxParts); sending a number again replaces that part.
  virtual Status PutPart(const Upload& upload, uint32_t number, std::span<const uint8_t> data,
                         const std::optional<std::string>& content_md5) = 0;
  // The parts stored so far, ascending: what a restarted uploader need not send again.
  virtual Result<std::vector<PartInfo>> ListParts(const Upload& upload) = 0;
  // Makes the object the concatenation of `parts` (ascending, each stored) in one step.
  virtual Result<ObjectInfo> CommitUpload(const Upload& upload, const std::vector<uint32_t>& parts,
                                          const CommitOptions& options) = 0;
  // Drops the upload and its parts. An unknown upload is OK. Services without server-side
  // uploads (Azure: uncommitted blocks expire by themselves) may keep the parts until then.
  virtual Status AbortUpload(const Upload& upload) = 0;

  virtual Result<ObjectInfo> Head(std::string_view key) = 0;
  // Up to `length` bytes from `offset` (fewer at the end of the object).
  virtual Result<std::string> Get(std::string_view key, uint64_t offset, uint64_t length) = 0;
  virtual Status Delete(std::string_view key, const Precondition& precondition) = 0;
  // Up to `limit` objects whose keys start with `prefix`, continuing from `token` (empty: from
  // the start; else the ListPage::next_token of the previous page of the same listing).
  virtual Result<ListPage> List(std::string_view prefix, std::string_view token, size_t limit) = 0;
};

// InvalidArgument naming the problem, or OK.
Status ValidateKey(std::string_view key);
Status ValidatePartNumber(uint32_t number);
// InvalidArgument unless `parts` are valid part numbers in strictly ascending order.
Status ValidatePartList(const std::vector<uint32_t>& parts);
// Lower-case hex MD5 of `data`: the etag of the memory and localfs adapters.
std::string Md5Hex(std::span<const uint8_t> data);

}  // namespace fieldstack::cloud
