#include "frontends/objects/objects.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <future>
#include <nlohmann/json.hpp>

#include "crypto/chunk_codec.h"
#include "crypto/hash.h"
#include "crypto/key_store.h"

namespace fieldstack::frontends::objects {

namespace {

constexpr size_t kIoBytes = 1 << 20;
constexpr char kPutDir[] = "put";

std::string_view DirPart(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? std::string_view() : path.substr(0, slash);
}

std::string_view BasePart(std::string_view path) {
  size_t slash = path.rfind('/');
  return slash == std::string_view::npos ? path : path.substr(slash + 1);
}

std::vector<std::string_view> Segments(std::string_view path) {
  std::vector<std::string_view> out;
  while (!path.empty()) {
    size_t slash = path.find('/');
    out.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return out;
}

std::string RandomName() {
  uint8_t raw[12];
  if (!crypto::RandomBytes(raw).ok()) return "x";
  return crypto::ToHex({reinterpret_cast<const char*>(raw), sizeof(raw)});
}

bool ListAllows(const std::vector<std::string>& list, std::string_view bucket) {
  for (const std::string& b : list) {
    if (b == "*" || b == bucket) return true;
  }
  return false;
}

}  // namespace

bool AccessKey::CanWrite(std::string_view bucket) const { return ListAllows(write, bucket); }
bool AccessKey::CanRead(std::string_view bucket) const {
  return ListAllows(read, bucket) || CanWrite(bucket);
}

std::string ObjectMeta::ToJson() const {
  nlohmann::json j;
  j["etag"] = etag;
  j["gen"] = data_gen;
  auto put = [&](const char* name, const std::string& v) {
    if (!v.empty()) j[name] = v;
  };
  put("type", content_type);
  put("encoding", content_encoding);
  put("disposition", content_disposition);
  put("language", content_language);
  put("cache", cache_control);
  put("md5", content_md5);
  if (!user.empty()) j["user"] = user;
  if (!checksums.empty()) j["sums"] = checksums;
  if (!extra.empty()) j["extra"] = extra;
  return j.dump();
}

ObjectMeta ObjectMeta::FromJson(std::string_view json) {
  ObjectMeta m;
  auto j = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object()) return m;
  try {
    m.etag = j.value("etag", "");
    m.data_gen = j.value("gen", uint64_t{0});
    m.content_type = j.value("type", "");
    m.content_encoding = j.value("encoding", "");
    m.content_disposition = j.value("disposition", "");
    m.content_language = j.value("language", "");
    m.cache_control = j.value("cache", "");
    m.content_md5 = j.value("md5", "");
    if (j.contains("user")) m.user = j["user"].get<std::map<std::string, std::string>>();
    if (j.contains("sums")) m.checksums = j["sums"].get<std::map<std::string, std::string>>();
    if (j.contains("extra")) m.extra = j["extra"].get<std::map<std::string, std::string>>();
  } catch (const nlohmann::json::exception&) {
    return ObjectMeta{};
  }
  return m;
}

std::string ObjectInfo::ETag() const {
  if (meta_current()) return meta.etag;
  return fmt::format("{:016x}{:016x}-1", attr.id, attr.data_gen);
}

Result<uint64_t> CopyInto(const Source& body, store::FileHandle& h, std::string* md5_raw) {
  // Two buffers: while a piece is written to the Store on this thread, its MD5 runs on
  // another, and the next piece is read into the other buffer meanwhile. MD5 (~800 MB/s on one
  // core) would otherwise add to the time of every large PUT. Buffers are not zeroed: a 4 KiB
  // object touches only its first page.
  std::unique_ptr<uint8_t[]> bufs[2] = {std::unique_ptr<uint8_t[]>(new uint8_t[kIoBytes]),
                                        std::unique_ptr<uint8_t[]>(new uint8_t[kIoBytes])};
  crypto::Digest md5(crypto::Digest::Kind::kMd5);
  std::future<void> hashing;
  uint64_t offset = 0;
  for (int i = 0;; i ^= 1) {
    std::span<uint8_t> buf(bufs[i].get(), kIoBytes);
    // Fill the buffer so that writes are whole chunks where the body allows.
    size_t have = 0;
    bool end = false;
    while (have < buf.size()) {
      auto n = body(buf.subspan(have));
      if (!n.ok()) {
        if (hashing.valid()) hashing.wait();
        return n.status();
      }
      if (*n == 0) {
        end = true;
        break;
      }
      have += *n;
    }
    if (hashing.valid()) hashing.wait();  // the previous piece is hashed (its buffer is free)
    if (have > 0) {
      std::span<const uint8_t> piece(buf.data(), have);
      if (have == kIoBytes && !end) {
        hashing = std::async(std::launch::async, [&md5, piece] { md5.Update(piece); });
      } else {
        md5.Update(piece);
      }
      Status w = h.Write(offset, piece);
      if (!w.ok()) {
        if (hashing.valid()) hashing.wait();
        return w;
      }
      offset += have;
    }
    if (end) break;
  }
  if (hashing.valid()) hashing.wait();
  std::string digest = md5.Final();
  if (md5_raw != nullptr) *md5_raw = std::move(digest);
  return offset;
}

Source ReadFrom(store::FileHandle& h, uint64_t offset, uint64_t length) {
  return [&h, offset, length](std::span<uint8_t> out) mutable -> Result<size_t> {
    if (length == 0) return size_t{0};
    size_t want = static_cast<size_t>(std::min<uint64_t>(out.size(), length));
    FS_ASSIGN_OR_RETURN(size_t n, h.Read(offset, out.first(want)));
    if (n == 0) return UnavailableError("object shorter than expected (it changed while read)");
    offset += n;
    length -= n;
    return n;
  };
}

Objects::Objects(store::Store& store) : store_(store) {}

Status Objects::ValidKey(std::string_view key) {
  if (key.empty()) return InvalidArgumentError("empty object key");
  if (key.size() > kMaxKeyBytes) {
    return InvalidArgumentError("object key longer than " + std::to_string(kMaxKeyBytes) +
                                " bytes");
  }
  if (key.find('\0') != std::string_view::npos) {
    return InvalidArgumentError("object key contains a NUL byte");
  }
  std::string_view body = key;
  if (body.back() == '/') body.remove_suffix(1);
  if (body.empty()) return InvalidArgumentError("object key '/' names no object");
  auto segs = Segments(body);
  for (std::string_view seg : segs) {
    if (seg.empty())
      return InvalidArgumentError("object key has an empty path segment ('//' or a leading '/')");
    if (seg == "." || seg == "..") {
      return InvalidArgumentError("object key has a '.' or '..' path segment");
    }
    if (seg.size() > 255) return InvalidArgumentError("object key has a segment over 255 bytes");
  }
  if (segs.front() == kStagingDir)
    return InvalidArgumentError("object key names a reserved folder");
  return Status::Ok();
}

Result<store::ShareInfo> Objects::Bucket(std::string_view name) { return store_.GetShare(name); }

Result<store::Attr> Objects::EnsureDirs(store::NodeId root, std::string_view rel) {
  FS_ASSIGN_OR_RETURN(store::Attr cur, store_.GetAttr(root));
  for (std::string_view seg : Segments(rel)) {
    if (seg.empty()) continue;
    auto next = store_.Lookup(cur.id, seg);
    if (next.status().code() == StatusCode::kNotFound) {
      next = store_.Mkdir(cur.id, seg, {0777, 0, 0});
      if (next.status().code() == StatusCode::kAlreadyExists) next = store_.Lookup(cur.id, seg);
    }
    if (!next.ok()) return next.status();
    if (next->type != store::NodeType::kDirectory) {
      return FailedPreconditionError("'" + std::string(seg) +
                                     "' is a file, so it cannot hold other objects");
    }
    cur = *next;
  }
  return cur;
}

Result<store::Attr> Objects::StagingRoot(const store::ShareInfo& bucket) {
  return EnsureDirs(bucket.root, kStagingDir);
}

Result<ObjectInfo> Objects::InfoOf(std::string key, const store::Attr& a) {
  ObjectInfo info;
  info.key = std::move(key);
  info.attr = a;
  auto x = store_.GetXattr(a.id, kMetaXattr);
  if (x.ok()) info.meta = ObjectMeta::FromJson(*x);
  return info;
}

Result<ObjectInfo> Objects::Put(const store::ShareInfo& bucket, std::string_view key,
                                const Source& body, ObjectMeta meta, const Verify& verify,
                                bool no_replace) {
  FS_RETURN_IF_ERROR(ValidKey(key));
  if (key.back() == '/') {
    // A folder marker: no data allowed.
    uint8_t probe[1];
    FS_ASSIGN_OR_RETURN(size_t n, body(probe));
    if (n != 0) {
      return InvalidArgumentError("a key ending in '/' names a folder and cannot hold data");
    }
    std::string md5 = crypto::Digest::Md5("");
    if (verify) FS_RETURN_IF_ERROR(verify(md5, 0, &meta));
    FS_ASSIGN_OR_RETURN(store::Attr dir, EnsureDirs(bucket.root, key.substr(0, key.size() - 1)));
    ObjectInfo info;
    info.key = std::string(key);
    info.attr = dir;
    info.meta.etag = crypto::ToHex(md5);
    info.meta.data_gen = dir.data_gen;
    return info;
  }
  FS_ASSIGN_OR_RETURN(store::Attr staging, StagingRoot(bucket));
  FS_ASSIGN_OR_RETURN(store::Attr put_dir, EnsureDirs(staging.id, kPutDir));
  std::string temp = RandomName();
  FS_ASSIGN_OR_RETURN(auto h, store_.Create(put_dir.id, temp, {0666, 0, 0}));
  store::NodeId node = h->node();
  auto discard = [&](Status s) {
    h.reset();
    Status u = store_.Unlink(put_dir.id, temp);
    if (!u.ok()) spdlog::warn("objects: cannot remove staged file {}: {}", temp, u.ToString());
    return s;
  };
  std::string md5;
  auto size = CopyInto(body, *h, &md5);
  if (!size.ok()) return discard(size.status());
  if (verify) {
    if (Status v = verify(md5, *size, &meta); !v.ok()) return discard(v);
  }
  if (meta.etag.empty()) meta.etag = crypto::ToHex(md5);
  // The data and its metadata (tagged with the generation it describes) in one commit.
  Status closed = h->CloseWithXattr(kMetaXattr, [&meta](uint64_t gen) {
    meta.data_gen = gen;
    return meta.ToJson();
  });
  if (!closed.ok()) return discard(closed);
  std::string_view base = BasePart(key);
  // A concurrent Delete may remove a folder left empty between EnsureDirs and Rename: again.
  Status placed;
  for (int attempt = 0; attempt < 5; ++attempt) {
    auto parent = EnsureDirs(bucket.root, DirPart(key));
    if (!parent.ok()) return discard(parent.status());
    auto existing = store_.Lookup(parent->id, base);
    if (existing.ok() && existing->type == store::NodeType::kDirectory) {
      return discard(
          FailedPreconditionError("'" + std::string(key) + "' is a folder holding other objects"));
    }
    placed = store_.Rename(put_dir.id, temp, parent->id, base, no_replace);
    if (placed.code() != StatusCode::kNotFound) break;
  }
  if (!placed.ok()) {
    if (placed.code() == StatusCode::kAlreadyExists) {
      return discard(AlreadyExistsError("'" + std::string(key) + "' exists"));
    }
    return discard(placed);
  }
  h.reset();
  FS_ASSIGN_OR_RETURN(store::Attr final_attr, store_.GetAttr(node));
  return InfoOf(std::string(key), final_attr);
}

Result<ObjectInfo> Objects::Head(const store::ShareInfo& bucket, std::string_view key) {
  FS_RETURN_IF_ERROR(ValidKey(key));
  bool folder = key.back() == '/';
  std::string_view path = folder ? key.substr(0, key.size() - 1) : key;
  auto a = store_.Resolve(bucket.name, path);
  if (a.status().code() == StatusCode::kNotFound ||
      a.status().code() == StatusCode::kInvalidArgument) {
    return NotFoundError("no object '" + std::string(key) + "'");
  }
  if (!a.ok()) return a.status();
  if (folder != (a->type == store::NodeType::kDirectory) || a->type == store::NodeType::kSymlink) {
    return NotFoundError("no object '" + std::string(key) + "'");
  }
  if (folder) {
    ObjectInfo info;
    info.key = std::string(key);
    info.attr = *a;
    info.meta.etag = crypto::ToHex(crypto::Digest::Md5(""));
    info.meta.data_gen = a->data_gen;
    return info;
  }
  return InfoOf(std::string(key), *a);
}

Result<std::unique_ptr<store::FileHandle>> Objects::Open(const ObjectInfo& info) {
  return store_.OpenFile(info.attr.id, /*writable=*/false);
}

Status Objects::SetMeta(const ObjectInfo& info, ObjectMeta meta) {
  if (info.attr.type != store::NodeType::kFile) {
    return InvalidArgumentError("a folder has no metadata");
  }
  if (info.meta_current()) {
    meta.etag = info.meta.etag;
    meta.checksums = info.meta.checksums;
    meta.data_gen = info.meta.data_gen;
    if (meta.content_md5.empty()) meta.content_md5 = info.meta.content_md5;
  } else {
    meta.etag.clear();
    meta.checksums.clear();
    meta.data_gen = 0;
  }
  return store_.SetXattr(info.attr.id, kMetaXattr, meta.ToJson());
}

Status Objects::Delete(const store::ShareInfo& bucket, std::string_view key,
                       std::string_view keep) {
  FS_RETURN_IF_ERROR(ValidKey(key));
  bool folder = key.back() == '/';
  std::string_view path = folder ? key.substr(0, key.size() - 1) : key;
  auto a = store_.Resolve(bucket.name, path);
  if (!a.ok()) {
    if (a.status().code() == StatusCode::kInvalidArgument) return NotFoundError("no such object");
    return a.status();
  }
  if (folder) {
    if (a->type != store::NodeType::kDirectory) return NotFoundError("no such folder");
    Status s = store_.Rmdir(a->parent, BasePart(path));
    // A folder still holding objects stays (its marker is gone, its objects are not).
    if (!s.ok() && s.code() != StatusCode::kFailedPrecondition) return s;
  } else {
    if (a->type == store::NodeType::kDirectory)
      return NotFoundError("no object '" + std::string(key) + "'");
    FS_RETURN_IF_ERROR(store_.Unlink(a->parent, BasePart(path)));
  }
  // Folders left empty go too, as in S3 where a folder exists only through its objects.
  store::NodeId stop = bucket.root;
  if (!keep.empty()) {
    auto k = store_.Resolve(bucket.name, keep.substr(0, keep.size() - (keep.back() == '/')));
    if (k.ok()) stop = k->id;
  }
  store::NodeId dir = a->parent;
  while (dir != bucket.root && dir != stop) {
    auto d = store_.GetAttr(dir);
    if (!d.ok() || d->parent == store::kNoNode) break;
    if (!store_.Rmdir(d->parent, d->name).ok()) break;
    dir = d->parent;
  }
  return Status::Ok();
}

namespace {

struct Lister {
  store::Store& store;
  const store::ShareInfo& bucket;
  std::string_view prefix;
  std::string_view delim;
  std::string_view marker;
  size_t max;
  ListResult out;
  std::string last_prefix;
  bool done = false;

