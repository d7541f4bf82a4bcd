#pragma once

// S3Api: the box's S3-compatible endpoint (docs/objects.md). Path-style URLs
// (http(s)://box:port/<bucket>/<key>); a bucket is a share, a key a path in it (objects.h).
//
// Every request is signed (SigV4 header or presigned URL) with a box access key, which needs
// read or write rights on the bucket. Bodies stream into the Store (never held whole), in any
// form the SDKs send: plain, aws-chunked with signed or unsigned chunks, with trailing
// checksums. Content-MD5, x-amz-content-sha256 and x-amz-checksum-* are verified before an
// object becomes visible; a mismatch stores nothing.
//
// Supported: List/Create/Head Bucket, GetBucketLocation/Versioning, Put/Get/Head/Delete/Copy
// Object (ranges, conditionals, user metadata), DeleteObjects, ListObjects v1 and v2,
// ListObjectVersions (unversioned), and multipart uploads (create, upload part and part copy,
// complete, abort, list parts, list uploads). Anything else answers 501 NotImplemented.
//
// Thread safety: Handle may be called from many threads at once.

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "frontends/http/server.h"
#include "frontends/objects/objects.h"

namespace fieldstack::frontends::s3_api {

// A bucket that is a folder of a share rather than a whole share.
struct BucketMapping {
  std::string share;
  std::string path;  // a folder path in the share, without leading or trailing '/'
};

struct S3Options {
  Clock* clock = nullptr;  // RealClock when null
  std::string region = "us-east-1";
  // CreateBucket makes a local share when the key may write every bucket ("*").
  bool create_buckets = false;
  // Extra buckets by name (besides one per share); rights name these buckets.
  std::map<std::string, BucketMapping> buckets;
  // A CompleteMultipartUpload of at least this many bytes answers 200 at once and sends spaces
  // while it assembles the object, then the result or an <Error>.
  uint64_t stream_complete_bytes = 64ull << 20;
};

class S3Api {
 public:
  S3Api(objects::Objects& objects, std::vector<objects::AccessKey> keys, S3Options options);
  void Handle(http::Exchange& ex);

  struct Call;  // one request being served (s3_api.cc)

 private:
  // The share and folder prefix ("" or "path/") of a bucket name; NotFound when none.
  Result<std::pair<store::ShareInfo, std::string>> ResolveBucket(const std::string& name);
  void Dispatch(Call& c);
  void ListBuckets(Call& c);
  void BucketOp(Call& c);
  void ObjectOp(Call& c);
  void ListObjects(Call& c, int version);
  void ListVersions(Call& c);
  void DeleteObjects(Call& c);
  void CreateBucket(Call& c);
  void PutObject(Call& c);
  // The object x-amz-copy-source names, readable by the caller; else responds and nullopt.
  std::optional<objects::ObjectInfo> CopySource(Call& c, store::ShareInfo* share);
  void CopyObject(Call& c);
  void GetObject(Call& c, bool head);
  void CreateUpload(Call& c);
  void UploadPart(Call& c);
  void CompleteUpload(Call& c);
  void AbortUpload(Call& c);
  void ListParts(Call& c);
  void ListUploads(Call& c);

  objects::Objects& objects_;
  std::vector<objects::AccessKey> keys_;
  S3Options options_;
  Clock* clock_;
};

}  // namespace fieldstack::frontends::s3_api
