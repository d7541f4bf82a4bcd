// Reference-model test: thousands of seeded random operations against the Store and a simple
// in-memory model, compared after every operation and in full at intervals and after reopens.
// The seed comes from FS_SEED when set, otherwise from the clock, and is printed on failure.

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "store/store.h"
#include "test/support/temp_dir.h"

namespace fieldstack::store {
namespace {

struct ModelNode {
  NodeType type = NodeType::kFile;
  std::vector<uint8_t> data;
  uint32_t mode = 0644;
  std::string target;
  std::map<std::string, std::string> xattrs;
};

class Model {
 public:
  std::map<std::string, ModelNode> nodes;  // share-relative path -> node
  bool Exists(const std::string& p) const { return nodes.count(p) > 0; }
  bool IsDir(const std::string& p) const {
    return p.empty() || (Exists(p) && nodes.at(p).type == NodeType::kDirectory);
  }
  bool HasChildren(const std::string& p) const {
    auto it = nodes.upper_bound(p + "/");
    return it != nodes.end() && it->first.starts_with(p + "/");
  }
  void RenameTree(const std::string& from, const std::string& to) {
    std::map<std::string, ModelNode> moved;
    for (auto it = nodes.begin(); it != nodes.end();) {
      if (it->first == from || it->first.starts_with(from + "/")) {
        moved[to + it->first.substr(from.size())] = std::move(it->second);
        it = nodes.erase(it);
      } else {
        ++it;
      }
    }
    for (auto& [k, v] : moved) nodes[k] = std::move(v);
  }
};

std::string Parent(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? "" : p.substr(0, s);
}
std::string Base(const std::string& p) {
  auto s = p.rfind('/');
  return s == std::string::npos ? p : p.substr(s + 1);
}

class StoreModelTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* env = std::getenv("FS_SEED");
    seed_ =
        env ? std::strtoull(env, nullptr, 10)
            : static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());
    rng_.seed(seed_);
    Reopen();
    ASSERT_TRUE(store_->CreateShare("m", ShareKind::kCloud).ok());
  }

  void Reopen() {
    store_.reset();
    StoreOptions o;
    o.data_dir = dir_.path() + "/data";
    o.chunk_size_bytes = 4096;
    auto s = Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
  }

  NodeId Id(const std::string& path) {
    auto a = store_->Resolve("m", path);
    EXPECT_TRUE(a.ok()) << path << ": " << a.status().ToString();
    return a.ok() ? a->id : kNoNode;
  }

  std::string RandomPath() {
    static const char* kDirs[] = {"", "d0", "d1", "d0/e"};
    static const char* kNames[] = {"a", "b", "c", "d0", "d1", "e", "long-name"};
    std::string dir = kDirs[Rand(4)];
    std::string name = kNames[Rand(7)];
    return dir.empty() ? name : dir + "/" + name;
  }

  uint64_t Rand(uint64_t n) { return n == 0 ? 0 : rng_() % n; }

  std::vector<uint8_t> RandomBytes(size_t n) {
    std::vector<uint8_t> v(n);
    for (auto& b : v) b = static_cast<uint8_t>(rng_());
    return v;
  }

  void CheckFile(const std::string& path) {
    const ModelNode& m = model_.nodes.at(path);
    NodeId id = Id(path);
    auto attr = store_->GetAttr(id);
    ASSERT_TRUE(attr.ok());
    ASSERT_EQ(attr->type, m.type) << path;
    EXPECT_EQ(attr->mode, m.mode) << path;
    if (m.type == NodeType::kSymlink) {
      EXPECT_EQ(attr->symlink_target, m.target);
      return;
    }
    if (m.type != NodeType::kFile) return;
    ASSERT_EQ(attr->size, m.data.size()) << path;
    auto h = store_->OpenFile(id, false);
    ASSERT_TRUE(h.ok());
    std::vector<uint8_t> got(m.data.size());
    auto n = (*h)->Read(0, got);
    ASSERT_TRUE(n.ok()) << n.status().ToString();
    ASSERT_EQ(*n, m.data.size());
    ASSERT_TRUE(got == m.data) << "content of " << path << " differs";
  }

  void CheckAll() {
    // Every model node exists with the right content; the store has nothing else.
    size_t count = 0;
    std::vector<std::pair<NodeId, std::string>> stack = {{store_->GetShare("m")->root, ""}};
    while (!stack.empty()) {
      auto [dir, prefix] = stack.back();
      stack.pop_back();
      std::string after;
      for (;;) {
        auto page = store_->ReadDir(dir, after, 3);
        ASSERT_TRUE(page.ok());
        if (page->empty()) break;
        for (const Attr& a : *page) {
          std::string path = prefix.empty() ? a.name : prefix + "/" + a.name;
          ASSERT_TRUE(model_.Exists(path)) << "unexpected " << path;
          ++count;
          if (a.type == NodeType::kDirectory) stack.push_back({a.id, path});
          after = a.name;
        }
      }
    }
    ASSERT_EQ(count, model_.nodes.size());
    for (auto& [path, node] : model_.nodes) {
      CheckFile(path);
      if (::testing::Test::HasFatalFailure()) return;
    }
  }

  void Step() {
    std::string p = RandomPath();
    std::string parent = Parent(p);
    bool parent_ok = model_.IsDir(parent);
    uint64_t op = Rand(100);
    if (op < 20) {  // create + write
      auto pid = parent_ok ? Id(parent) : kNoNode;
      if (!parent_ok) return;
      auto data = RandomBytes(Rand(20000));
      auto h = store_->Create(pid, Base(p), {0640});
      if (model_.Exists(p)) {
        ASSERT_EQ(h.status().code(), StatusCode::kAlreadyExists) << p;
        return;
      }
      ASSERT_TRUE(h.ok()) << h.status().ToString();
      ASSERT_TRUE((*h)->Write(0, data).ok());
      ASSERT_TRUE((*h)->Close().ok());
      model_.nodes[p] = {NodeType::kFile, data, 0640, "", {}};
    } else if (op < 40) {  // write into an existing file, maybe with a sync and a read between
      if (!model_.Exists(p) || model_.nodes[p].type != NodeType::kFile) return;
      auto& m = model_.nodes[p];
      auto h = store_->OpenFile(Id(p), true);
      ASSERT_TRUE(h.ok());
      for (int k = 0, n = 1 + static_cast<int>(Rand(3)); k < n; ++k) {
        uint64_t off = Rand(m.data.size() + 6000);
        auto data = RandomBytes(1 + Rand(9000));
        ASSERT_TRUE((*h)->Write(off, data).ok());
        if (m.data.size() < off + data.size()) m.data.resize(off + data.size(), 0);
        std::copy(data.begin(), data.end(), m.data.begin() + off);
        if (Rand(3) == 0) {
          ASSERT_TRUE((*h)->Sync().ok());
        }
        if (Rand(3) == 0) {  // reads see uncommitted writes
          uint64_t roff = Rand(m.data.size());
          std::vector<uint8_t> got(Rand(10000));
          auto r = (*h)->Read(roff, got);
          ASSERT_TRUE(r.ok());
          size_t want = std::min<size_t>(got.size(), m.data.size() - roff);
          ASSERT_EQ(*r, want);
          ASSERT_TRUE(std::equal(got.begin(), got.begin() + want, m.data.begin() + roff));
        }
      }
      ASSERT_TRUE((*h)->Close().ok());
    } else if (op < 50) {  // truncate
      if (!model_.Exists(p) || model_.nodes[p].type != NodeType::kFile) return;
      SetAttrRequest r;
      r.size = Rand(30000);
      ASSERT_TRUE(store_->SetAttr(Id(p), r).ok());
      model_.nodes[p].data.resize(*r.size, 0);
    } else if (op < 60) {  // mkdir
      if (!parent_ok) return;
      auto s = store_->Mkdir(Id(parent), Base(p), {0755});
      if (model_.Exists(p)) {
        ASSERT_EQ(s.status().code(), StatusCode::kAlreadyExists);
        return;
      }
      ASSERT_TRUE(s.ok()) << s.status().ToString();
      model_.nodes[p] = {NodeType::kDirectory, {}, 0755, "", {}};
    } else if (op < 68) {  // unlink or rmdir
      if (!parent_ok) return;
      NodeId pid = Id(parent);
      if (!model_.Exists(p)) {
        ASSERT_EQ(store_->Unlink(pid, Base(p)).code(), StatusCode::kNotFound);
        return;
      }
      if (model_.nodes[p].type == NodeType::kDirectory) {
        Status s = store_->Rmdir(pid, Base(p));
        if (model_.HasChildren(p)) {
          ASSERT_EQ(s.code(), StatusCode::kFailedPrecondition);
        } else {
          ASSERT_TRUE(s.ok()) << s.ToString();
          model_.nodes.erase(p);
        }
      } else {
        ASSERT_TRUE(store_->Unlink(pid, Base(p)).ok());
        model_.nodes.erase(p);
      }
    } else if (op < 80) {  // rename
      std::string q = RandomPath();
      if (!model_.Exists(p) || !model_.IsDir(Parent(q)) || p == q) return;
      Status s = store_->Rename(Id(parent), Base(p), Id(Parent(q)), Base(q));
      const ModelNode& src = model_.nodes[p];
      bool into_self = src.type == NodeType::kDirectory && (q + "/").starts_with(p + "/");
      bool dst = model_.Exists(q);
      if (into_self) {
        ASSERT_FALSE(s.ok());
        return;
      }
      if (dst) {
        const ModelNode& d = model_.nodes[q];
        bool src_dir = src.type == NodeType::kDirectory;
        bool dst_dir = d.type == NodeType::kDirectory;
        if (src_dir != dst_dir || (dst_dir && model_.HasChildren(q))) {
          ASSERT_FALSE(s.ok()) << p << " -> " << q;
          return;
        }
        model_.nodes.erase(q);
      }
      ASSERT_TRUE(s.ok()) << p << " -> " << q << ": " << s.ToString();
      model_.RenameTree(p, q);
    } else if (op < 85) {  // chmod
      if (!model_.Exists(p)) return;
      SetAttrRequest r;
      r.mode = 0600 | static_cast<uint32_t>(Rand(0100));
      ASSERT_TRUE(store_->SetAttr(Id(p), r).ok());
      model_.nodes[p].mode = *r.mode;
    } else if (op < 90) {  // symlink
      if (!parent_ok) return;
      auto s = store_->Symlink(Id(parent), Base(p), "target-" + std::to_string(Rand(100)), {});
      if (model_.Exists(p)) {
        ASSERT_EQ(s.status().code(), StatusCode::kAlreadyExists);
        return;
      }
      ASSERT_TRUE(s.ok());
      model_.nodes[p] = {NodeType::kSymlink, {}, 0777, s->symlink_target, {}};
    } else if (op < 95) {  // xattr
      if (!model_.Exists(p)) return;
      std::string name = "user.k" + std::to_string(Rand(3));
      std::string value(Rand(100), 'v');
      ASSERT_TRUE(store_->SetXattr(Id(p), name, value).ok());
      model_.nodes[p].xattrs[name] = value;
      auto got = store_->GetXattr(Id(p), name);
      ASSERT_TRUE(got.ok());
      ASSERT_EQ(*got, value);
    } else if (op < 97) {
      Reopen();
      CheckAll();
    } else {
      CheckAll();
    }
    if (model_.Exists(p) && !::testing::Test::HasFatalFailure()) CheckFile(p);
  }

  uint64_t seed_ = 0;
  std::mt19937_64 rng_;
  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  Model model_;
};

TEST_F(StoreModelTest, RandomOperationsMatchModel) {
  const int ops = std::getenv("FS_MODEL_OPS") ? std::atoi(std::getenv("FS_MODEL_OPS")) : 10000;
  for (int i = 0; i < ops; ++i) {
    Step();
    if (HasFatalFailure()) {
      ADD_FAILURE() << "reproduce with FS_SEED=" << seed_ << " (failed at operation " << i << ")";
      return;
    }
  }
  CheckAll();
  if (HasFatalFailure()) ADD_FAILURE() << "reproduce with FS_SEED=" << seed_;
}

}  // namespace
}  // namespace fieldstack::store
