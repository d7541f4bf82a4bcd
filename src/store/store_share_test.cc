// Store::DeleteShare: what goes (nodes, xattrs, queue rows, data files), what stays (other
// shares, the cloud), the refusals (open files, files waiting for upload), share ids that are
// never reused, the schema upgrade, and the removal of a deleted share's files finished after
// a crash.

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "store/store.h"
#include "test/support/pattern.h"
#include "test/support/temp_dir.h"

namespace fieldstack::store {
namespace {

using testing::Pattern;

class StoreShareTest : public ::testing::Test {
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
  }

  ShareInfo Share(std::string_view name, ShareKind kind = ShareKind::kLocal) {
    auto s = store_->GetShare(name);
    if (!s.ok()) s = store_->CreateShare(name, kind);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? *s : ShareInfo{};
  }

  NodeId Write(NodeId parent, std::string_view name, const std::vector<uint8_t>& data) {
    auto h = store_->Create(parent, name, {});
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (!h.ok()) return kNoNode;
    EXPECT_TRUE((*h)->Write(0, data).ok());
    EXPECT_TRUE((*h)->Close().ok());
    return (*h)->node();
  }

  Result<std::vector<uint8_t>> ReadAll(NodeId id) {
    FS_ASSIGN_OR_RETURN(auto h, store_->OpenFile(id, false));
    FS_ASSIGN_OR_RETURN(Attr a, store_->GetAttr(id));
    std::vector<uint8_t> out(a.size);
    FS_ASSIGN_OR_RETURN(size_t n, h->Read(0, out));
    out.resize(n);
    return out;
  }

  // Every file under objects/ (the backing files), by name (the node id in hex).
  std::set<std::string> BackingFiles() {
    std::set<std::string> out;
    for (const auto& e :
         std::filesystem::recursive_directory_iterator(dir_.path() + "/data/objects")) {
      if (e.is_regular_file()) out.insert(e.path().filename().string());
    }
    return out;
  }
  static std::string Hex(NodeId id) {
    char b[32];
    std::snprintf(b, sizeof b, "%016llx", static_cast<unsigned long long>(id));
    return b;
  }

  // Runs SQL on the closed store's metadata db; returns the first column of the first row.
  std::string Sql(const std::string& sql) {
    sqlite3* db = nullptr;
    EXPECT_EQ(sqlite3_open((dir_.path() + "/data/meta.db").c_str(), &db), SQLITE_OK);
    std::string out;
    auto cb = [](void* p, int n, char** v, char**) {
      auto* o = static_cast<std::string*>(p);
      if (o->empty() && n > 0 && v[0] != nullptr) *o = v[0];
      return 0;
    };
    char* err = nullptr;
    EXPECT_EQ(sqlite3_exec(db, sql.c_str(), cb, &out, &err), SQLITE_OK)
        << sql << ": " << (err ? err : "");
    sqlite3_free(err);
    sqlite3_close(db);
    return out;
  }

  // A file uploaded as far as the Store knows (clean, with a cloud copy).
  void MarkUploaded(NodeId id, const std::string& key) {
    ASSERT_TRUE(store_->EnqueueUploads("uploader", 100000).ok());
    auto due = store_->DueUploads(INT64_MAX, 100000);
    ASSERT_TRUE(due.ok());
    for (const UploadItem& item : *due) {
      if (item.node != id) continue;
      ASSERT_TRUE(store_->FinishUpload(item, FileState::kClean, key, "etag-" + key, "").ok());
    }
    ASSERT_EQ(store_->GetAttr(id)->state, FileState::kClean);
  }

