#include "store/store.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "platform/file.h"
#include "store/names.h"
#include "test/support/temp_dir.h"

namespace fieldstack::store {
namespace {

std::vector<uint8_t> Bytes(std::string_view s) { return {s.begin(), s.end()}; }

std::vector<uint8_t> Pattern(size_t n, uint8_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1664525u + 1013904223u;
    b = static_cast<uint8_t>(x >> 24);
  }
  return v;
}

class StoreTest : public ::testing::TestWithParam<bool> {
 protected:
  void SetUp() override { Reopen(); }

  StoreOptions Options() {
    StoreOptions o;
    o.data_dir = dir_.path() + "/data";
    o.encryption = GetParam();
    o.chunk_size_bytes = 4096;  // small chunks exercise chunk boundaries
    o.clock = &clock_;
    return o;
  }

  void Reopen() {
    store_.reset();
    auto s = Store::Open(Options());
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    store_ = std::move(*s);
    auto share = store_->GetShare("s");
    if (!share.ok()) share = store_->CreateShare("s", ShareKind::kCloud);
    ASSERT_TRUE(share.ok()) << share.status().ToString();
    root_ = share->root;
  }

  NodeId WriteFile(std::string_view name, const std::vector<uint8_t>& data, NodeId parent = 0) {
    auto h = store_->Create(parent ? parent : root_, name, {});
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (!h.ok()) return 0;
    EXPECT_TRUE((*h)->Write(0, data).ok());
    EXPECT_TRUE((*h)->Close().ok());
    return (*h)->node();
  }

  std::vector<uint8_t> ReadAll(NodeId id) {
    auto attr = store_->GetAttr(id);
    EXPECT_TRUE(attr.ok());
    auto h = store_->OpenFile(id, false);
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    std::vector<uint8_t> out(attr->size);
    auto n = (*h)->Read(0, out);
    EXPECT_TRUE(n.ok()) << n.status().ToString();
    if (n.ok()) out.resize(*n);
    return out;
  }

  FakeClock clock_;
  testing::TempDir dir_;
  std::unique_ptr<Store> store_;
  NodeId root_ = 0;
};

// Reads of part of a chunk reuse the chunk decrypted for the previous part; a change of that
// chunk in between (a new seal, through another handle) is seen, never the stale copy.
TEST_P(StoreTest, PartialChunkReadsSeeEveryChange) {
  auto h = store_->Create(root_, "p", {});
  ASSERT_TRUE(h.ok());
  auto v1 = Pattern(4096 * 3, 1);
  ASSERT_TRUE((*h)->Write(0, v1).ok());
  ASSERT_TRUE((*h)->Close().ok());
  NodeId node = store_->Lookup(root_, "p")->id;
  auto reader = store_->OpenFile(node, false);
  std::vector<uint8_t> half(2048);
  ASSERT_EQ(*(*reader)->Read(4096, half), 2048u);  // chunk 1, first half: decrypted, kept
  EXPECT_TRUE(std::equal(half.begin(), half.end(), v1.begin() + 4096));
  auto writer = store_->OpenFile(node, true);
  auto v2 = Pattern(1000, 2);
  ASSERT_TRUE((*writer)->Write(4096 + 3000, v2).ok());
  ASSERT_TRUE((*writer)->Close().ok());
  ASSERT_EQ(*(*reader)->Read(4096 + 2048, half), 2048u);  // second half, after the change
  std::vector<uint8_t> want(v1.begin() + 4096 + 2048, v1.begin() + 4096 * 2);
  std::copy(v2.begin(), v2.end(), want.begin() + (3000 - 2048));
  EXPECT_EQ(half, want);
}

TEST_P(StoreTest, CloseWithXattrTagsTheDataGenerationInTheSameCommit) {
  auto h = store_->Create(root_, "tagged", {});
  ASSERT_TRUE(h.ok());
  std::vector<uint8_t> data(5000, 7);
  ASSERT_TRUE((*h)->Write(0, data).ok());
  uint64_t seen = 0;
  ASSERT_TRUE((*h)->CloseWithXattr("fieldstack.test",
                                   [&](uint64_t gen) {
                                     seen = gen;
                                     return "gen " + std::to_string(gen);
                                   })
                  .ok());
  NodeId id = (*h)->node();
  auto a = store_->GetAttr(id);
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->data_gen, seen);
  EXPECT_NE(seen, 0u);
  EXPECT_EQ(store_->GetXattr(id, "fieldstack.test").value_or(""), "gen " + std::to_string(seen));
  EXPECT_EQ((*h)->Close().code(), StatusCode::kOk);  // closing again is harmless
  Reopen();
  EXPECT_EQ(store_->GetXattr(id, "fieldstack.test").value_or(""), "gen " + std::to_string(seen));
  EXPECT_EQ(ReadAll(id), data);
  // A read-only handle cannot.
  auto r = store_->OpenFile(id, false);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)->CloseWithXattr("x", [](uint64_t) { return std::string(); }).code(),
            StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, WritesReadsAndSurvivesReopen) {
  auto data = Pattern(3 * 4096 + 123, 1);
  NodeId id = WriteFile("a.bin", data);
  EXPECT_EQ(ReadAll(id), data);
  Reopen();
  EXPECT_EQ(ReadAll(id), data);
  auto attr = store_->Resolve("s", "a.bin");
  ASSERT_TRUE(attr.ok());
  EXPECT_EQ(attr->size, data.size());
  EXPECT_EQ(attr->state, FileState::kDirty);  // cloud share: waiting for upload
}

