// The Store's side of cache tiering: eviction, recall through CacheHooks, stubs from a refresh,
// the schema upgrade. The cloud here is a map of bytes; src/sync tests the real Recaller.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <cstring>
#include <map>
#include <thread>

#include "common/mutex.h"
#include "crypto/hash.h"
#include "store/store.h"
#include "test/support/pattern.h"
#include "test/support/temp_dir.h"

namespace fieldstack::store {
namespace {

using testing::Pattern;

// Objects by key; counts fetches per (key, offset); can fail, stall or refuse room.
class FakeCloud : public CacheHooks {
 public:
  Status Admit(uint32_t, uint64_t bytes) override {
    admitted += bytes;
    return refuse_room ? NoSpaceError("cache full") : Status::Ok();
  }
  Status Fetch(uint32_t, const CloudCopy& copy, uint64_t offset, std::span<uint8_t> out) override {
    {
      MutexLock l(mu);
      ++fetches[{copy.key, offset}];
      max_concurrent = std::max(max_concurrent, ++concurrent);
    }
    while (stall.load()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    std::this_thread::sleep_for(std::chrono::microseconds(200));
    struct Done {
      FakeCloud* c;
      ~Done() {
        MutexLock l(c->mu);
        --c->concurrent;
      }
    } done{this};
    if (down.load() || offset >= fail_from.load()) return UnavailableError("cloud down");
    MutexLock l(mu);
    auto it = objects.find(copy.key);
    if (it == objects.end()) return NotFoundError("no object " + copy.key);
    if (offset + out.size() > it->second.size()) return InvalidArgumentError("range past the end");
    std::memcpy(out.data(), it->second.data() + offset, out.size());
    return Status::Ok();
  }
  Status Confirm(uint32_t, const CloudCopy&) override { return Status::Ok(); }
  bool Pinned(uint32_t, std::string_view path) override { return path.starts_with("keep/"); }

  Mutex mu;
  std::map<std::string, std::vector<uint8_t>> objects;
  std::map<std::pair<std::string, uint64_t>, int> fetches;
  int concurrent = 0;
  int max_concurrent = 0;
  std::atomic<bool> down{false};
  std::atomic<bool> stall{false};
  std::atomic<bool> refuse_room{false};
  std::atomic<uint64_t> fail_from{UINT64_MAX};  // fetches at or past this offset fail
  std::atomic<uint64_t> admitted{0};
};

class StoreCacheTest : public ::testing::Test {
 protected:
  void SetUp() override { Reopen(); }

  void Reopen() {
    store_.reset();
    StoreOptions o;
    o.data_dir = dir_.path() + "/data";
    o.chunk_size_bytes = 4096;
    o.clock = &clock_;
    auto s = Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    store_->SetCacheHooks(&cloud_);
    auto share = store_->GetShare("s");
    if (!share.ok()) share = store_->CreateShare("s", ShareKind::kCloud);
    ASSERT_TRUE(share.ok());
    share_ = share->id;
    root_ = share->root;
  }

  // A file written, then "uploaded": the cloud holds its bytes and the Store records the copy
  // (parts of 8 KiB, MD5s as the uploader records them).
  NodeId CleanFile(std::string_view name, const std::vector<uint8_t>& data) {
    auto h = store_->Create(root_, name, {});
    EXPECT_TRUE(h.ok());
    EXPECT_TRUE((*h)->Write(0, data).ok());
    EXPECT_TRUE((*h)->Close().ok());
    NodeId id = (*h)->node();
    EXPECT_TRUE(store_->EnqueueUploads("uploader", 1000).ok());
    auto due = store_->DueUploads(INT64_MAX, 1000);
    EXPECT_TRUE(due.ok());
    for (const UploadItem& item : *due) {
      if (item.node != id) continue;
      CloudCopy copy{std::string(name), "etag-" + std::string(name), data.size(), 8192, "", ""};
      for (size_t off = 0; off < data.size(); off += 8192) {
        crypto::Digest d(crypto::Digest::Kind::kMd5);
        d.Update({data.data() + off, std::min<size_t>(8192, data.size() - off)});
        copy.part_md5s += d.Final();
      }
      EXPECT_TRUE(
          store_->FinishUpload(item, FileState::kClean, copy.key, copy.etag, "", &copy).ok());
    }
    MutexLock l(cloud_.mu);
    cloud_.objects[std::string(name)] = data;
    return id;
  }

