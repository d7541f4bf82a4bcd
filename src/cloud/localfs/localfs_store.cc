#include "cloud/localfs/localfs_store.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <nlohmann/json.hpp>

#include "crypto/hash.h"
#include "crypto/key_store.h"
#include "platform/file.h"

namespace fieldstack::cloud::localfs {
namespace {

constexpr char kTmpDir[] = ".fieldstack-tmp";
constexpr char kUploadsDir[] = ".fieldstack-uploads";
constexpr char kXattrMeta[] = "user.fieldstack.meta";
constexpr char kXattrEtag[] = "user.fieldstack.etag";
constexpr char kXattrMd5[] = "user.fieldstack.md5";

std::atomic<uint64_t> g_counter{0};

std::string UniqueName() {
  uint8_t r[8];
  (void)crypto::RandomBytes(r);
  return std::to_string(::getpid()) + "-" + std::to_string(++g_counter) + "-" +
         crypto::ToHex({reinterpret_cast<char*>(r), sizeof r});
}

Result<std::string> GetXattr(const std::string& path, const char* name) {
  char buf[65536];
  ssize_t n = ::getxattr(path.c_str(), name, buf, sizeof buf);
  if (n < 0) return ErrnoStatus(errno, "getxattr " + path);
  return std::string(buf, static_cast<size_t>(n));
}

Status SetXattr(int fd, const std::string& path, const char* name, const std::string& value) {
  if (::fsetxattr(fd, name, value.data(), value.size(), 0) != 0) {
    return ErrnoStatus(errno, "setxattr " + path);
  }
  return Status::Ok();
}

// Appends `data` to `f` at `offset` and feeds the MD5.
Status Append(platform::File& f, uint64_t& offset, std::span<const uint8_t> data,
              crypto::Digest& md5) {
  FS_RETURN_IF_ERROR(f.PWrite(offset, data));
  md5.Update(data);
  offset += data.size();
  return Status::Ok();
}

}  // namespace

Result<std::unique_ptr<LocalFsStore>> LocalFsStore::Open(const std::string& root) {
  if (root.empty()) return InvalidArgumentError("localfs root is empty");
  FS_RETURN_IF_ERROR(platform::MakeDirs(root + "/" + kTmpDir));
  FS_RETURN_IF_ERROR(platform::MakeDirs(root + "/" + kUploadsDir));
  return std::unique_ptr<LocalFsStore>(new LocalFsStore(root));
}

Status LocalFsStore::CheckKey(std::string_view key) const {
  FS_RETURN_IF_ERROR(ValidateKey(key));
  if (key.starts_with(".fieldstack-")) {
    return InvalidArgumentError("keys starting with '.fieldstack-' are reserved");
  }
  return Status::Ok();
}

std::string LocalFsStore::UploadDir(const Upload& upload) const {
  return root_ + "/" + kUploadsDir + "/" + upload.id;
}

Status LocalFsStore::Check(std::string_view key, const Precondition& p) {
  auto head = Head(key);
  if (!head.ok() && head.status().code() != StatusCode::kNotFound) return head.status();
  if (p.if_none_match_any && head.ok()) {
    return FailedPreconditionError("'" + std::string(key) + "' exists");
  }
  if (p.if_match && (!head.ok() || head->etag != *p.if_match)) {
    return FailedPreconditionError("'" + std::string(key) + "' does not have etag " + *p.if_match);
  }
  return Status::Ok();
}

Result<ObjectInfo> LocalFsStore::Install(const std::string& tmp, std::string_view key,
                                         const ObjectMeta& meta, const std::string& md5) {
  std::string etag = crypto::ToHex(md5) + "-" + UniqueName().substr(0, 12);
  {
    FS_ASSIGN_OR_RETURN(platform::File f, platform::File::Open(tmp, O_RDWR));
    nlohmann::json j = meta;
    FS_RETURN_IF_ERROR(SetXattr(f.fd(), tmp, kXattrMeta, j.dump()));
    FS_RETURN_IF_ERROR(SetXattr(f.fd(), tmp, kXattrEtag, etag));
    FS_RETURN_IF_ERROR(SetXattr(f.fd(), tmp, kXattrMd5, md5));
    FS_RETURN_IF_ERROR(f.Sync());
  }
  std::string path = root_ + "/" + std::string(key);
  std::string dir = platform::DirName(path);
  Status mk = platform::MakeDirs(dir, 0755);
  if (!mk.ok()) {
    return FailedPreconditionError("'" + std::string(key) + "' needs directory " + dir + ": " +
                                   mk.message());
  }
  struct stat st;
  if (::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) {
    return FailedPreconditionError("'" + std::string(key) + "' is a prefix of other keys");
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus(errno, "rename to " + path);
  FS_RETURN_IF_ERROR(platform::SyncDir(dir));
  return Head(key);
}

Result<ObjectInfo> LocalFsStore::Put(std::string_view key, std::span<const uint8_t> data,
                                     const PutOptions& options) {
  FS_RETURN_IF_ERROR(CheckKey(key));
  std::string md5 = crypto::Digest::Md5({reinterpret_cast<const char*>(data.data()), data.size()});
  if (options.content_md5 && *options.content_md5 != md5) {
    return CorruptionError("Content-MD5 does not match the body");
  }
  std::string tmp = root_ + "/" + kTmpDir + "/" + UniqueName();
  {
    FS_ASSIGN_OR_RETURN(platform::File f, platform::File::Open(tmp, O_WRONLY | O_CREAT, 0644));
    FS_RETURN_IF_ERROR(f.PWrite(0, data));
  }
  MutexLock l(mu_);
  Status pre = Check(key, options.precondition);
  if (!pre.ok()) {
    (void)platform::RemoveFile(tmp);
    return pre;
  }
  auto info = Install(tmp, key, options.meta, md5);
  if (!info.ok()) (void)platform::RemoveFile(tmp);
  return info;
}

Result<Upload> LocalFsStore::BeginUpload(std::string_view key, const UploadPlan& plan) {
  FS_RETURN_IF_ERROR(CheckKey(key));
  Upload up{std::string(key), UniqueName()};
  std::string dir = UploadDir(up);
  FS_RETURN_IF_ERROR(platform::MakeDirs(dir));
  nlohmann::json j = {{"key", up.key}, {"meta", plan.meta}};
  FS_RETURN_IF_ERROR(platform::WriteFileAtomic(dir + "/upload.json", j.dump()));
  return up;
}

Status LocalFsStore::PutPart(const Upload& upload, uint32_t number, std::span<const uint8_t> data,
                             const std::optional<std::string>& content_md5) {
  FS_RETURN_IF_ERROR(ValidatePartNumber(number));
  std::string dir = UploadDir(upload);
  if (!platform::PathExists(dir + "/upload.json")) return NotFoundError("no upload " + upload.id);
  if (content_md5 &&
      *content_md5 !=
          crypto::Digest::Md5({reinterpret_cast<const char*>(data.data()), data.size()})) {
    return CorruptionError("Content-MD5 does not match the part");
  }
  return platform::WriteFileAtomic(dir + "/part-" + std::to_string(number),
                                   {reinterpret_cast<const char*>(data.data()), data.size()}, 0644);
}

Result<std::vector<PartInfo>> LocalFsStore::ListParts(const Upload& upload) {
  std::string dir = UploadDir(upload);
  if (!platform::PathExists(dir + "/upload.json")) return NotFoundError("no upload " + upload.id);
  FS_ASSIGN_OR_RETURN(auto names, platform::ListDir(dir));
  std::vector<PartInfo> out;
  for (const auto& n : names) {
    if (!n.starts_with("part-")) continue;
    struct stat st;
    if (::stat((dir + "/" + n).c_str(), &st) != 0) continue;
    out.push_back(
        {static_cast<uint32_t>(std::stoul(n.substr(5))), static_cast<uint64_t>(st.st_size)});
  }
  std::sort(out.begin(), out.end(),
            [](const PartInfo& a, const PartInfo& b) { return a.number < b.number; });
  return out;
}

Result<ObjectInfo> LocalFsStore::CommitUpload(const Upload& upload,
                                              const std::vector<uint32_t>& parts,
                                              const CommitOptions& options) {
  const ObjectMeta& meta = options.meta;
  const Precondition& precondition = options.precondition;
  FS_RETURN_IF_ERROR(ValidatePartList(parts));
  std::string dir = UploadDir(upload);
  auto text = platform::ReadFileToString(dir + "/upload.json");
  if (!text.ok()) return NotFoundError("no upload " + upload.id);
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded()) return CorruptionError("upload " + upload.id + " has a bad upload.json");
  std::string tmp = root_ + "/" + kTmpDir + "/" + UniqueName();
  crypto::Digest md5(crypto::Digest::Kind::kMd5);
  {
    FS_ASSIGN_OR_RETURN(platform::File out, platform::File::Open(tmp, O_WRONLY | O_CREAT, 0644));
    uint64_t offset = 0;
    for (uint32_t n : parts) {
      auto part = platform::ReadFileToString(dir + "/part-" + std::to_string(n));
      if (!part.ok()) {
        (void)platform::RemoveFile(tmp);
        return InvalidArgumentError("part " + std::to_string(n) + " was not uploaded");
      }
      FS_RETURN_IF_ERROR(
          Append(out, offset, {reinterpret_cast<const uint8_t*>(part->data()), part->size()}, md5));
    }
  }
  MutexLock l(mu_);
  Status pre = Check(upload.key, precondition);
  if (!pre.ok()) {
    (void)platform::RemoveFile(tmp);
    return pre;
  }
  auto info = Install(tmp, upload.key, meta, md5.Final());
  if (!info.ok()) {
    (void)platform::RemoveFile(tmp);
    return info;
  }
  (void)AbortUpload(upload);
  return info;
}

Status LocalFsStore::AbortUpload(const Upload& upload) {
  std::string dir = UploadDir(upload);
  auto names = platform::ListDir(dir);
  if (!names.ok()) return Status::Ok();
  for (const auto& n : *names) FS_RETURN_IF_ERROR(platform::RemoveFile(dir + "/" + n));
  if (::rmdir(dir.c_str()) != 0 && errno != ENOENT) return ErrnoStatus(errno, "rmdir " + dir);
  return Status::Ok();
}

Result<ObjectInfo> LocalFsStore::Head(std::string_view key) {
  FS_RETURN_IF_ERROR(CheckKey(key));
  std::string path = root_ + "/" + std::string(key);
  struct stat st;
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    return NotFoundError("no object '" + std::string(key) + "'");
  }
  ObjectInfo info;
  info.key = key;
  info.size = static_cast<uint64_t>(st.st_size);
  info.mtime_ns = int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  auto etag = GetXattr(path, kXattrEtag);
  // A file put into the tree by hand has no xattrs: its etag is derived from size and mtime.
  info.etag =
      etag.ok() ? *etag : "fs-" + std::to_string(info.size) + "-" + std::to_string(info.mtime_ns);
  if (auto md5 = GetXattr(path, kXattrMd5); md5.ok()) info.content_md5 = *md5;
  if (auto meta = GetXattr(path, kXattrMeta); meta.ok()) {
    nlohmann::json j = nlohmann::json::parse(*meta, nullptr, false);
    if (j.is_object()) info.meta = j.get<ObjectMeta>();
  }
  return info;
}

