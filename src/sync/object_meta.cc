#include "sync/object_meta.h"

#include <algorithm>
#include <charconv>
#include <set>

#include "crypto/hash.h"

namespace fieldstack::sync {
namespace {

size_t VarintSize(uint64_t v) {
  size_t n = 1;
  while (v >= 0x80) {
    v >>= 7;
    ++n;
  }
  return n;
}

void PutVarint(std::string& out, uint64_t v) {
  while (v >= 0x80) {
    out.push_back(static_cast<char>((v & 0x7f) | 0x80));
    v >>= 7;
  }
  out.push_back(static_cast<char>(v));
}

// Reads a varint of at most 32 bits from `in` at `pos`; false when truncated or too long.
bool GetVarint(std::string_view in, size_t& pos, uint32_t& v) {
  uint64_t r = 0;
  for (int shift = 0; shift < 35; shift += 7) {
    if (pos >= in.size()) return false;
    auto b = static_cast<uint8_t>(in[pos++]);
    r |= uint64_t{b & 0x7fu} << shift;
    if ((b & 0x80) == 0) {
      if (r > UINT32_MAX) return false;
      v = static_cast<uint32_t>(r);
      return true;
    }
  }
  return false;
}

size_t PairSize(const std::pair<std::string, std::string>& x) {
  return VarintSize(x.first.size()) + x.first.size() + VarintSize(x.second.size()) +
         x.second.size();
}

size_t Base64Size(size_t raw) { return 4 * ((raw + 2) / 3); }

template <typename T>
std::optional<T> ParseDecimal(const cloud::ObjectMeta& meta, const char* key) {
  auto it = meta.find(key);
  if (it == meta.end()) return std::nullopt;
  const std::string& s = it->second;
  T v{};
  auto [end, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || end != s.data() + s.size() || s.empty()) return std::nullopt;
  return v;
}

}  // namespace

bool IsInternalXattr(std::string_view name) {
  return name.starts_with("fieldstack.") || name.starts_with("user.fieldstack.");
}

cloud::ObjectMeta EncodeFileMeta(const store::Attr& attr,
                                 const std::vector<std::pair<std::string, std::string>>& xattrs,
                                 size_t budget_bytes) {
  cloud::ObjectMeta meta = {{"mtime_ns", std::to_string(attr.mtime_ns)},
                            {"mode", std::to_string(attr.mode)},
                            {"uid", std::to_string(attr.uid)},
                            {"gid", std::to_string(attr.gid)}};
  size_t fixed = 0;
  for (const auto& [k, v] : meta) fixed += k.size() + v.size();

  std::vector<size_t> sent;  // indexes into xattrs, in their order
  size_t raw = 0;
  for (size_t i = 0; i < xattrs.size(); ++i) {
    if (xattrs[i].first.empty() || IsInternalXattr(xattrs[i].first)) continue;
    sent.push_back(i);
    raw += PairSize(xattrs[i]);
  }
  auto cost = [&](size_t raw_bytes, bool partial) {
    size_t c = fixed;
    if (raw_bytes > 0) c += sizeof(kXattrsMetaKey) - 1 + Base64Size(raw_bytes);
    if (partial) c += sizeof(kXattrsPartialMetaKey) - 1 + 1;
    return c;
  };
  bool partial = false;
  if (cost(raw, false) > budget_bytes) {
    // Leave out the largest first: one large ACL should not cost many small attributes.
    partial = true;
    std::vector<size_t> by_size = sent;
    std::stable_sort(by_size.begin(), by_size.end(),
                     [&](size_t a, size_t b) { return PairSize(xattrs[a]) > PairSize(xattrs[b]); });
    std::set<size_t> dropped;
    for (size_t i : by_size) {
      if (cost(raw, true) <= budget_bytes) break;
      raw -= PairSize(xattrs[i]);
      dropped.insert(i);
    }
    std::erase_if(sent, [&](size_t i) { return dropped.contains(i); });
  }
  if (!sent.empty()) {
    std::string blob;
    blob.reserve(raw);
    for (size_t i : sent) {
      PutVarint(blob, xattrs[i].first.size());
      blob += xattrs[i].first;
      PutVarint(blob, xattrs[i].second.size());
      blob += xattrs[i].second;
    }
    meta[kXattrsMetaKey] = crypto::Base64(blob);
  }
  // Said even when the budget cannot hold it: a missing ACL must never look like "no ACL".
  if (partial) meta[kXattrsPartialMetaKey] = "1";
  return meta;
}

FileMeta DecodeFileMeta(const cloud::ObjectMeta& meta) {
  FileMeta m;
  m.mtime_ns = ParseDecimal<int64_t>(meta, "mtime_ns");
  m.mode = ParseDecimal<uint32_t>(meta, "mode");
  // Permission bits only; a larger value was written by another tool (rclone writes octal
  // with the file type bits) and is not ours to interpret.
  if (m.mode && *m.mode > 07777) m.mode.reset();
  m.uid = ParseDecimal<uint32_t>(meta, "uid");
  m.gid = ParseDecimal<uint32_t>(meta, "gid");
  if (auto p = meta.find(kXattrsPartialMetaKey); p != meta.end() && p->second == "1") {
    m.xattrs_complete = false;
  }
  auto x = meta.find(kXattrsMetaKey);
  if (x == meta.end()) return m;
  std::string blob = crypto::Base64Decode(x->second);
  if (blob.empty()) {  // not base64 (an empty list is never sent)
    m.xattrs_complete = false;
    return m;
  }
  std::string_view in = blob;
  size_t pos = 0;
  while (pos < in.size()) {
    uint32_t name_len = 0, value_len = 0;
    if (!GetVarint(in, pos, name_len) || name_len > in.size() - pos) break;
    std::string_view name = in.substr(pos, name_len);
    pos += name_len;
    if (!GetVarint(in, pos, value_len) || value_len > in.size() - pos) break;
    std::string_view value = in.substr(pos, value_len);
    pos += value_len;
    if (name.empty() || name.size() > store::kMaxNameBytes ||
        value.size() > store::kMaxXattrValueBytes) {
      m.xattrs_complete = false;  // not one the Store could hold: left out
      continue;
    }
    if (IsInternalXattr(name)) continue;
    m.xattrs.emplace_back(name, value);
  }
  if (pos != in.size()) {  // truncated: trust none of it
    m.xattrs.clear();
    m.xattrs_complete = false;
  }
  return m;
}

}  // namespace fieldstack::sync