  FakeClock clock_;
  fieldstack::testing::TempDir dir_;
  std::unique_ptr<Store> store_;
};

TEST_F(StoreShareTest, AnEmptyShareIsDeleted) {
  ShareInfo e = Share("empty");
  Share("other");
  ASSERT_TRUE(store_->DeleteShare("empty", false).ok());
  EXPECT_EQ(store_->GetShare("empty").status().code(), StatusCode::kNotFound);
  auto all = store_->ListShares();
  ASSERT_TRUE(all.ok());
  ASSERT_EQ(all->size(), 1u);
  EXPECT_EQ((*all)[0].name, "other");
  EXPECT_EQ(store_->GetAttr(e.root).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ReadDir(e.root, "", 10).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Mkdir(e.root, "d", {}).status().code(), StatusCode::kNotFound);
  Reopen();
  EXPECT_EQ(store_->GetShare("empty").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->ListShares()->size(), 1u);
}

TEST_F(StoreShareTest, UnknownShareIsNotFound) {
  EXPECT_EQ(store_->DeleteShare("nope", true).code(), StatusCode::kNotFound);
  Share("once");
  ASSERT_TRUE(store_->DeleteShare("once", false).ok());
  EXPECT_EQ(store_->DeleteShare("once", false).code(), StatusCode::kNotFound);
}

TEST_F(StoreShareTest, EveryNodeAndItsDataGoAndOtherSharesStay) {
  ShareInfo gone = Share("gone", ShareKind::kCloud);
  ShareInfo kept = Share("kept", ShareKind::kCloud);
  // kept: a file and a folder with a file, uploaded.
  auto kd = store_->Mkdir(kept.root, "d", {});
  ASSERT_TRUE(kd.ok());
  NodeId k1 = Write(kept.root, "k1", Pattern(20'000, 1));
  NodeId k2 = Write(kd->id, "k2", Pattern(5'000, 2));
  ASSERT_TRUE(store_->SetXattr(k1, "user.k", "v").ok());
  // gone: folders, files with data and xattrs, a symlink, an empty file, stubs.
  auto d1 = store_->Mkdir(gone.root, "d1", {});
  ASSERT_TRUE(d1.ok());
  auto d2 = store_->Mkdir(d1->id, "d2", {});
  ASSERT_TRUE(d2.ok());
  std::vector<NodeId> files = {Write(gone.root, "a", Pattern(30'000, 3)),
                               Write(d1->id, "b", Pattern(9'000, 4)),
                               Write(d2->id, "c", Pattern(70'000, 5)), Write(d2->id, "empty", {})};
  ASSERT_TRUE(store_->SetXattr(files[0], "user.dos", "attrib").ok());
  ASSERT_TRUE(store_->SetXattr(d1->id, "user.acl", "acl").ok());
  auto link = store_->Symlink(d1->id, "l", "../a", {});
  ASSERT_TRUE(link.ok());
  StubSpec spec;
  spec.cloud = {"d1/stub", "etag-stub", 12345, 0, "", ""};
  spec.xattrs = {{"user.from", "cloud"}};
  auto stub = store_->CreateStub(d1->id, "stub", spec);
  ASSERT_TRUE(stub.ok()) << stub.status().ToString();
  for (NodeId id : files) MarkUploaded(id, "k" + std::to_string(id));
  for (NodeId id : {k1, k2}) MarkUploaded(id, "k" + std::to_string(id));
  for (NodeId id : files) {
    if (store_->GetAttr(id)->size > 0) {
      EXPECT_EQ(BackingFiles().count(Hex(id)), 1u) << id;
    }
  }
  uint64_t kept_used = store_->GetShare("kept")->used_bytes;

  ASSERT_TRUE(store_->DeleteShare("gone", false).ok());

  EXPECT_EQ(store_->GetShare("gone").status().code(), StatusCode::kNotFound);
  std::vector<NodeId> all = files;
  for (NodeId id : {gone.root, d1->id, d2->id, link->id, stub->id}) all.push_back(id);
  for (NodeId id : all) {
    EXPECT_EQ(store_->GetAttr(id).status().code(), StatusCode::kNotFound) << id;
    EXPECT_EQ(store_->ListXattrs(id).status().code(), StatusCode::kNotFound) << id;
  }
  EXPECT_EQ(store_->Lookup(d1->id, "b").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Resolve("gone", "d1").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->OpenFile(files[0], false).status().code(), StatusCode::kNotFound);
  // Only kept's data is left on disk.
  std::set<std::string> expect = {Hex(k1), Hex(k2)};
  EXPECT_EQ(BackingFiles(), expect);
  // kept is whole.
  EXPECT_EQ(*ReadAll(k1), Pattern(20'000, 1));
  EXPECT_EQ(*ReadAll(k2), Pattern(5'000, 2));
  EXPECT_EQ(*store_->GetXattr(k1, "user.k"), "v");
  EXPECT_EQ(store_->ReadDir(kept.root, "", 10)->size(), 2u);
  EXPECT_EQ(store_->GetShare("kept")->used_bytes, kept_used);
  EXPECT_EQ(store_->GetUsage()->used_bytes, kept_used);
  EXPECT_EQ(store_->GetCacheUsage(gone.id).status().code(), StatusCode::kNotFound);
  // Nothing of it is left in the db, and a restart brings nothing back.
  Reopen();
  EXPECT_EQ(store_->GetShare("gone").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(*ReadAll(k2), Pattern(5'000, 2));
  EXPECT_EQ(BackingFiles(), expect);
  store_.reset();
  const std::string id = std::to_string(gone.id);
  EXPECT_EQ(Sql("SELECT count(*) FROM nodes WHERE share_id=" + id), "0");
  EXPECT_EQ(Sql("SELECT count(*) FROM xattrs WHERE node_id NOT IN (SELECT id FROM nodes)"), "0");
  EXPECT_EQ(Sql("SELECT count(*) FROM orphans"), "0");
  EXPECT_NE(Sql("SELECT purged_ns FROM deleted_shares WHERE id=" + id), "0");
}

TEST_F(StoreShareTest, FilesWaitingForUploadNeedForceAndNeverReachTheCloud) {
  ShareInfo s = Share("ingest", ShareKind::kCloud);
  NodeId up = Write(s.root, "uploaded", Pattern(100, 1));
  MarkUploaded(up, "uploaded");
  // Deleted after its upload: the object is released, for a `mirror` policy to delete.
  NodeId del = Write(s.root, "deleted", Pattern(100, 2));
  MarkUploaded(del, "deleted");
  ASSERT_TRUE(store_->Unlink(s.root, "deleted").ok());
  ASSERT_EQ(store_->DueReleased({s.id}, INT64_MAX, 10)->size(), 1u);
  // Clean files alone do not hold the deletion back; a committed file not yet queued does.
  Write(s.root, "dirty", Pattern(100, 3));
  Status refused = store_->DeleteShare("ingest", false);
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("1 file waiting for upload"), std::string::npos)
      << refused.message();
  EXPECT_NE(refused.message().find("force"), std::string::npos) << refused.message();
  // Queued, and a second one (a renamed file goes up again under its new key).
  ASSERT_TRUE(store_->Rename(s.root, "uploaded", s.root, "renamed").ok());
  ASSERT_TRUE(store_->EnqueueUploads("uploader", 1000).ok());
  EXPECT_EQ(store_->PendingUploadsByShare()->at(s.id), 2u);
  // The oldest waiting file's last change; 0 once nothing waits (below).
  int64_t oldest = *store_->OldestPendingUploadNs();
  EXPECT_GT(oldest, 0);
  auto renamed = store_->Resolve("ingest", "renamed");
  ASSERT_TRUE(renamed.ok());
  EXPECT_LE(oldest, renamed->mtime_ns);
  refused = store_->DeleteShare("ingest", false);
  EXPECT_EQ(refused.code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(refused.message().find("2 files waiting for upload"), std::string::npos)
      << refused.message();
  ASSERT_TRUE(store_->GetShare("ingest").ok());

  Write(s.root, "unseen", Pattern(100, 5));  // an event the uploader has not read yet
  ASSERT_TRUE(store_->DeleteShare("ingest", true).ok());
  EXPECT_EQ(*store_->PendingUploads(), 0u);
  EXPECT_TRUE(store_->PendingUploadsByShare()->empty());
  EXPECT_EQ(*store_->OldestPendingUploadNs(), 0);
  EXPECT_TRUE(store_->DueUploads(INT64_MAX, 100)->empty());
  // No cloud object is deleted because of it: the release is dropped with the share.
  EXPECT_TRUE(store_->DueReleased({s.id}, INT64_MAX, 10)->empty());
  EXPECT_EQ(*store_->ReleasedEtag(s.id, "deleted"), "");
  // The events stay what they were (no unlinks appear), and the uploader's next pass queues
  // nothing from them.
  auto events = store_->ReadEvents(0, 1000);
  ASSERT_TRUE(events.ok());
  size_t unlinks = 0;
  for (const Event& e : *events) unlinks += e.kind == EventKind::kUnlink ? 1 : 0;
  EXPECT_EQ(unlinks, 1u);  // "deleted", before the share went
  EXPECT_EQ(*store_->EnqueueUploads("uploader", 1000), 0u);
  EXPECT_EQ(*store_->GetCursor("uploader"), *store_->LastEventSeq()) << "stuck before them";
  Write(Share("other", ShareKind::kCloud).root, "x", Pattern(10, 4));
  EXPECT_EQ(*store_->EnqueueUploads("uploader", 1000), 1u);
  EXPECT_EQ(store_->DueUploads(INT64_MAX, 100)->size(), 1u);
}

TEST_F(StoreShareTest, OpenFilesAreNamedAndHoldTheDeletionBack) {
  ShareInfo s = Share("busy");
  auto d = store_->Mkdir(s.root, "dir", {});
  ASSERT_TRUE(d.ok());
  NodeId id = Write(d->id, "open.txt", Pattern(5000, 1));
  auto h = store_->OpenFile(id, false);
  ASSERT_TRUE(h.ok());
  for (bool force : {false, true}) {
    Status st = store_->DeleteShare("busy", force);
    EXPECT_EQ(st.code(), StatusCode::kFailedPrecondition);
    EXPECT_NE(st.message().find("dir/open.txt"), std::string::npos) << st.message();
    EXPECT_NE(st.message().find("close"), std::string::npos) << st.message();
  }
  // A file being written, and one unlinked while open, count too.
  auto w = store_->Create(s.root, "new", {});
  ASSERT_TRUE(w.ok());
  ASSERT_TRUE((*h)->Close().ok());
  h->reset();
  EXPECT_EQ(store_->DeleteShare("busy", true).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*w)->Write(0, Pattern(10, 2)).ok());
  ASSERT_TRUE(store_->Unlink(s.root, "new").ok());
  EXPECT_EQ(store_->DeleteShare("busy", true).code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE((*w)->Close().ok());
  w->reset();
  ASSERT_TRUE(store_->DeleteShare("busy", false).ok());
  EXPECT_TRUE(BackingFiles().empty());
}

// A file opened while the deletion waits for its commit (here behind another share's long
// commit): the open waits for the deletion and finds the file gone. Never may both succeed:
// the deletion would then remove the data of an open file.
TEST_F(StoreShareTest, AFileOpenedWhileTheDeletionCommitsWaitsAndIsGone) {
  ShareInfo busy = Share("busy");
  ShareInfo s = Share("r");
  NodeId f = Write(s.root, "f", Pattern(10'000, 1));
  std::vector<Store::NewStub> stubs;
  for (int i = 0; i < 5000; ++i) {
    std::string name = "s" + std::to_string(i);
    stubs.push_back({busy.root, name, {{name, "e", 100, 0, "", ""}, 0, 0644, 0, 0, {}}});
  }
  std::thread slow([&] { (void)store_->CreateStubs(stubs); });  // one long commit
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  Status deleted;
  std::thread deleter([&] { deleted = store_->DeleteShare("r", false); });
  std::this_thread::sleep_for(std::chrono::milliseconds(30));
  auto opened = store_->OpenFile(f, false);
  deleter.join();
  slow.join();
  EXPECT_FALSE(opened.ok() && deleted.ok()) << "a file was open when its share was deleted";
  if (deleted.ok()) {
    EXPECT_EQ(opened.status().code(), StatusCode::kNotFound) << opened.status().ToString();
  } else {
    // The open came first (a slow machine): the deletion was refused for it.
    EXPECT_EQ(deleted.code(), StatusCode::kFailedPrecondition) << deleted.ToString();
  }
}

TEST_F(StoreShareTest, TheNameComesBackAsANewEmptyShareWithANewId) {
  ShareInfo first = Share("a", ShareKind::kCloud);
  Write(first.root, "f", Pattern(100, 1));
  ASSERT_TRUE(store_->Mkdir(first.root, "d", {}).ok());
  // `a` has the highest id: a plain max(id) + 1 would give it out again.
  ASSERT_TRUE(store_->DeleteShare("a", true).ok());
  auto again = store_->CreateShare("a", ShareKind::kLocal);
  ASSERT_TRUE(again.ok()) << again.status().ToString();
  EXPECT_GT(again->id, first.id);
  EXPECT_NE(again->root, first.root);
  EXPECT_EQ(again->kind, ShareKind::kLocal);
  EXPECT_EQ(again->used_bytes, 0u);
  EXPECT_TRUE(store_->ReadDir(again->root, "", 10)->empty());
  EXPECT_EQ(store_->Lookup(again->root, "f").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetCacheUsage(again->id)->stub_files, 0u);
  // Events of the old share keep its id; none carries the new one.
  auto events = store_->ReadEvents(0, 1000);
  ASSERT_TRUE(events.ok());
  for (const Event& e : *events) EXPECT_NE(e.share_id, again->id);
  NodeId g = Write(again->root, "g", Pattern(10, 2));
  EXPECT_EQ(*ReadAll(g), Pattern(10, 2));
  // Still after a restart, and after deleting the newest share again.
  ASSERT_TRUE(store_->DeleteShare("a", false).ok());
  Reopen();
  auto third = store_->CreateShare("a", ShareKind::kLocal);
  ASSERT_TRUE(third.ok());
  EXPECT_GT(third->id, again->id);
  EXPECT_TRUE(store_->ReadDir(third->root, "", 10)->empty());
}

// A crash after the deletion's commit, before (or while) its files were removed: the next
// Open finishes the removal. The db is put in that state by hand: the share's row and root
// gone and the deletion recorded, its other nodes (and their data) still there; for some, the
// removal had got as far as the orphans table.
TEST_F(StoreShareTest, ACrashBeforeTheDataIsRemovedLeavesNoOrphansAfterReopen) {
  ShareInfo s = Share("crash");
  ShareInfo kept = Share("kept");
  auto d = store_->Mkdir(s.root, "d", {});
  ASSERT_TRUE(d.ok());
  std::vector<NodeId> files;
  for (int i = 0; i < 6; ++i) {
    files.push_back(Write(i % 2 ? d->id : s.root, "f" + std::to_string(i), Pattern(9000, i)));
  }
  ASSERT_TRUE(store_->SetXattr(files[0], "user.x", "y").ok());
  NodeId k = Write(kept.root, "k", Pattern(9000, 9));
  store_.reset();
  EXPECT_EQ(BackingFiles().size(), 7u);
  const std::string id = std::to_string(s.id), root = std::to_string(s.root);
  Sql("BEGIN; DELETE FROM shares WHERE id=" + id +
      "; INSERT INTO deleted_shares(id, name, deleted_ns) VALUES(" + id +
      ", 'crash', 1); DELETE FROM nodes WHERE id=" + root + "; COMMIT");
  // Part way through the removal: two files' rows gone, their data still there.
  for (NodeId f : {files[1], files[2]}) {
    Sql("DELETE FROM nodes WHERE id=" + std::to_string(f) + "; INSERT INTO orphans VALUES(" +
        std::to_string(f) + ")");
  }
  Reopen();
  EXPECT_EQ(store_->GetShare("crash").status().code(), StatusCode::kNotFound);
  for (NodeId f : files) EXPECT_EQ(store_->GetAttr(f).status().code(), StatusCode::kNotFound);
  std::set<std::string> expect = {Hex(k)};
  EXPECT_EQ(BackingFiles(), expect);
  EXPECT_EQ(*ReadAll(k), Pattern(9000, 9));
  // The name is free again.
  ASSERT_TRUE(store_->CreateShare("crash", ShareKind::kLocal).ok());
  store_.reset();
  EXPECT_EQ(Sql("SELECT count(*) FROM nodes WHERE share_id=" + id), "0");
  EXPECT_EQ(Sql("SELECT count(*) FROM xattrs WHERE node_id NOT IN (SELECT id FROM nodes)"), "0");
  EXPECT_EQ(Sql("SELECT count(*) FROM orphans"), "0");
  EXPECT_NE(Sql("SELECT purged_ns FROM deleted_shares WHERE id=" + id), "0");
}

// Many nodes: removed in many small commits, while the share and every node in it are gone
// for everyone from the first one on. FS_BIG_SHARE_DIRS sets the number of folders of 1000
// stubs (default 10).
TEST_F(StoreShareTest, ALargeShareGoesAtOnceAndIsRemovedInSmallCommits) {
  ShareInfo big = Share("big", ShareKind::kCloud);
  ShareInfo other = Share("other");
  const char* dirs = std::getenv("FS_BIG_SHARE_DIRS");
  const int kDirs = dirs != nullptr ? std::atoi(dirs) : 10, kStubsPerDir = 1000;
  NodeId last = kNoNode;
  for (int d = 0; d < kDirs; ++d) {
    auto dir = store_->Mkdir(big.root, "d" + std::to_string(d), {});
    ASSERT_TRUE(dir.ok());
    std::vector<Store::NewStub> stubs;
    for (int i = 0; i < kStubsPerDir; ++i) {
      std::string name = "s" + std::to_string(i);
      stubs.push_back({dir->id, name, {{name, "e", 100, 0, "", ""}, 0, 0644, 0, 0, {}}});
    }
    for (const auto& r : store_->CreateStubs(stubs)) {
      ASSERT_TRUE(r.ok()) << r.status().ToString();
      last = std::max(last, r->id);
    }
  }
  for (int i = 0; i < 20; ++i) Write(big.root, "f" + std::to_string(i), Pattern(5000, i));
  last = std::max(last, store_->Lookup(big.root, "f19")->id);

  // A watcher: once the share is gone, its newest node (removed last) must be gone too.
  std::atomic<bool> done = false;
  std::atomic<int> violations = 0, checks = 0;
  std::thread watcher([&] {
    while (!done) {
      bool share = store_->GetShare("big").ok();
      bool node = store_->GetAttr(last).ok();
      if (!share && node) ++violations;
      ++checks;
      std::this_thread::sleep_for(std::chrono::microseconds(200));
    }
  });
  // Another share's writers keep committing meanwhile; none waits long.
  std::atomic<int64_t> worst_ms = 0;
  std::atomic<uint64_t> mkdirs = 0;
  std::thread writer([&] {
    while (!done) {
      auto t0 = std::chrono::steady_clock::now();
      ASSERT_TRUE(store_->Mkdir(other.root, "m" + std::to_string(mkdirs++), {}).ok());
      int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                       std::chrono::steady_clock::now() - t0)
                       .count();
      if (ms > worst_ms) worst_ms = ms;
    }
  });
  uint64_t commits = store_->commits();
  auto t0 = std::chrono::steady_clock::now();
  Status s = store_->DeleteShare("big", true);
  auto took = std::chrono::steady_clock::now() - t0;
  done = true;
  watcher.join();
  writer.join();
  ASSERT_TRUE(s.ok()) << s.ToString();
  const int nodes = kDirs * (kStubsPerDir + 1) + 20;
  std::printf(
      "deleted a share of %d nodes in %lld ms; slowest concurrent commit %lld ms\n", nodes,
      static_cast<long long>(std::chrono::duration_cast<std::chrono::milliseconds>(took).count()),
      static_cast<long long>(worst_ms.load()));
  EXPECT_EQ(violations.load(), 0) << "of " << checks.load() << " checks";
  // A commit per 1000 nodes or so, not one for all.
  EXPECT_GE(store_->commits() - commits - mkdirs, static_cast<uint64_t>(nodes / 1000));
  EXPECT_EQ(store_->GetAttr(last).status().code(), StatusCode::kNotFound);
  EXPECT_TRUE(BackingFiles().empty());
  store_.reset();
  EXPECT_EQ(Sql("SELECT count(*) FROM nodes WHERE share_id=" + std::to_string(big.id)), "0");
}

TEST_F(StoreShareTest, AVersionTwoStoreIsUpgraded) {
  ShareInfo s = Share("s");
  NodeId f = Write(s.root, "f", Pattern(100, 1));
  store_.reset();
  Sql("DROP TABLE deleted_shares; UPDATE meta SET value='2' WHERE key='schema_version'");
  Reopen();
  EXPECT_EQ(*ReadAll(f), Pattern(100, 1));
  ASSERT_TRUE(store_->DeleteShare("s", false).ok());
  auto again = store_->CreateShare("s", ShareKind::kLocal);
  ASSERT_TRUE(again.ok());
  EXPECT_GT(again->id, s.id);
  store_.reset();
  EXPECT_EQ(Sql("SELECT value FROM meta WHERE key='schema_version'"), "3");
}

}  // namespace
}  // namespace fieldstack::store