TEST_P(StoreTest, RandomOffsetsAndHolesReadBack) {
  auto h = store_->Create(root_, "sparse", {});
  ASSERT_TRUE(h.ok());
  auto a = Pattern(100, 2), b = Pattern(5000, 3);
  ASSERT_TRUE((*h)->Write(10000, a).ok());
  ASSERT_TRUE((*h)->Write(2000, b).ok());
  ASSERT_TRUE((*h)->Sync().ok());
  ASSERT_TRUE((*h)->Write(4095, Bytes("XY")).ok());
  ASSERT_TRUE((*h)->Close().ok());
  std::vector<uint8_t> want(10100, 0);
  std::copy(b.begin(), b.end(), want.begin() + 2000);
  std::copy(a.begin(), a.end(), want.begin() + 10000);
  want[4095] = 'X';
  want[4096] = 'Y';
  Reopen();
  EXPECT_EQ(ReadAll((*h)->node()), want);
}

TEST_P(StoreTest, TruncateShrinksAndExtendsWithZeros) {
  auto data = Pattern(9000, 4);
  NodeId id = WriteFile("t", data);
  SetAttrRequest shrink;
  shrink.size = 5000;
  ASSERT_TRUE(store_->SetAttr(id, shrink).ok());
  SetAttrRequest grow;
  grow.size = 12000;
  ASSERT_TRUE(store_->SetAttr(id, grow).ok());
  Reopen();
  auto got = ReadAll(id);
  ASSERT_EQ(got.size(), 12000u);
  EXPECT_TRUE(std::equal(data.begin(), data.begin() + 5000, got.begin()));
  EXPECT_TRUE(std::all_of(got.begin() + 5000, got.end(), [](uint8_t c) { return c == 0; }));
}

