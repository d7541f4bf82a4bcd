#include "daemon/object_endpoints.h"

#include <spdlog/spdlog.h>
#include <unistd.h>

#include "crypto/certificate.h"
#include "crypto/hash.h"
#include "daemon/box.h"

namespace fieldstack::daemon {

namespace http = frontends::http;

Result<std::vector<frontends::objects::AccessKey>> LoadAccessKeys(const Config& c) {
  std::vector<frontends::objects::AccessKey> keys;
  for (size_t i = 0; i < c.access_keys.size(); ++i) {
    const AccessKeyConfig& k = c.access_keys[i];
    std::string where = "access_keys[" + std::to_string(i) + "].secret_file";
    FS_ASSIGN_OR_RETURN(std::string secret, ReadSecret(k.secret_file, where));
    secret = secret.substr(0, secret.find('\n'));
    if (secret.size() < 16 || crypto::Base64Decode(secret).empty()) {
      return InvalidArgumentError(
          "key '" + where + "': " + k.secret_file +
          " must hold a base64 secret of at least 16 characters (e.g. `openssl rand -base64 32`)");
    }
    keys.push_back({k.user, k.id, secret, k.read, k.write});
  }
  return keys;
}

Result<std::unique_ptr<ObjectEndpoints>> ObjectEndpoints::Start(store::Store& st, const Config& c) {
  std::unique_ptr<ObjectEndpoints> e(new ObjectEndpoints(st));
  if (!c.s3.enabled && !c.blob.enabled) return e;
  FS_ASSIGN_OR_RETURN(auto keys, LoadAccessKeys(c));
  if (Status s = e->objects_.CleanStaging(); !s.ok()) {
    spdlog::warn("objects: cannot remove leftovers of interrupted uploads: {}", s.ToString());
  }
  http::ServerOptions base;
  std::string scheme = "http";
  if (!c.allow_http) {
    FS_ASSIGN_OR_RETURN(CertificateFiles files, EnsureBoxCertificate(c));
    base.tls_cert_file = files.cert;
    base.tls_key_file = files.key;
    scheme = "https";
  }
  auto start = [&](const EndpointConfig& ep, const char* key, http::StreamHandler handler,
                   std::unique_ptr<http::HttpServer>* out) -> Status {
    http::ServerOptions o = base;
    o.address = ep.address;
    o.port = ep.port;
    auto server = std::make_unique<http::HttpServer>(o, std::move(handler));
    if (Status s = server->Start(); !s.ok()) {
      return Status(s.code(),
                    "key '" + std::string(key) + ".address'/'" + key + ".port': " + s.message());
    }
    *out = std::move(server);
    return Status::Ok();
  };
  if (c.s3.enabled) {
    frontends::s3_api::S3Options so;
    so.create_buckets = c.create_buckets;
    for (const BucketConfig& b : c.buckets) so.buckets[b.name] = {b.share, b.path};
    e->s3_ = std::make_unique<frontends::s3_api::S3Api>(e->objects_, keys, so);
    auto* api = e->s3_.get();
    FS_RETURN_IF_ERROR(start(
        c.s3, "s3", [api](http::Exchange& ex) { api->Handle(ex); }, &e->s3_server_));
    spdlog::info("s3: serving {}://{}:{} (path-style; buckets are shares)", scheme, c.s3.address,
                 e->s3_server_->port());
  }
  if (c.blob.enabled) {
    e->blob_ = std::make_unique<frontends::blob_api::BlobApi>(e->objects_, keys,
                                                              frontends::blob_api::BlobOptions{});
    auto* api = e->blob_.get();
    FS_RETURN_IF_ERROR(start(
        c.blob, "blob", [api](http::Exchange& ex) { api->Handle(ex); }, &e->blob_server_));
    spdlog::info(
        "blob: serving {}://{}:{}/<account> (accounts are shares, containers their "
        "top-level folders)",
        scheme, c.blob.address, e->blob_server_->port());
  }
  if (!c.allow_http) spdlog::info("tls: box certificate {}", base.tls_cert_file);
  return e;
}

Status ObjectEndpoints::ReloadCertificate() {
  for (auto* server : {s3_server_.get(), blob_server_.get()}) {
    if (server != nullptr) FS_RETURN_IF_ERROR(server->ReloadCertificate());
  }
  return Status::Ok();
}

ObjectEndpoints::~ObjectEndpoints() {
  if (s3_server_) s3_server_->Stop();
  if (blob_server_) blob_server_->Stop();
}

}  // namespace fieldstack::daemon