Result<std::string> LocalFsStore::Get(std::string_view key, uint64_t offset, uint64_t length) {
  FS_ASSIGN_OR_RETURN(ObjectInfo info, Head(key));
  if (offset >= info.size) return std::string();
  FS_ASSIGN_OR_RETURN(platform::File f,
                      platform::File::Open(root_ + "/" + std::string(key), O_RDONLY));
  std::string out(std::min<uint64_t>(length, info.size - offset), '\0');
  FS_ASSIGN_OR_RETURN(size_t n,
                      f.PRead(offset, {reinterpret_cast<uint8_t*>(out.data()), out.size()}));
  out.resize(n);
  return out;
}

Status LocalFsStore::Delete(std::string_view key, const Precondition& precondition) {
  FS_ASSIGN_OR_RETURN(ObjectInfo info, Head(key));
  (void)info;
  MutexLock l(mu_);
  FS_RETURN_IF_ERROR(Check(key, precondition));
  std::string path = root_ + "/" + std::string(key);
  if (::unlink(path.c_str()) != 0) return ErrnoStatus(errno, "unlink " + path);
  // Remove directories the key left empty, up to the root, then sync what remains.
  std::string dir = platform::DirName(path);
  while (dir.size() > root_.size() && ::rmdir(dir.c_str()) == 0) dir = platform::DirName(dir);
  return platform::SyncDir(dir);
}

