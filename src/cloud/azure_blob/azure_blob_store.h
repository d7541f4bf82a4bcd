#pragma once

// AzureBlobStore: an ObjectStore over one Azure Blob Storage container (block blobs, and page
// blobs for disk images), with Shared Key or SAS authentication, over the REST API (version
// 2021-08-06).
//
// Mapping: Put -> Put Blob (Content-MD5, x-ms-meta-*, If-Match / If-None-Match: *);
// multi-part -> Put Block (block ids derived from the upload id and part number, Content-MD5
// per block) and Put Block List; ListParts -> Get Block List (uncommitted). Azure has no
// server-side "upload": BeginUpload only draws an id, and AbortUpload leaves the uncommitted
// blocks for the service to expire (one week), so a commit after an abort may still succeed.
// Head -> Get Blob Properties; Get -> Get Blob with x-ms-range; List -> List Blobs (marker).
//
// Page blobs: keys ending in one of `page_blob_suffixes` (e.g. ".vhd") become page blobs, whose
// size must be a multiple of 512 bytes (InvalidArgument "... not a multiple of 512" otherwise).
// A page blob cannot be written whole in one request, so it is assembled in a staging blob
// (".fieldstack-staging/<upload id>", hidden from List), with Put Page requests of at most
// 4 MiB, each with its Content-MD5, skipping all-zero pages (a fresh page blob reads as zeros);
// CommitUpload sets the whole blob's MD5 and copies it to its key with Copy Blob, under the
// precondition, then deletes the staging blob. The key never shows a partial page blob.
// Works with path-style endpoints (Azurite: http://127.0.0.1:PORT/devstoreaccount1) and
// account endpoints (https://ACCOUNT.blob.core.windows.net).
//
// Errors: 404 NotFound; 409/412 on a condition FailedPrecondition; 400 Md5Mismatch Corruption;
// 401/403 Unauthenticated; 408, 429, 5xx and transport failures Unavailable.
// Thread safety: all methods may be called concurrently.

#include <memory>
#include <string>
#include <vector>

#include "cloud/http_client.h"
#include "cloud/object_store.h"
#include "common/clock.h"

namespace fieldstack::cloud::azure_blob {

struct AzureConfig {
  std::string endpoint;    // up to the account: http://127.0.0.1:10000/devstoreaccount1
  std::string account;     // for Shared Key
  std::string key_base64;  // Shared Key (empty with a SAS)
  std::string sas;         // SAS query string without '?' (empty with a Shared Key)
  std::string container;
  std::vector<std::string> page_blob_suffixes;  // e.g. {".vhd", ".vhdx"}; case-insensitive
  HttpClient::Options http;                     // timeouts
};

class AzureBlobStore final : public ObjectStore {
 public:
  // InvalidArgument for an incomplete config.
  static Result<std::unique_ptr<AzureBlobStore>> Open(AzureConfig config, Clock& clock);

  // Creates the container; AlreadyExists when it exists.
  Status CreateContainer();

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

  // The Shared Key string-to-sign of a request (exposed for tests).
  static std::string StringToSign(const HttpRequest& req, const std::string& account);

 private:
  AzureBlobStore(AzureConfig config, Clock& clock, std::string key)
      : config_(std::move(config)), clock_(clock), key_(std::move(key)), http_(config_.http) {}

  // Signs (or adds the SAS to) and sends; maps failures to Status (see above).
  Result<HttpResponse> Call(HttpRequest req, std::string_view what);
  bool IsPageBlob(std::string_view key) const;
  // Page blob assembly (see above).
  Status WritePages(const std::string& blob, uint64_t offset, std::span<const uint8_t> data);
  Result<ObjectInfo> CommitPageBlob(const Upload& upload, const CommitOptions& options);
  std::string BlobUrl(std::string_view key, std::string_view query = {}) const;

  AzureConfig config_;
  Clock& clock_;
  std::string key_;  // decoded Shared Key
  HttpClient http_;
};

}  // namespace fieldstack::cloud::azure_blob
