#pragma once

// BlobApi: the Azure-Blob-compatible REST endpoint of the box ("edge storage account"), the
// StreamHandler of its own HttpServer port. docs/blob_api.md is the user's contract.
//
// Design:
//  - Mapping: http(s)://host:port/<account>/<container>/<blob>, path style as Azurite serves
//    IP endpoints. The account is a share, a container a top-level folder of it, a blob a file
//    below ("<container>/<blob>" is its Objects key), so SMB, NFS and S3 see the same bytes.
//  - Every request is authenticated (Shared Key or SAS; anonymous access is refused) against
//    the AccessKeys that may read the share, then authorized: writes need a key that may write
//    it (and a SAS that grants the operation).
//  - Block blobs: Put Block stages each block below the share's staging folder
//    ("blocks/<sha256 of container>/<sha256 of blob>/<hex of block id>", names stay within the
//    Store's 255-byte limit). Put Block List streams the listed blocks, in order, through
//    Objects::Put, so the blob appears at once and complete or not at all; it records the
//    committed list (ids and sizes) with the object's metadata and discards what remains
//    staged. Committed blocks can be listed again in a later Put Block List.
//  - Bodies are streamed: PUT bodies pass through MD5/CRC64 checks that fail the write before
//    anything becomes visible; GET bodies go out in 1 MiB pieces.
//
// Thread safety: Handle may be called concurrently from the server's connection threads; the
// object holds no mutable state besides an atomic request counter.
// Lifetime: `objects` and `options.clock` must outlive the BlobApi.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "common/clock.h"
#include "frontends/http/server.h"
#include "frontends/objects/objects.h"

namespace fieldstack::frontends::blob_api {

struct BlobOptions {
  Clock* clock = nullptr;  // defaults to RealClock
  // Allowed difference between x-ms-date / Date and the box clock for Shared Key.
  std::chrono::seconds max_clock_skew{15 * 60};
  // Largest Put Blob body and block (Azure: 5000 MiB and 4000 MiB).
  uint64_t max_put_blob_bytes = 5000ull << 20;
  uint64_t max_block_bytes = 4000ull << 20;
  // Largest page of List Blobs / List Containers.
  size_t max_list_results = 5000;
};

class BlobApi {
 public:
  BlobApi(objects::Objects& objects, std::vector<objects::AccessKey> keys, BlobOptions options);

  // Serves one request: authenticates, dispatches on method, path and query (comp, restype),
  // and responds; never throws.
  void Handle(http::Exchange& ex);

  struct Request;  // one request being served (blob_api.cc)

 private:
  void Dispatch(Request& r);
  bool Authenticate(Request& r);

  void ListContainers(Request& r);
  void CreateContainer(Request& r);
  void DeleteContainer(Request& r);
  void ContainerProperties(Request& r);
  void ListBlobs(Request& r);
  void PutBlob(Request& r);
  void CopyBlob(Request& r);
  void PutBlock(Request& r);
  void PutBlockList(Request& r);
  void GetBlockList(Request& r);
  void GetBlob(Request& r, bool head);
  void DeleteBlob(Request& r);
  void SetBlobMetadata(Request& r);
  void SetBlobProperties(Request& r);
  void AccountInfo(Request& r);

  objects::Objects& objects_;
  std::vector<objects::AccessKey> keys_;
  BlobOptions options_;
  Clock* clock_;
  std::atomic<uint64_t> requests_{0};
};

}  // namespace fieldstack::frontends::blob_api
