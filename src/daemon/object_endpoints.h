#pragma once

// The object front ends of the daemon: the S3 API ([s3]) and the Blob API ([blob]) on the
// Store, each on its own port, over HTTPS with the box certificate unless tls.allow_http.
// Keys come from [[access_keys]] (docs/objects.md).
//
// Thread safety: Start and the destructor from one thread.

#include <memory>
#include <string>

#include "common/status.h"
#include "daemon/config.h"
#include "frontends/blob_api/blob_api.h"
#include "frontends/http/server.h"
#include "frontends/objects/objects.h"
#include "frontends/s3_api/s3_api.h"
#include "store/store.h"

namespace fieldstack::daemon {

class ObjectEndpoints {
 public:
  // Removes leftovers of interrupted uploads, makes the box certificate if needed, and starts
  // the endpoints the config enables; logs how to reach them. InvalidArgument for bad
  // settings (naming the key), Unavailable for a taken port.
  static Result<std::unique_ptr<ObjectEndpoints>> Start(store::Store& st, const Config& c);
  ~ObjectEndpoints();  // stops the servers (requests in flight finish first)

  // Loads the box certificate again (after an upload or rotation); OK without TLS.
  Status ReloadCertificate();
  uint16_t s3_port() const { return s3_server_ ? s3_server_->port() : 0; }
  uint16_t blob_port() const { return blob_server_ ? blob_server_->port() : 0; }

 private:
  explicit ObjectEndpoints(store::Store& st) : objects_(st) {}

  frontends::objects::Objects objects_;
  std::unique_ptr<frontends::s3_api::S3Api> s3_;
  std::unique_ptr<frontends::blob_api::BlobApi> blob_;
  std::unique_ptr<frontends::http::HttpServer> s3_server_;
  std::unique_ptr<frontends::http::HttpServer> blob_server_;
};

// The keys of the config with their secrets read; InvalidArgument naming the key when a secret
// file is unreadable or not base64.
Result<std::vector<frontends::objects::AccessKey>> LoadAccessKeys(const Config& c);

}  // namespace fieldstack::daemon