  size_t EvictAll() {
    auto c = store_->EvictionCandidates(share_, INT64_MIN, 0, 1000);
    EXPECT_TRUE(c.ok());
    auto n = store_->Evict(*c);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    return n.ok() ? *n : 0;
  }

  Result<std::vector<uint8_t>> ReadAll(NodeId id) {
    FS_ASSIGN_OR_RETURN(auto h, store_->OpenFile(id, false));
    FS_ASSIGN_OR_RETURN(Attr a, store_->GetAttr(id));
    std::vector<uint8_t> out(a.size);
    FS_ASSIGN_OR_RETURN(size_t n, h->Read(0, out));
    out.resize(n);
    return out;
  }

  std::string State(NodeId id) {
    auto s = store_->GetXattr(id, Store::kCacheStateXattr);
    return s.ok() ? *s : s.status().ToString();
  }

  FakeClock clock_;
  testing::TempDir dir_;
  FakeCloud cloud_;
  std::unique_ptr<Store> store_;
  uint32_t share_ = 0;
  NodeId root_ = 0;
};

TEST_F(StoreCacheTest, EvictedFileKeepsItsMetadataAndIsRecalledOnRead) {
  auto data = Pattern(50'000, 1);
  NodeId id = CleanFile("a.bin", data);
  ASSERT_TRUE(store_->SetXattr(id, "user.DOSATTRIB", "dos").ok());
  EXPECT_EQ(State(id), "resident");
  auto before = store_->GetCacheUsage(share_);
  ASSERT_TRUE(before.ok());
  EXPECT_EQ(before->resident_bytes, data.size());
  EXPECT_EQ(EvictAll(), 1u);
  EXPECT_EQ(State(id), "stub");
  auto attr = store_->GetAttr(id);
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size, data.size());
  EXPECT_EQ(attr->state, FileState::kStub);
  EXPECT_EQ(*store_->GetXattr(id, "user.DOSATTRIB"), "dos");
  auto after = store_->GetCacheUsage(share_);
  EXPECT_EQ(after->resident_bytes, 0u);
  EXPECT_EQ(after->stub_bytes, data.size());
  EXPECT_EQ(after->stub_files, 1u);

  auto back = ReadAll(id);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, data);
  EXPECT_EQ(State(id), "resident");
  EXPECT_EQ(store_->GetAttr(id)->state, FileState::kClean);
  // Recalled once, and resident across a restart.
  Reopen();
  cloud_.down = true;
  auto again = ReadAll(id);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_EQ(*again, data);
}

TEST_F(StoreCacheTest, EvictionSkipsOpenDirtyAndChangedFilesAndOrdersByUse) {
  NodeId a = CleanFile("a", Pattern(10'000, 1));
  clock_.Advance(std::chrono::seconds(1));
  NodeId b = CleanFile("b", Pattern(10'000, 2));
  clock_.Advance(std::chrono::seconds(1));
  NodeId c = CleanFile("c", Pattern(10'000, 3));
  clock_.Advance(std::chrono::seconds(1));
  // Reading a makes it the most recently used.
  ASSERT_TRUE(ReadAll(a).ok());
  ASSERT_TRUE(store_->FlushAccessTimes().ok());
  auto cands = store_->EvictionCandidates(share_, INT64_MIN, 0, 10);
  ASSERT_TRUE(cands.ok());
  ASSERT_EQ(cands->size(), 3u);
  EXPECT_EQ((*cands)[0].node, b);
  EXPECT_EQ((*cands)[1].node, c);
  EXPECT_EQ((*cands)[2].node, a);
  // Paging continues after the last one.
  auto next = store_->EvictionCandidates(share_, (*cands)[0].used_ns, b, 10);
  ASSERT_EQ(next->size(), 2u);

  // b is open, c was written again since it was listed: only a goes.
  auto hb = store_->OpenFile(b, false);
  ASSERT_TRUE(hb.ok());
  {
    auto hc = store_->OpenFile(c, true);
    ASSERT_TRUE((*hc)->Write(0, Pattern(10, 9)).ok());
  }
  auto n = store_->Evict(*cands);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(store_->GetAttr(a)->state, FileState::kStub);
  EXPECT_EQ(store_->GetAttr(b)->state, FileState::kClean);
  EXPECT_EQ(store_->GetAttr(c)->state, FileState::kDirty);
  EXPECT_EQ(State(c), "dirty");
  // A dirty file is never a candidate.
  auto left = store_->EvictionCandidates(share_, INT64_MIN, 0, 10);
  ASSERT_EQ(left->size(), 1u);
  EXPECT_EQ((*left)[0].node, b);
}

TEST_F(StoreCacheTest, ReadersShareOneRecallThatFetchesEachBlockOnce) {
  auto data = Pattern(200'000, 4);  // 25 blocks of 8 KiB
  NodeId id = CleanFile("big", data);
  EXPECT_EQ(EvictAll(), 1u);
  cloud_.stall = true;
  std::vector<std::thread> readers;
  std::atomic<int> good{0};
  for (int i = 0; i < 4; ++i) {
    readers.emplace_back([&, i] {
      auto h = store_->OpenFile(id, false);
      if (!h.ok()) return;
      std::vector<uint8_t> out(1000);
      uint64_t off = 20'000 * static_cast<uint64_t>(i);
      auto n = (*h)->Read(off, out);
      if (n.ok() && *n == 1000 && std::equal(out.begin(), out.end(), data.begin() + off)) ++good;
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  cloud_.stall = false;
  for (auto& t : readers) t.join();
  EXPECT_EQ(good.load(), 4);
  // The recall went on to the end of the file after the readers got their bytes.
  for (int i = 0; i < 2000 && store_->GetAttr(id)->state != FileState::kClean; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(store_->GetAttr(id)->state, FileState::kClean);
  MutexLock l(cloud_.mu);
  EXPECT_EQ(cloud_.fetches.size(), 25u);
  for (const auto& [key, n] : cloud_.fetches) EXPECT_EQ(n, 1) << key.second;
}

TEST_F(StoreCacheTest, CloudOutageFailsTheReadCleanlyAndALaterReadRecalls) {
  auto data = Pattern(30'000, 5);
  NodeId id = CleanFile("x", data);
  EXPECT_EQ(EvictAll(), 1u);
  cloud_.down = true;
  auto r = ReadAll(id);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), StatusCode::kUnavailable) << r.status().ToString();
  EXPECT_EQ(store_->GetAttr(id)->state, FileState::kStub);
  cloud_.down = false;
  auto back = ReadAll(id);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, data);
}

TEST_F(StoreCacheTest, OpeningAStubForWritingRecallsItWholeFirst) {
  auto data = Pattern(40'000, 6);
  NodeId id = CleanFile("w", data);
  EXPECT_EQ(EvictAll(), 1u);
  {
    auto h = store_->OpenFile(id, true);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    ASSERT_TRUE((*h)->Write(100, Pattern(10, 7)).ok());
  }
  auto back = ReadAll(id);
  ASSERT_TRUE(back.ok());
  auto want = data;
  auto patch = Pattern(10, 7);
  std::copy(patch.begin(), patch.end(), want.begin() + 100);
  EXPECT_EQ(*back, want);
  EXPECT_EQ(store_->GetAttr(id)->state, FileState::kDirty);
  // With the cloud down, a stub can't be opened for writing: a clear error, nothing lost.
  NodeId other = CleanFile("w2", data);
  EXPECT_EQ(EvictAll(), 1u);
  cloud_.down = true;
  auto h = store_->OpenFile(other, true);
  EXPECT_EQ(h.status().code(), StatusCode::kUnavailable);
  EXPECT_EQ(store_->GetAttr(other)->state, FileState::kStub);
  // Truncating recalls too.
  cloud_.down = false;
  SetAttrRequest req;
  req.size = 5;
  ASSERT_TRUE(store_->SetAttr(other, req).ok());
  auto cut = ReadAll(other);
  ASSERT_TRUE(cut.ok());
  EXPECT_EQ(*cut, std::vector<uint8_t>(data.begin(), data.begin() + 5));
}

TEST_F(StoreCacheTest, WritesAskTheHooksForRoomAndNoSpaceReachesTheWriter) {
  auto h = store_->Create(root_, "f", {});
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE((*h)->Write(0, Pattern(1000, 1)).ok());
  EXPECT_EQ(cloud_.admitted.load(), 1000u);
  cloud_.refuse_room = true;
  EXPECT_EQ((*h)->Write(1000, Pattern(1000, 1)).code(), StatusCode::kNoSpace);
  cloud_.refuse_room = false;
  ASSERT_TRUE((*h)->Close().ok());
  EXPECT_EQ(store_->GetAttr((*h)->node())->size, 1000u);
}

TEST_F(StoreCacheTest, StubsFromARefreshAreReplacedAndRemovedOnlyWhenUnchanged) {
  StubSpec spec;
  spec.cloud = {"dir/new.txt", "e1", 12'000, 8192, "", ""};
  spec.mtime_ns = 1234;
  spec.mode = 0640;
  spec.xattrs = {{"user.DOSATTRIB", "d"}};
  auto dir = store_->Mkdir(root_, "dir", {});
  ASSERT_TRUE(dir.ok());
  auto stub = store_->CreateStub(dir->id, "new.txt", spec);
  ASSERT_TRUE(stub.ok()) << stub.status().ToString();
  auto a = store_->GetAttr(stub->id);
  EXPECT_EQ(a->size, 12'000u);
  EXPECT_EQ(a->mode, 0640u);
  EXPECT_EQ(a->mtime_ns, 1234);
  EXPECT_EQ(a->state, FileState::kStub);
  EXPECT_EQ(*store_->GetXattr(stub->id, "user.DOSATTRIB"), "d");
  EXPECT_EQ(store_->CloudCopyOf(stub->id)->etag, "e1");
  // Not queued for upload: it came from the cloud.
  ASSERT_TRUE(store_->EnqueueUploads("uploader", 1000).ok());
  EXPECT_EQ(*store_->PendingUploads(), 0u);
  {
    MutexLock l(cloud_.mu);
    cloud_.objects["dir/new.txt"] = Pattern(12'000, 8);
  }
  EXPECT_EQ(*ReadAll(stub->id), Pattern(12'000, 8));

  // Changed in the cloud: replaced, if unchanged here.
  spec.cloud.etag = "e2";
  spec.cloud.size = 5;
  EXPECT_EQ(store_->ReplaceWithStub(stub->id, a->version - 1, spec).status().code(),
            StatusCode::kFailedPrecondition);
  a = store_->GetAttr(stub->id);
  // The recall's last fetch may still hold the file open for a moment ("is open": the
  // refresher then tries again later).
  auto r = store_->ReplaceWithStub(stub->id, a->version, spec);
  for (int i = 0; i < 100 && !r.ok() && r.status().message().find("open") != std::string::npos;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
    r = store_->ReplaceWithStub(stub->id, a->version, spec);
  }
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  EXPECT_EQ(r->size, 5u);
  EXPECT_EQ(r->state, FileState::kStub);
  {
    MutexLock l(cloud_.mu);
    cloud_.objects["dir/new.txt"] = Pattern(5, 9);
  }
  EXPECT_EQ(*ReadAll(stub->id), Pattern(5, 9));

  // Deletions: a refresh that did not see it lists it; removal needs the same version.
  ASSERT_TRUE(store_->MarkRefreshed({}, 7).ok());
  auto gone = store_->NotRefreshed(share_, "dir/", 7, 0, 10);
  ASSERT_TRUE(gone.ok());
  ASSERT_EQ(gone->size(), 1u);
  EXPECT_TRUE(store_->NotRefreshed(share_, "other/", 7, 0, 10)->empty());
  ASSERT_TRUE(store_->MarkRefreshed({stub->id}, 7).ok());
  EXPECT_TRUE(store_->NotRefreshed(share_, "dir/", 7, 0, 10)->empty());
  a = store_->GetAttr(stub->id);
  EXPECT_EQ(store_->RemoveIfUnchanged(stub->id, a->version + 1).code(),
            StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->RemoveIfUnchanged(stub->id, a->version).ok());
  EXPECT_EQ(store_->Lookup(dir->id, "new.txt").status().code(), StatusCode::kNotFound);

  // Bad input.
  StubSpec bad;
  EXPECT_EQ(store_->CreateStub(root_, "x", bad).status().code(), StatusCode::kInvalidArgument);
  bad.cloud = {"x", "e", 1, 0, "short", ""};
  EXPECT_EQ(store_->CreateStub(root_, "x", bad).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->SetXattr(root_, Store::kCacheStateXattr, "resident").code(),
            StatusCode::kPermissionDenied);
}

TEST_F(StoreCacheTest, PinnedStateAndPartialRecallsAreDroppedOnRestart) {
  auto d = store_->Mkdir(root_, "keep", {});
  ASSERT_TRUE(d.ok());
  auto h = store_->Create(d->id, "p", {});
  ASSERT_TRUE((*h)->Close().ok());
  EXPECT_EQ(State((*h)->node()), "dirty");
  EXPECT_EQ(State(d->id), "directory");

  auto data = Pattern(100'000, 3);
  NodeId id = CleanFile("half", data);
  EXPECT_EQ(EvictAll(), 1u);
  // A recall that gets part way, then the cloud goes down and the box restarts.
  cloud_.fail_from = 8192;  // the first block comes, the rest fail
  {
    auto f = store_->OpenFile(id, false);
    std::vector<uint8_t> out(100);
    ASSERT_TRUE((*f)->Read(0, out).ok());
  }
  Reopen();
  cloud_.fail_from = UINT64_MAX;
  EXPECT_EQ(store_->GetAttr(id)->state, FileState::kStub);
  auto back = ReadAll(id);
  ASSERT_TRUE(back.ok());
  EXPECT_EQ(*back, data);
}

TEST_F(StoreCacheTest, RecallsAreBoundedStopForDeletedFilesAndSurviveShutdown) {
  auto data = Pattern(400'000, 5);  // 49 blocks
  NodeId big = CleanFile("big", data);
  NodeId gone = CleanFile("gone", data);
  EXPECT_EQ(EvictAll(), 2u);
  // A whole-file recall keeps at most 4 blocks of the file in flight.
  ASSERT_TRUE(store_->Recall(big).ok());
  {
    MutexLock l(cloud_.mu);
    EXPECT_LE(cloud_.max_concurrent, 4);
  }
  EXPECT_EQ(store_->GetAttr(big)->state, FileState::kClean);
  // A stub deleted while it is recalled stops being fetched.
  cloud_.stall = true;
  std::thread reader([&] {
    auto h = store_->OpenFile(gone, false);
    std::vector<uint8_t> out(10);
    if (h.ok()) (void)(*h)->Read(0, out);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  ASSERT_TRUE(store_->Unlink(root_, "gone").ok());
  cloud_.stall = false;
  reader.join();
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  {
    MutexLock l(cloud_.mu);
    size_t n = 0;
    for (const auto& [key, count] : cloud_.fetches) n += key.first == "gone" ? 1 : 0;
    EXPECT_LE(n, 8u) << "fetches of a deleted file went on";
  }
  // Shutting down in the middle of a recall: fetches in flight finish, no more start.
  NodeId third = CleanFile("third", data);
  EXPECT_EQ(EvictAll(), 2u);  // big and third
  {
    auto h = store_->OpenFile(third, false);
    std::vector<uint8_t> out(1);
    ASSERT_TRUE((*h)->Read(0, out).ok());
  }
  Reopen();
  auto back = ReadAll(third);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, data);
}

TEST_F(StoreCacheTest, ABatchOfStubsIsOneCommitAndABadOneFailsAlone) {
  ASSERT_TRUE(store_->Mkdir(root_, "taken", {}).ok());
  StubSpec spec;
  spec.cloud = {"k", "e", 10, 0, "", ""};
  StubSpec bad;  // no key, no etag
  uint64_t commits = store_->commits();
  auto made = store_->CreateStubs({{root_, "a", spec},
                                   {root_, "taken", spec},
                                   {root_, "b", bad},
                                   {root_, "c/d", spec},
                                   {999999, "e", spec},
                                   {root_, "f", spec}});
  ASSERT_EQ(made.size(), 6u);
  EXPECT_TRUE(made[0].ok()) << made[0].status().ToString();
  EXPECT_EQ(made[1].status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(made[2].status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(made[3].status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(made[4].status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(made[5].ok());
  EXPECT_EQ(store_->commits() - commits, 1u);
  EXPECT_EQ(store_->Lookup(root_, "f")->state, FileState::kStub);
  EXPECT_EQ(store_->Lookup(root_, "a")->size, 10u);
}

TEST_F(StoreCacheTest, TruncatingAStubToZeroNeedsNoCloud) {
  NodeId id = CleanFile("t", Pattern(50'000, 2));
  EXPECT_EQ(EvictAll(), 1u);
  cloud_.down = true;
  SetAttrRequest req;
  req.size = 0;
  auto a = store_->SetAttr(id, req);
  ASSERT_TRUE(a.ok()) << a.status().ToString();
  EXPECT_EQ(a->size, 0u);
  EXPECT_EQ(store_->GetAttr(id)->state, FileState::kDirty);
  {
    auto h = store_->OpenFile(id, true);
    ASSERT_TRUE(h.ok()) << h.status().ToString();
    ASSERT_TRUE((*h)->Write(0, Pattern(10, 3)).ok());
  }
  EXPECT_EQ(*ReadAll(id), Pattern(10, 3));
  Reopen();
  EXPECT_EQ(*ReadAll(id), Pattern(10, 3));
}

TEST_F(StoreCacheTest, AVersionOneStoreIsUpgraded) {
  NodeId id = CleanFile("old", Pattern(100, 1));
  store_.reset();
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_.path() + "/data/meta.db").c_str(), &db), SQLITE_OK);
  for (const char* sql :
       {"DROP INDEX nodes_lru", "DROP INDEX nodes_stubs", "ALTER TABLE nodes DROP COLUMN used_ns",
        "ALTER TABLE nodes DROP COLUMN part_size", "ALTER TABLE nodes DROP COLUMN part_md5s",
        "ALTER TABLE nodes DROP COLUMN cloud_md5", "ALTER TABLE nodes DROP COLUMN refresh_id",
        "DROP TABLE stub_data", "UPDATE meta SET value='1' WHERE key='schema_version'"}) {
    ASSERT_EQ(sqlite3_exec(db, sql, nullptr, nullptr, nullptr), SQLITE_OK) << sql;
  }
  sqlite3_close(db);
  Reopen();
  auto back = ReadAll(id);
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(*back, Pattern(100, 1));
  EXPECT_TRUE(store_->EvictionCandidates(share_, INT64_MIN, 0, 10).ok());
}

}  // namespace
}  // namespace fieldstack::store