Status LocalFsStore::Walk(const std::string& rel, std::string_view prefix, std::string_view after,
                          size_t limit, ListPage& page) {
  auto names = platform::ListDir(rel.empty() ? root_ : root_ + "/" + rel.substr(0, rel.size() - 1));
  if (!names.ok()) {
    // A folder removed meanwhile lists as empty; the root gone (an unplugged disk, a moved
    // export) is an outage, never "everything was deleted".
    if (rel.empty()) {
      return UnavailableError("localfs target " + root_ +
                              " is missing: " + names.status().message());
    }
    return Status::Ok();
  }
  // Sort as full keys sort: a directory "a" sorts as "a/".
  std::vector<std::pair<std::string, bool>> entries;
  for (auto& n : *names) {
    if (rel.empty() && n.starts_with(".fieldstack-")) continue;
    struct stat st;
    std::string full = root_ + "/" + rel + n;
    if (::lstat(full.c_str(), &st) != 0) continue;
    bool dir = S_ISDIR(st.st_mode);
    if (!dir && !S_ISREG(st.st_mode)) continue;
    entries.emplace_back(rel + n + (dir ? "/" : ""), dir);
  }
  std::sort(entries.begin(), entries.end());
  for (auto& [key, dir] : entries) {
    if (!page.next_token.empty()) return Status::Ok();
    if (dir) {
      bool prefix_ok = key.starts_with(prefix) || std::string_view(prefix).starts_with(key);
      bool all_before = !after.empty() && std::string_view(key) < after && !after.starts_with(key);
      if (prefix_ok && !all_before) FS_RETURN_IF_ERROR(Walk(key, prefix, after, limit, page));
      continue;
    }
    if (!key.starts_with(prefix) || std::string_view(key) <= after) continue;
    if (page.objects.size() == limit) {
      page.next_token = page.objects.back().key;  // the token is the last key returned
      return Status::Ok();
    }
    auto info = Head(key);
    if (info.ok()) page.objects.push_back(std::move(*info));
  }
  return Status::Ok();
}

Result<ListPage> LocalFsStore::List(std::string_view prefix, std::string_view after, size_t limit) {
  ListPage page;
  FS_RETURN_IF_ERROR(Walk("", prefix, after, limit, page));
  return page;
}

}  // namespace fieldstack::cloud::localfs