  // Adds an entry; after `max` entries, a further one only marks the listing truncated.
  void Emit(ListEntry e) {
    if (out.entries.size() >= max) {
      out.truncated = true;
      done = true;
      return;
    }
    out.next_marker = e.key;
    out.entries.push_back(std::move(e));
  }

  // A common prefix, when it has not been listed (or passed by the marker) already.
  void EmitPrefix(const std::string& cp) {
    if (cp == last_prefix) return;
    last_prefix = cp;
    if (cp <= marker && !(std::string_view(marker).starts_with(cp) && marker != cp)) return;
    if (std::string_view(marker).starts_with(cp) && marker == cp) return;
    Emit({cp, true, {}});
  }

  Status Walk(store::NodeId dir, const std::string& dir_key, bool at_root,
              const std::function<Result<ObjectInfo>(std::string, const store::Attr&)>& info_of) {
    std::vector<std::pair<std::string, store::Attr>> children;
    std::string after;
    for (;;) {
      FS_ASSIGN_OR_RETURN(auto page, store.ReadDir(dir, after, 1000));
      if (page.empty()) break;
      after = page.back().name;
      for (store::Attr& a : page) {
        if (at_root && a.name == kStagingDir) continue;
        if (a.type == store::NodeType::kSymlink) continue;
        std::string sort = a.type == store::NodeType::kDirectory ? a.name + "/" : a.name;
        children.emplace_back(std::move(sort), std::move(a));
      }
      if (page.size() < 1000) break;
    }
    std::sort(children.begin(), children.end(),
              [](const auto& x, const auto& y) { return x.first < y.first; });
    for (auto& [sort, a] : children) {
      if (done) return Status::Ok();
      std::string full = dir_key + sort;
      bool is_dir = a.type == store::NodeType::kDirectory;
      if (is_dir) {
        bool under = full.starts_with(prefix);
        if (!under && !std::string_view(prefix).starts_with(full)) continue;
        if (full < marker && !std::string_view(marker).starts_with(full)) continue;
        if (under && !delim.empty()) {
          size_t pos = std::string_view(full).substr(prefix.size()).find(delim);
          if (pos != std::string::npos) {
            EmitPrefix(full.substr(0, prefix.size() + pos + delim.size()));
            continue;
          }
        }
        FS_RETURN_IF_ERROR(Walk(a.id, full, false, info_of));
        continue;
      }
      if (!full.starts_with(prefix)) continue;
      if (!delim.empty()) {
        size_t pos = std::string_view(full).substr(prefix.size()).find(delim);
        if (pos != std::string::npos) {
          EmitPrefix(full.substr(0, prefix.size() + pos + delim.size()));
          continue;
        }
      }
      if (full <= marker) continue;
      FS_ASSIGN_OR_RETURN(ObjectInfo info, info_of(full, a));
      Emit({full, false, std::move(info)});
    }
    return Status::Ok();
  }
};

}  // namespace

Result<ListResult> Objects::List(const store::ShareInfo& bucket, std::string_view prefix,
                                 std::string_view delimiter, std::string_view marker, size_t max) {
  Lister l{store_, bucket, prefix, delimiter, marker, max, {}, {}, false};
  if (max == 0) return l.out;
  FS_RETURN_IF_ERROR(l.Walk(bucket.root, "", true, [this](std::string key, const store::Attr& a) {
    return InfoOf(std::move(key), a);
  }));
  if (!l.out.truncated) l.out.next_marker.clear();
  return std::move(l.out);
}

// --- Staging ---

Result<uint64_t> Objects::PutStaged(const store::ShareInfo& bucket, std::string_view rel,
                                    const Source& body, std::string* md5_raw,
                                    const StageOptions& opts) {
  FS_ASSIGN_OR_RETURN(store::Attr staging, StagingRoot(bucket));
  FS_ASSIGN_OR_RETURN(store::Attr put_dir, EnsureDirs(staging.id, kPutDir));
  store::Attr dir;
  if (opts.make_dirs) {
    FS_ASSIGN_OR_RETURN(dir, EnsureDirs(staging.id, DirPart(rel)));
  } else {
    FS_ASSIGN_OR_RETURN(dir, StatStaged(bucket, DirPart(rel)));
  }
  std::string temp = RandomName();
  FS_ASSIGN_OR_RETURN(auto h, store_.Create(put_dir.id, temp, {0600, 0, 0}));
  store::NodeId node = h->node();
  std::string md5;
  auto size = CopyInto(body, *h, &md5);
  Status s = size.status();
  if (s.ok()) s = h->Close();
  h.reset();
  if (s.ok() && opts.verify) s = opts.verify(md5, *size, node);
  if (s.ok()) s = store_.Rename(put_dir.id, temp, dir.id, BasePart(rel));
  if (s.ok() && md5_raw != nullptr) *md5_raw = md5;
  if (!s.ok()) {
    (void)store_.Unlink(put_dir.id, temp);
    return s;
  }
  return *size;
}

Result<store::Attr> Objects::StatStaged(const store::ShareInfo& bucket, std::string_view rel) {
  return store_.Resolve(bucket.name, std::string(kStagingDir) + "/" + std::string(rel));
}

Result<std::unique_ptr<store::FileHandle>> Objects::OpenStaged(const store::ShareInfo& bucket,
                                                               std::string_view rel) {
  FS_ASSIGN_OR_RETURN(store::Attr a, StatStaged(bucket, rel));
  return store_.OpenFile(a.id, false);
}

Result<std::vector<store::Attr>> Objects::ListStaged(const store::ShareInfo& bucket,
                                                     std::string_view rel) {
  FS_ASSIGN_OR_RETURN(store::Attr dir, StatStaged(bucket, rel));
  std::vector<store::Attr> out;
  std::string after;
  for (;;) {
    FS_ASSIGN_OR_RETURN(auto page, store_.ReadDir(dir.id, after, 1000));
    if (page.empty()) break;
    after = page.back().name;
    for (auto& a : page) out.push_back(std::move(a));
    if (page.size() < 1000) break;
  }
  return out;
}

Status Objects::SetStagedXattr(const store::ShareInfo& bucket, std::string_view rel,
                               std::string_view name, std::string_view value) {
  auto a = StatStaged(bucket, rel);
  if (a.status().code() == StatusCode::kNotFound) {
    FS_ASSIGN_OR_RETURN(store::Attr staging, StagingRoot(bucket));
    a = EnsureDirs(staging.id, rel);  // a folder (an upload's)
  }
  if (!a.ok()) return a.status();
  return store_.SetXattr(a->id, name, value);
}

Result<std::string> Objects::GetStagedXattr(const store::ShareInfo& bucket, std::string_view rel,
                                            std::string_view name) {
  FS_ASSIGN_OR_RETURN(store::Attr a, StatStaged(bucket, rel));
  return store_.GetXattr(a.id, name);
}

Status Objects::RemoveTree(store::NodeId parent, const store::Attr& a) {
  if (a.type == store::NodeType::kDirectory) {
    for (;;) {
      FS_ASSIGN_OR_RETURN(auto page, store_.ReadDir(a.id, "", 1000));
      if (page.empty()) break;
      for (const store::Attr& c : page) FS_RETURN_IF_ERROR(RemoveTree(a.id, c));
    }
    return store_.Rmdir(parent, a.name);
  }
  return store_.Unlink(parent, a.name);
}

Status Objects::RemoveStaged(const store::ShareInfo& bucket, std::string_view rel) {
  auto a = StatStaged(bucket, rel);
  if (a.status().code() == StatusCode::kNotFound) return Status::Ok();
  if (!a.ok()) return a.status();
  return RemoveTree(a->parent, *a);
}

Status Objects::CleanStaging() {
  FS_ASSIGN_OR_RETURN(auto shares, store_.ListShares());
  for (const store::ShareInfo& s : shares) {
    FS_RETURN_IF_ERROR(RemoveStaged(s, kPutDir));
  }
  return Status::Ok();
}

std::string XmlEscape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '&':
        out += "&amp;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        // XML 1.0 cannot carry most control characters, even escaped.
        if (static_cast<unsigned char>(c) < 0x20 && c != '\t' && c != '\n' && c != '\r') {
          out += "&#xFFFD;";
        } else {
          out += c;
        }
    }
  }
  return out;
}

}  // namespace fieldstack::frontends::objects
