#include "cloud/memory/memory_store.h"

#include "crypto/hash.h"

namespace fieldstack::cloud::memory {
namespace {

std::span<const uint8_t> Bytes(const std::string& s) {
  return {reinterpret_cast<const uint8_t*>(s.data()), s.size()};
}

Status CheckMd5(std::span<const uint8_t> data, const std::optional<std::string>& md5) {
  if (!md5) return Status::Ok();
  crypto::Digest d(crypto::Digest::Kind::kMd5);
  d.Update(data);
  if (d.Final() != *md5) return CorruptionError("Content-MD5 does not match the body");
  return Status::Ok();
}

}  // namespace

Status MemoryStore::Check(std::string_view key, const Precondition& p) {
  auto it = objects_.find(key);
  if (p.if_none_match_any && it != objects_.end()) {
    return FailedPreconditionError("'" + std::string(key) + "' exists");
  }
  if (p.if_match && (it == objects_.end() || it->second.info.etag != *p.if_match)) {
    return FailedPreconditionError("'" + std::string(key) + "' does not have etag " + *p.if_match);
  }
  return Status::Ok();
}

ObjectInfo MemoryStore::Store(std::string_view key, std::string data, ObjectMeta meta) {
  ObjectInfo info;
  info.key = key;
  info.size = data.size();
  info.etag = Md5Hex(Bytes(data)) + "-" + std::to_string(next_upload_++);
  info.content_md5 = crypto::Digest::Md5(data);
  info.mtime_ns = clock_.NowUnixNanos();
  info.meta = std::move(meta);
  objects_[std::string(key)] = Object{info, std::move(data)};
  return info;
}

Result<ObjectInfo> MemoryStore::Put(std::string_view key, std::span<const uint8_t> data,
                                    const PutOptions& options) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  FS_RETURN_IF_ERROR(CheckMd5(data, options.content_md5));
  MutexLock l(mu_);
  FS_RETURN_IF_ERROR(Check(key, options.precondition));
  return Store(key, std::string(data.begin(), data.end()), options.meta);
}

Result<Upload> MemoryStore::BeginUpload(std::string_view key, const UploadPlan& plan) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock l(mu_);
  std::string id = "mem-" + std::to_string(next_upload_++);
  uploads_[id] = PendingUpload{std::string(key), plan.meta, {}};
  return Upload{std::string(key), id};
}

Status MemoryStore::PutPart(const Upload& upload, uint32_t number, std::span<const uint8_t> data,
                            const std::optional<std::string>& content_md5) {
  FS_RETURN_IF_ERROR(ValidatePartNumber(number));
  FS_RETURN_IF_ERROR(CheckMd5(data, content_md5));
  MutexLock l(mu_);
  auto it = uploads_.find(upload.id);
  if (it == uploads_.end()) return NotFoundError("no upload " + upload.id);
  it->second.parts[number] = std::string(data.begin(), data.end());
  return Status::Ok();
}

Result<std::vector<PartInfo>> MemoryStore::ListParts(const Upload& upload) {
  MutexLock l(mu_);
  auto it = uploads_.find(upload.id);
  if (it == uploads_.end()) return NotFoundError("no upload " + upload.id);
  std::vector<PartInfo> out;
  for (auto& [n, d] : it->second.parts) out.push_back({n, d.size()});
  return out;
}

Result<ObjectInfo> MemoryStore::CommitUpload(const Upload& upload,
                                             const std::vector<uint32_t>& parts,
                                             const CommitOptions& options) {
  const ObjectMeta& meta = options.meta;
  const Precondition& precondition = options.precondition;
  FS_RETURN_IF_ERROR(ValidatePartList(parts));
  MutexLock l(mu_);
  auto it = uploads_.find(upload.id);
  if (it == uploads_.end()) return NotFoundError("no upload " + upload.id);
  std::string data;
  for (uint32_t n : parts) {
    auto p = it->second.parts.find(n);
    if (p == it->second.parts.end()) {
      return InvalidArgumentError("part " + std::to_string(n) + " was not uploaded");
    }
    data += p->second;
  }
  FS_RETURN_IF_ERROR(Check(it->second.key, precondition));
  ObjectInfo info = Store(it->second.key, std::move(data), meta);
  uploads_.erase(it);
  return info;
}

Status MemoryStore::AbortUpload(const Upload& upload) {
  MutexLock l(mu_);
  uploads_.erase(upload.id);
  return Status::Ok();
}

Result<ObjectInfo> MemoryStore::Head(std::string_view key) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock l(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return NotFoundError("no object '" + std::string(key) + "'");
  return it->second.info;
}

Result<std::string> MemoryStore::Get(std::string_view key, uint64_t offset, uint64_t length) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock l(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return NotFoundError("no object '" + std::string(key) + "'");
  const std::string& d = it->second.data;
  if (offset >= d.size()) return std::string();
  return d.substr(offset, length);
}

Status MemoryStore::Delete(std::string_view key, const Precondition& precondition) {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  MutexLock l(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return NotFoundError("no object '" + std::string(key) + "'");
  FS_RETURN_IF_ERROR(Check(key, precondition));
  objects_.erase(it);
  return Status::Ok();
}

Result<ListPage> MemoryStore::List(std::string_view prefix, std::string_view after, size_t limit) {
  MutexLock l(mu_);
  ListPage page;
  auto it = after.empty() ? objects_.lower_bound(prefix) : objects_.upper_bound(after);
  if (it != objects_.end() && it->first < prefix) it = objects_.lower_bound(prefix);
  for (; it != objects_.end() && it->first.starts_with(prefix); ++it) {
    if (page.objects.size() == limit) {
      page.next_token = page.objects.back().key;  // the token is the last key returned
      break;
    }
    page.objects.push_back(it->second.info);
  }
  return page;
}

}  // namespace fieldstack::cloud::memory