TEST_P(StoreTest, NamespaceOperations) {
  auto dir = store_->Mkdir(root_, "d", {0755, 1000, 1000});
  ASSERT_TRUE(dir.ok());
  NodeId f = WriteFile("f", Bytes("hello"), dir->id);
  auto link = store_->Symlink(root_, "l", "d/f", {});
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(store_->Resolve("s", "l")->symlink_target, "d/f");
  EXPECT_EQ(store_->Mkdir(root_, "d", {}).status().code(), StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->Rmdir(root_, "d").code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(store_->Rename(dir->id, "f", root_, "g").ok());
  EXPECT_EQ(store_->Resolve("s", "g")->id, f);
  EXPECT_EQ(store_->Resolve("s", "d/f").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Rename(root_, "d", dir->id, "inside").code(), StatusCode::kFailedPrecondition);
  auto list = store_->ReadDir(root_, "", 100);
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 3u);
  EXPECT_EQ((*list)[0].name, "d");
  EXPECT_EQ((*list)[1].name, "g");
  EXPECT_EQ((*list)[2].name, "l");
  auto page = store_->ReadDir(root_, "d", 1);
  ASSERT_EQ(page->size(), 1u);
  EXPECT_EQ((*page)[0].name, "g");
  ASSERT_TRUE(store_->Rmdir(root_, "d").ok());
  ASSERT_TRUE(store_->Unlink(root_, "g").ok());
  EXPECT_EQ(store_->GetAttr(f).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Link(link->id, root_, "hard").code(), StatusCode::kPermissionDenied);
}

TEST_P(StoreTest, RenameReplacesFileAndFreesItsData) {
  NodeId a = WriteFile("a", Bytes("aaa"));
  NodeId b = WriteFile("b", Bytes("bbbb"));
  ASSERT_TRUE(store_->Rename(root_, "a", root_, "b", /*no_replace=*/true).code() ==
              StatusCode::kAlreadyExists);
  ASSERT_TRUE(store_->Rename(root_, "a", root_, "b").ok());
  EXPECT_EQ(store_->Resolve("s", "b")->id, a);
  EXPECT_EQ(store_->GetAttr(b).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->GetShare("s")->used_bytes, 3u);
}

TEST_P(StoreTest, UnlinkedOpenFileStaysReadableUntilClosed) {
  NodeId id = WriteFile("u", Bytes("still here"));
  auto h = store_->OpenFile(id, false);
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE(store_->Unlink(root_, "u").ok());
  std::vector<uint8_t> out(10);
  ASSERT_TRUE((*h)->Read(0, out).ok());
  EXPECT_EQ(out, Bytes("still here"));
  ASSERT_TRUE((*h)->Close().ok());
  Reopen();
  EXPECT_TRUE(
      std::filesystem::is_empty(dir_.path() + "/data/objects") ||
      std::none_of(std::filesystem::recursive_directory_iterator(dir_.path() + "/data/objects"),
                   std::filesystem::recursive_directory_iterator(),
                   [](const auto& e) { return e.is_regular_file(); }));
}

TEST_P(StoreTest, XattrsAreStoredAndChecked) {
  NodeId id = WriteFile("x", Bytes("x"));
  ASSERT_TRUE(store_->SetXattr(id, "user.DOSATTRIB", std::string("\x00\x01", 2)).ok());
  EXPECT_EQ(*store_->GetXattr(id, "user.DOSATTRIB"), std::string("\x00\x01", 2));
  EXPECT_EQ(store_->SetXattr(id, "user.DOSATTRIB", "v", Store::XattrMode::kCreate).code(),
            StatusCode::kAlreadyExists);
  EXPECT_EQ(store_->SetXattr(id, "user.none", "v", Store::XattrMode::kReplace).code(),
            StatusCode::kNotFound);
  EXPECT_EQ(store_->SetXattr(id, "user.big", std::string(70000, 'v')).code(),
            StatusCode::kInvalidArgument);
  Reopen();
  EXPECT_EQ(store_->ListXattrs(id)->size(), 1u);
  ASSERT_TRUE(store_->RemoveXattr(id, "user.DOSATTRIB").ok());
  EXPECT_EQ(store_->GetXattr(id, "user.DOSATTRIB").status().code(), StatusCode::kNotFound);
}

