#pragma once

// S3Store: an ObjectStore over one bucket of Amazon S3 or any S3-compatible service (Ceph RGW,
// MinIO, ...), signed with SigV4, over the REST API.
//
// Mapping: Put -> PutObject (Content-MD5, x-amz-meta-*, If-Match / If-None-Match: *);
// multi-part -> CreateMultipartUpload / UploadPart (Content-MD5 per part) / ListParts /
// CompleteMultipartUpload (the part ETags come from ListParts) / AbortMultipartUpload;
// Head -> HeadObject; Get -> GetObject with Range; Delete -> DeleteObject; List ->
// ListObjectsV2 (continuation token; S3 does not list metadata, so ObjectInfo::meta is empty
// in listings).
//
// Addressing: path style (ENDPOINT/BUCKET/KEY), the default, which every S3-compatible service
// accepts; or virtual-hosted style (BUCKET.HOST/KEY), which AWS prefers.
// Payload signing: over http the body's SHA-256 is signed; over https the payload is sent
// UNSIGNED-PAYLOAD (TLS and the Content-MD5 the service checks protect it), which saves a
// SHA-256 pass over every byte.
// Integrity: the service checks each body against its Content-MD5. ObjectInfo::content_md5
// is the ETag when it is a plain MD5 (single PutObject without KMS); multi-part ETags are not
// an MD5 of the object, so it stays empty for them.
//
// Conditional writes: If-None-Match: * and If-Match on PutObject and
// CompleteMultipartUpload (AWS since 2024; older services may ignore them: see
// docs/s3-test-server.md). Delete with a precondition first checks the ETag with HeadObject.
//
// Errors: 404 NotFound (NoSuchBucket included, naming the bucket); 412 and 409
// FailedPrecondition; BadDigest / InvalidDigest Corruption; 401/403 Unauthenticated;
// RequestTimeout, SlowDown, 408, 429, 5xx and transport failures Unavailable.
// Thread safety: all methods may be called concurrently.

#include <memory>
#include <string>

#include "cloud/http_client.h"
#include "cloud/object_store.h"
#include "cloud/s3/sigv4.h"
#include "common/clock.h"

namespace fieldstack::cloud::s3 {

struct S3Config {
  std::string endpoint;  // http://127.0.0.1:7480, https://s3.eu-west-1.amazonaws.com
  std::string region = "us-east-1";
  std::string bucket;
  Credentials credentials;
  bool virtual_hosted = false;
  HttpClient::Options http;  // timeouts
};

class S3Store final : public ObjectStore {
 public:
  // InvalidArgument for an incomplete config or an invalid bucket name.
  static Result<std::unique_ptr<S3Store>> Open(S3Config config, Clock& clock);

  // Creates the bucket; AlreadyExists when we own it already.
  Status CreateBucket();

  Result<ObjectInfo> Put(std::string_view key, std::span<const uint8_t> data,
                         const PutOptions& options) override;
  Result<Upload> BeginUpload(std::string_view key, const UploadPlan& plan) override;
  Status PutPart(const Upload& upload, uint32_t number, std::span<const uint8_t> data,
                 const std::optional<std::string>& content_md5) override;
  Result<std::vector<PartInfo>> ListParts(const Upload& upload) override;
  Result<ObjectInfo> CommitUpload(const Upload& upload, const std::vector<uint32_t>& parts,
                                  const CommitOptions& options) override;
  Status AbortUpload(const Upload& upload) override;
  Result<ObjectInfo> Head(std::string_view key) override;
  Result<std::string> Get(std::string_view key, uint64_t offset, uint64_t length) override;
  Status Delete(std::string_view key, const Precondition& precondition) override;
  Result<ListPage> List(std::string_view prefix, std::string_view token, size_t limit) override;

  // The URL of `key` (empty: the bucket) with `query`.
  std::string Url(std::string_view key, std::string_view query = {}) const;
  // A presigned URL for GET or PUT of `key`, valid for `expires_s` seconds.
  std::string Presign(std::string_view method, std::string_view key, int64_t expires_s) const;

 private:
  S3Store(S3Config config, Clock& clock)
      : config_(std::move(config)), clock_(clock), http_(config_.http) {}

  struct Part {
    uint32_t number = 0;
    uint64_t size = 0;
    std::string etag;
  };
  Result<std::vector<Part>> Parts(const Upload& upload);
  // Signs and sends; maps failures to Status (see above).
  Result<HttpResponse> Call(HttpRequest req, std::string_view what);

  S3Config config_;
  Clock& clock_;
  bool sign_payload_ = true;
  HttpClient http_;
};

}  // namespace fieldstack::cloud::s3