TEST_P(StoreTest, SetAttrChangesModeOwnerTimes) {
  NodeId id = WriteFile("m", Bytes("m"));
  SetAttrRequest r;
  r.mode = 0600;
  r.uid = 42;
  r.gid = 43;
  r.mtime_ns = 123456789;
  auto a = store_->SetAttr(id, r);
  ASSERT_TRUE(a.ok());
  Reopen();
  auto got = store_->GetAttr(id);
  EXPECT_EQ(got->mode, 0600u);
  EXPECT_EQ(got->uid, 42u);
  EXPECT_EQ(got->gid, 43u);
  EXPECT_EQ(got->mtime_ns, 123456789);
}

TEST_P(StoreTest, EventsRecordEveryCommittedChangeAndCursorsPersist) {
  auto d = store_->Mkdir(root_, "d", {});
  NodeId f = WriteFile("f", Bytes("1"), d->id);
  ASSERT_TRUE(store_->Rename(d->id, "f", root_, "f2").ok());
  ASSERT_TRUE(store_->Unlink(root_, "f2").ok());
  auto ev = store_->ReadEvents(0, 100);
  ASSERT_TRUE(ev.ok());
  std::vector<std::string> got;
  for (auto& e : *ev) got.push_back(std::string(EventKindName(e.kind)) + ":" + e.path);
  std::vector<std::string> want = {"mkdir:d", "create:d/f", "write:d/f", "rename:f2", "unlink:f2"};
  EXPECT_EQ(got, want);
  EXPECT_EQ((*ev)[3].old_path, "d/f");
  EXPECT_EQ((*ev)[2].node, f);
  for (size_t i = 1; i < ev->size(); ++i) EXPECT_EQ((*ev)[i].seq, (*ev)[i - 1].seq + 1);
  ASSERT_TRUE(store_->SetCursor("uploader", (*ev)[2].seq).ok());
  Reopen();
  EXPECT_EQ(*store_->GetCursor("uploader"), (*ev)[2].seq);
  EXPECT_EQ(*store_->GetCursor("compute"), 0u);
  EXPECT_EQ(store_->ReadEvents((*ev)[2].seq, 100)->size(), 2u);
}

TEST_P(StoreTest, VersionBumpsOnEveryChange) {
  NodeId id = WriteFile("v", Bytes("1"));
  uint64_t v1 = store_->GetAttr(id)->version;
  SetAttrRequest r;
  r.mode = 0640;
  ASSERT_TRUE(store_->SetAttr(id, r).ok());
  uint64_t v2 = store_->GetAttr(id)->version;
  auto h = store_->OpenFile(id, true);
  ASSERT_TRUE((*h)->Write(0, Bytes("2")).ok());
  ASSERT_TRUE((*h)->Close().ok());
  uint64_t v3 = store_->GetAttr(id)->version;
  EXPECT_LT(v1, v2);
  EXPECT_LT(v2, v3);
}

TEST_P(StoreTest, CapacityCountsBytesPerShare) {
  ASSERT_TRUE(store_->CreateShare("local", ShareKind::kLocal).ok());
  WriteFile("a", Pattern(1000, 5));
  WriteFile("b", Pattern(24, 6));
  auto u = store_->GetUsage();
  ASSERT_TRUE(u.ok());
  EXPECT_EQ(u->used_bytes, 1024u);
  EXPECT_GT(u->volume_free_bytes, 0u);
  EXPECT_GE(u->volume_total_bytes, u->volume_free_bytes);
  EXPECT_EQ(store_->GetShare("local")->used_bytes, 0u);
  EXPECT_EQ(store_->GetShare("s")->used_bytes, 1024u);
}

TEST_P(StoreTest, RefusesBadNames) {
  for (std::string bad : {std::string(""), std::string("."), std::string(".."), std::string("a/b"),
                          std::string(256, 'n'), std::string("bad\xff"), std::string("nul\0x", 5),
                          std::string("\xc0\xaf")}) {
    EXPECT_EQ(store_->Mkdir(root_, bad, {}).status().code(), StatusCode::kInvalidArgument)
        << "name of " << bad.size() << " bytes";
  }
  EXPECT_TRUE(store_->Mkdir(root_, std::string(255, 'n'), {}).ok());
  EXPECT_TRUE(store_->Mkdir(root_, "Ünïcødé ✓", {}).ok());
  EXPECT_EQ(store_->Resolve("s", "../etc/passwd").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(store_->Resolve("s", std::string(1100, 'a')).status().code(),
            StatusCode::kInvalidArgument);
  // Paths over 1024 bytes, built one level at a time.
  NodeId cur = root_;
  Status last;
  for (int i = 0; i < 10; ++i) {
    auto d = store_->Mkdir(cur, std::string(120, 'a' + i), {});
    if (!d.ok()) {
      last = d.status();
      break;
    }
    cur = d->id;
  }
  EXPECT_EQ(last.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(last.message().find("1024"), std::string::npos);
}

TEST_P(StoreTest, RefusesWritesPast5TiB) {
  // With the default chunk size the backing file of a 5 TiB file fits ext4's 16 TiB limit.
  store_.reset();
  StoreOptions o = Options();
  o.data_dir = dir_.path() + "/big";
  o.chunk_size_bytes = 256 * 1024;
  auto big = Store::Open(o);
  ASSERT_TRUE(big.ok());
  store_ = std::move(*big);
  root_ = store_->CreateShare("s", ShareKind::kLocal)->root;
  auto h = store_->Create(root_, "big", {});
  ASSERT_TRUE(h.ok());
  EXPECT_EQ((*h)->Write(kMaxFileBytes - 1, Bytes("ab")).code(), StatusCode::kInvalidArgument);
  Status last = (*h)->Write(kMaxFileBytes - 1, Bytes("a"));
  EXPECT_TRUE(last.ok()) << last.ToString();
  ASSERT_TRUE((*h)->Close().ok());
  EXPECT_EQ(store_->GetAttr((*h)->node())->size, kMaxFileBytes);
  SetAttrRequest r;
  r.size = kMaxFileBytes + 1;
  EXPECT_EQ(store_->SetAttr((*h)->node(), r).status().code(), StatusCode::kInvalidArgument);
}

TEST_P(StoreTest, FlippedByteInBackingFileIsCorruption) {
  auto data = Pattern(10000, 7);
  NodeId id = WriteFile("c", data);
  store_.reset();
  std::string backing;
  for (auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/data/objects")) {
    if (e.is_regular_file()) backing = e.path();
  }
  ASSERT_FALSE(backing.empty());
  auto f = platform::File::Open(backing, O_RDWR);
  ASSERT_TRUE(f.ok());
  uint8_t b;
  ASSERT_TRUE(f->PRead(4096 + 10, {&b, 1}).ok());  // first payload byte area of chunk 0
  b ^= 0x01;
  ASSERT_TRUE(f->PWrite(4096 + 10, {&b, 1}).ok());
  Reopen();
  auto h = store_->OpenFile(id, false);
  ASSERT_TRUE(h.ok());
  std::vector<uint8_t> out(100);
  EXPECT_EQ((*h)->Read(0, out).status().code(), StatusCode::kCorruption);
  // Other chunks stay readable.
  auto n = (*h)->Read(4096, out);
  ASSERT_TRUE(n.ok());
  EXPECT_TRUE(std::equal(out.begin(), out.end(), data.begin() + 4096));
}

TEST_P(StoreTest, MissingBackingFileIsCorruptionNotZeros) {
  NodeId id = WriteFile("gone", Pattern(500, 8));
  store_.reset();
  for (auto& e : std::filesystem::recursive_directory_iterator(dir_.path() + "/data/objects")) {
    if (e.is_regular_file()) std::filesystem::remove(e.path());
  }
  Reopen();
  auto h = store_->OpenFile(id, false);
  ASSERT_TRUE(h.ok());
  std::vector<uint8_t> out(100);
  EXPECT_EQ((*h)->Read(0, out).status().code(), StatusCode::kCorruption);
}

TEST_P(StoreTest, SecondOpenOfDataDirIsRefused) {
  auto second = Store::Open(Options());
  EXPECT_EQ(second.status().code(), StatusCode::kAlreadyExists);
  EXPECT_NE(second.status().message().find("pid"), std::string::npos);
}

TEST_P(StoreTest, GroupCommitBatchesConcurrentWriters) {
  constexpr int kThreads = 16, kFiles = 40;
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kFiles; ++i) {
        WriteFile("f" + std::to_string(t) + "_" + std::to_string(i), Pattern(4096, t));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(store_->ReadDir(root_, "", 10000)->size(), size_t{kThreads * kFiles});
  EXPECT_LT(store_->commit_batches(), store_->commits()) << "no two commits shared a batch";
}

INSTANTIATE_TEST_SUITE_P(Encryption, StoreTest, ::testing::Values(true, false),
                         [](const auto& info) { return info.param ? "Encrypted" : "Plain"; });

// --- Encryption at rest and keys ---

class StoreKeysTest : public ::testing::Test {
 protected:
  StoreOptions Options() {
    StoreOptions o;
    o.data_dir = dir_.path() + "/data";
    o.chunk_size_bytes = 4096;
    return o;
  }
  testing::TempDir dir_;
};

TEST_F(StoreKeysTest, BackingFilesHoldNoPlaintext) {
  const std::string marker = "FIELDSTACK-PLAINTEXT-MARKER-";
  std::string text;
  while (text.size() < 100000) text += marker;
  for (bool encrypt : {true, false}) {
    testing::TempDir d;
    StoreOptions o = Options();
    o.data_dir = d.path() + "/data";
    o.encryption = encrypt;
    {
      auto s = Store::Open(o);
      ASSERT_TRUE(s.ok());
      auto share = (*s)->CreateShare("s", ShareKind::kLocal);
      auto h = (*s)->Create(share->root, "secret-name.txt", {});
      ASSERT_TRUE((*h)->Write(0, Bytes(text)).ok());
      ASSERT_TRUE((*h)->Close().ok());
    }
    bool found = false;
    for (auto& e : std::filesystem::recursive_directory_iterator(o.data_dir + "/objects")) {
      if (!e.is_regular_file()) continue;
      auto content = platform::ReadFileToString(e.path());
      ASSERT_TRUE(content.ok());
      if (content->find(marker) != std::string::npos) found = true;
      EXPECT_EQ(e.path().string().find("secret-name"), std::string::npos);
    }
    EXPECT_EQ(found, !encrypt) << (encrypt ? "plaintext found in an encrypted store"
                                           : "sanity: a plain store should show the marker");
  }
}

TEST_F(StoreKeysTest, WrongOrMissingKeyFileIsRefused) {
  {
    auto s = Store::Open(Options());
    ASSERT_TRUE(s.ok());
  }
  std::string key = dir_.path() + "/data/master.key";
  auto other = crypto::NewRandomMasterKey(1);
  ASSERT_TRUE(crypto::WriteKeyFile(dir_.path() + "/other.key", *other).ok());
  StoreOptions o = Options();
  o.key_file = dir_.path() + "/other.key";
  auto wrong = Store::Open(o);
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated);
  EXPECT_NE(wrong.status().message().find("does not match"), std::string::npos);
  o.key_file = dir_.path() + "/absent.key";
  auto missing = Store::Open(o);
  EXPECT_EQ(missing.status().code(), StatusCode::kUnauthenticated);
  ASSERT_TRUE(platform::WriteFileAtomic(o.key_file, "garbage").ok());
  EXPECT_EQ(Store::Open(o).status().code(), StatusCode::kInvalidArgument);
}

TEST_F(StoreKeysTest, RotationRewrapsKeysAndKeepsData) {
  NodeId id;
  auto data = Pattern(20000, 9);
  std::string key = dir_.path() + "/data/master.key";
  std::string old_key;
  {
    auto s = Store::Open(Options());
    ASSERT_TRUE(s.ok());
    auto share = (*s)->CreateShare("s", ShareKind::kLocal);
    auto h = (*s)->Create(share->root, "f", {});
    ASSERT_TRUE((*h)->Write(0, data).ok());
    ASSERT_TRUE((*h)->Close().ok());
    id = (*h)->node();
    old_key = *platform::ReadFileToString(key);
    auto rotated = (*s)->RotateMasterKey();
    ASSERT_TRUE(rotated.ok()) << rotated.status().ToString();
    EXPECT_EQ(*rotated, 2u);
  }
  EXPECT_NE(*platform::ReadFileToString(key), old_key);
  auto s = Store::Open(Options());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ((*s)->master_key_id(), 2u);
  auto h = (*s)->OpenFile(id, false);
  std::vector<uint8_t> out(data.size());
  ASSERT_TRUE((*h)->Read(0, out).ok());
  EXPECT_EQ(out, data);
  ASSERT_TRUE((*h)->Close().ok());
  s->reset();
  // The old key no longer opens the store.
  ASSERT_TRUE(platform::WriteFileAtomic(key, old_key).ok());
  EXPECT_EQ(Store::Open(Options()).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(StoreKeysTest, RotationInterruptedAfterItsCommitIsFinishedOnOpen) {
  std::string key = dir_.path() + "/data/master.key";
  std::string old_key, new_key;
  {
    auto s = Store::Open(Options());
    ASSERT_TRUE(s.ok());
    auto share = (*s)->CreateShare("s", ShareKind::kLocal);
    auto h = (*s)->Create(share->root, "f", {});
    ASSERT_TRUE((*h)->Write(0, Bytes("kept")).ok());
    ASSERT_TRUE((*h)->Close().ok());
    old_key = *platform::ReadFileToString(key);
    ASSERT_TRUE((*s)->RotateMasterKey().ok());
    new_key = *platform::ReadFileToString(key);
  }
  // The state a crash leaves between the db commit and the key file write: the old key in
  // master.key, the new one in master.key.new.
  ASSERT_TRUE(platform::WriteFileAtomic(key, old_key).ok());
  ASSERT_TRUE(platform::WriteFileAtomic(key + ".new", new_key).ok());
  auto s = Store::Open(Options());
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_EQ(*platform::ReadFileToString(key), new_key);
  EXPECT_FALSE(platform::PathExists(key + ".new"));
  auto f = (*s)->Resolve("s", "f");
  auto h = (*s)->OpenFile(f->id, false);
  std::vector<uint8_t> out(4);
  ASSERT_TRUE((*h)->Read(0, out).ok());
  EXPECT_EQ(out, Bytes("kept"));
}

TEST_F(StoreKeysTest, PassphraseUnlocksAndRotates) {
  StoreOptions o = Options();
  o.passphrase = "field passphrase 1";
  NodeId id;
  {
    auto s = Store::Open(o);
    ASSERT_TRUE(s.ok()) << s.status().ToString();
    auto share = (*s)->CreateShare("s", ShareKind::kLocal);
    auto h = (*s)->Create(share->root, "f", {});
    ASSERT_TRUE((*h)->Write(0, Bytes("payload")).ok());
    ASSERT_TRUE((*h)->Close().ok());
    id = (*h)->node();
    ASSERT_TRUE((*s)->RotateMasterKey("field passphrase 2").ok());
  }
  EXPECT_EQ(Store::Open(o).status().code(), StatusCode::kUnauthenticated);
  o.passphrase = "field passphrase 2";
  auto s = Store::Open(o);
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  auto h = (*s)->OpenFile(id, false);
  std::vector<uint8_t> out(7);
  ASSERT_TRUE((*h)->Read(0, out).ok());
  EXPECT_EQ(out, Bytes("payload"));
  EXPECT_FALSE(platform::PathExists(o.data_dir + "/master.key"));
}

TEST_F(StoreKeysTest, CorruptOrMissingMetadataDbIsAClearError) {
  {
    auto s = Store::Open(Options());
    ASSERT_TRUE(s.ok());
    auto share = (*s)->CreateShare("s", ShareKind::kLocal);
    auto h = (*s)->Create(share->root, "f", {});
    ASSERT_TRUE((*h)->Write(0, Bytes("x")).ok());
    ASSERT_TRUE((*h)->Close().ok());
  }
  std::string db = dir_.path() + "/data/meta.db";
  std::filesystem::remove(db + "-wal");
  std::filesystem::remove(db + "-shm");
  ASSERT_TRUE(platform::WriteFileAtomic(db, std::string(8192, 'Z')).ok());
  auto corrupt = Store::Open(Options());
  EXPECT_EQ(corrupt.status().code(), StatusCode::kCorruption) << corrupt.status().ToString();
  EXPECT_NE(corrupt.status().message().find("meta.db"), std::string::npos);
  std::filesystem::remove(db);
  auto missing = Store::Open(Options());
  EXPECT_EQ(missing.status().code(), StatusCode::kFailedPrecondition);
  EXPECT_NE(missing.status().message().find("missing"), std::string::npos);
}

TEST(NamesTest, SplitPathValidates) {
  EXPECT_EQ(SplitPath("/a//b/")->size(), 2u);
  EXPECT_TRUE(SplitPath("")->empty());
  EXPECT_FALSE(SplitPath("a/../b").ok());
  EXPECT_FALSE(SplitPath("a/./b").ok());
}

}  // namespace
}  // namespace fieldstack::store

namespace fieldstack::store {
namespace {

TEST(StoreReadCommittedTest, SeesOnlyThePinnedCommittedGeneration) {
  testing::TempDir dir;
  StoreOptions o;
  o.data_dir = dir.path() + "/data";
  o.chunk_size_bytes = 4096;
  auto s = Store::Open(o);
  ASSERT_TRUE(s.ok());
  auto share = (*s)->CreateShare("s", ShareKind::kCloud);
  auto h = (*s)->Create(share->root, "f", {});
  std::vector<uint8_t> v1(10000, 'a');
  ASSERT_TRUE((*h)->Write(0, v1).ok());
  ASSERT_TRUE((*h)->Sync().ok());
  uint64_t gen = (*s)->GetAttr((*h)->node())->data_gen;
  // Writes in flight are invisible to a committed read...
  std::vector<uint8_t> v2(5000, 'b');
  ASSERT_TRUE((*h)->Write(4096, v2).ok());
  ASSERT_TRUE((*h)->Write(20000, v2).ok());
  std::vector<uint8_t> out(30000);
  auto n = (*h)->ReadCommitted(gen, 0, out);
  ASSERT_TRUE(n.ok()) << n.status().ToString();
  ASSERT_EQ(*n, v1.size());
  EXPECT_TRUE(std::equal(v1.begin(), v1.end(), out.begin()));
  auto part = (*h)->ReadCommitted(gen, 4000, {out.data(), 200});
  ASSERT_TRUE(part.ok());
  EXPECT_EQ(out[0], 'a');
  // ...and once they are committed the pinned generation is gone.
  ASSERT_TRUE((*h)->Sync().ok());
  EXPECT_EQ((*h)->ReadCommitted(gen, 0, out).status().code(), StatusCode::kFailedPrecondition);
  uint64_t gen2 = (*s)->GetAttr((*h)->node())->data_gen;
  EXPECT_GT(gen2, gen);
  auto n2 = (*h)->ReadCommitted(gen2, 0, out);
  ASSERT_TRUE(n2.ok());
  EXPECT_EQ(*n2, 25000u);
  EXPECT_EQ(out[4096], 'b');
  ASSERT_TRUE((*h)->Close().ok());
}

}  // namespace
}  // namespace fieldstack::store
