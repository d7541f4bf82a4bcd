#include "sync/refresher.h"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <cctype>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cloud/azure_blob/azure_blob_store.h"
#include "platform/file.h"
#include "store/names.h"
#include "sync/object_meta.h"
#include "sync/uploader.h"
#include "test/support/azurite.h"
#include "test/support/pattern.h"
#include "test/support/shell.h"
#include "test/support/temp_dir.h"

namespace fieldstack::sync {
namespace {

using testing::Pattern;

std::string Str(const std::vector<uint8_t>& v) { return {v.begin(), v.end()}; }

using testing::RunShell;

// Reads recalled data for the Store straight from the share's container (what the Recaller
// does, without its checks): enough for pinned files to come in whole.
class DirectFetch final : public store::CacheHooks {
 public:
  explicit DirectFetch(cloud::ObjectStore& cloud) : cloud_(cloud) {}
  Status Admit(uint32_t, uint64_t) override { return Status::Ok(); }
  Status Fetch(uint32_t, const store::CloudCopy& copy, uint64_t offset,
               std::span<uint8_t> out) override {
    FS_ASSIGN_OR_RETURN(std::string got, cloud_.Get(copy.key, offset, out.size()));
    if (got.size() != out.size()) return CorruptionError("short read of " + copy.key);
    std::memcpy(out.data(), got.data(), got.size());
    return Status::Ok();
  }
  Status Confirm(uint32_t, const store::CloudCopy&) override { return Status::Ok(); }
  bool Pinned(uint32_t, std::string_view) override { return false; }

 private:
  cloud::ObjectStore& cloud_;
};

// A box (Store with a cloud share "field") against one Azurite container per test.
class RefresherTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& azurite = testing::Azurite::Shared();
    ASSERT_FALSE(azurite.endpoint().empty()) << azurite.error();
    endpoint_ = azurite.endpoint();
    // One container per test: lower-case letters and digits of the test's name.
    container_ = "rf-";
    for (char c : std::string(::testing::UnitTest::GetInstance()->current_test_info()->name())) {
      if (std::isalnum(static_cast<unsigned char>(c)) && container_.size() < 63) {
        container_ += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      }
    }
    auto azure = cloud::azure_blob::AzureBlobStore::Open(
        {endpoint_, testing::Azurite::kAccount, testing::Azurite::kKey, "", container_, {}},
        RealClock::Get());
    ASSERT_TRUE(azure.ok()) << azure.status().ToString();
    azure_ = std::move(*azure);
    Status made = azure_->CreateContainer();
    ASSERT_TRUE(made.ok() || made.code() == StatusCode::kAlreadyExists) << made.ToString();
    store_ = OpenStore("box");
    ASSERT_NE(store_, nullptr);
    auto share = store_->CreateShare("field", store::ShareKind::kCloud);
    ASSERT_TRUE(share.ok()) << share.status().ToString();
    share_id_ = share->id;
    root_ = share->root;
    ASSERT_TRUE(store_->CreateShare("scratch", store::ShareKind::kLocal).ok());
    refresher_ = MakeRefresher(*store_);
  }

  std::unique_ptr<store::Store> OpenStore(const std::string& name) {
    store::StoreOptions o;
    o.data_dir = dir_ / name;
    o.chunk_size_bytes = 4096;
    o.clock = &clock_;
    auto s = store::Store::Open(o);
    EXPECT_TRUE(s.ok()) << s.status().ToString();
    return s.ok() ? std::move(*s) : nullptr;
  }

  std::unique_ptr<Refresher> MakeRefresher(store::Store& s) {
    Refresher::Options opts;
    opts.mirror = [this](uint32_t) { return mirror_; };
    opts.pinned = [this](uint32_t, std::string_view path) {
      return !pinned_prefix_.empty() && path.starts_with(pinned_prefix_);
    };
    opts.page_size = page_size_;
    return std::make_unique<Refresher>(
        s, [this](uint32_t) -> cloud::ObjectStore* { return azure_.get(); }, clock_, opts, &log_,
        &metrics_);
  }

  std::unique_ptr<Uploader> MakeUploader(store::Store& s) {
    return std::make_unique<Uploader>(
        s, [this](uint32_t) -> cloud::ObjectStore* { return azure_.get(); }, clock_,
        Uploader::Options{});
  }

  Refresher::Pass Run(const std::vector<std::string>& paths = {}) {
    auto p = refresher_->Run("field", paths);
    EXPECT_TRUE(p.ok()) << p.status().ToString();
    return p.ok() ? *p : Refresher::Pass{};
  }

  // Runs az-cli against the test's Azurite with a private HOME.
  std::pair<int, std::string> Az(const std::string& args) {
    std::string conn = std::string("DefaultEndpointsProtocol=http;AccountName=") +
                       testing::Azurite::kAccount + ";AccountKey=" + testing::Azurite::kKey +
                       ";BlobEndpoint=" + endpoint_ + ";";
    return RunShell(
        "env -u AZURE_STORAGE_CONNECTION_STRING -u AZURE_STORAGE_ACCOUNT -u AZURE_STORAGE_KEY -u "
        "AZURE_STORAGE_SAS_TOKEN -u AZURE_STORAGE_AUTH_MODE HOME=" +
        dir_.path() +
        " AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_ONLY_SHOW_ERRORS=1 AZURE_CORE_NO_COLOR=1 "
        "/usr/bin/az " +
        args + " --container-name " + container_ + " --connection-string '" + conn + "'");
  }
  // Uploads `data` as blob `key` with az-cli, replacing any blob of that name.
  void AzUpload(const std::string& key, const std::vector<uint8_t>& data) {
    std::string file = dir_ / "az-upload";
    ASSERT_TRUE(platform::WriteFileAtomic(file, Str(data)).ok());
    auto [rc, out] = Az("storage blob upload --overwrite --no-progress --name '" + key +
                        "' --file " + file + " -o none");
    ASSERT_EQ(rc, 0) << out;
  }

  void Put(const std::string& key, const std::vector<uint8_t>& data,
           const cloud::ObjectMeta& meta = {}) {
    auto put = azure_->Put(key, data, {.meta = meta});
    ASSERT_TRUE(put.ok()) << key << ": " << put.status().ToString();
  }

  store::NodeId Write(store::NodeId parent, const std::string& name,
                      const std::vector<uint8_t>& data) {
    auto existing = store_->Lookup(parent, name);
    auto h =
        existing.ok() ? store_->OpenFile(existing->id, true) : store_->Create(parent, name, {});
    EXPECT_TRUE(h.ok()) << h.status().ToString();
    if (!h.ok()) return store::kNoNode;
    EXPECT_TRUE((*h)->Write(0, data).ok());
    if (existing.ok()) {
      EXPECT_TRUE(store_->SetAttr((*h)->node(), {.size = data.size()}).ok());
    }
    EXPECT_TRUE((*h)->Close().ok());
    return (*h)->node();
  }

  // The file at `path` in the share (a default Attr with id 0 when there is none).
  store::Attr At(const std::string& path) { return store_->Resolve("field", path).value_or({}); }

  std::string Read(store::NodeId node) {
    auto h = store_->OpenFile(node, false);
    if (!h.ok()) return "<" + h.status().ToString() + ">";
    std::string out(store_->GetAttr(node)->size, '\0');
    auto n = (*h)->Read(0, {reinterpret_cast<uint8_t*>(out.data()), out.size()});
    if (!n.ok()) return "<" + n.status().ToString() + ">";
    out.resize(*n);
    return out;
  }

  // The JSON lines of one of the share's logs.
  std::vector<nlohmann::json> LogLines(const std::string& file) {
    std::vector<nlohmann::json> out;
    auto text = platform::ReadFileToString(dir_ / "logs/field/" + file);
    if (!text.ok()) return out;
    std::istringstream in(*text);
    for (std::string line; std::getline(in, line);) out.push_back(nlohmann::json::parse(line));
    return out;
  }
  size_t CountLines(const std::string& file, const std::string& result) {
    size_t n = 0;
    for (const auto& j : LogLines(file)) n += j["result"] == result ? 1 : 0;
    return n;
  }

  FakeClock clock_;  // 2026-01-01T00:00:00Z
  testing::TempDir dir_;
  CopyLog log_{dir_ / "logs", clock_};
  Metrics metrics_;
  std::string endpoint_, container_;
  std::unique_ptr<cloud::azure_blob::AzureBlobStore> azure_;
  std::unique_ptr<store::Store> store_;
  uint32_t share_id_ = 0;
  store::NodeId root_ = 0;
  bool mirror_ = false;
  std::string pinned_prefix_;
  size_t page_size_ = 1000;
  std::unique_ptr<Refresher> refresher_;
};

TEST(RefresherConflictNameTest, NamesTheBoxVersionWithTheTimeBeforeTheExtension) {
  int64_t t = FakeClock::kStartUnixNanos + 3723'000'000'000LL;  // 01:02:03
  EXPECT_EQ(Refresher::ConflictName("report.docx", t),
            "report (conflict 20260101-010203 box).docx");
  EXPECT_EQ(Refresher::ConflictName("a.tar.gz", t), "a.tar (conflict 20260101-010203 box).gz");
  EXPECT_EQ(Refresher::ConflictName("Makefile", t), "Makefile (conflict 20260101-010203 box)");
  EXPECT_EQ(Refresher::ConflictName(".bashrc", t), ".bashrc (conflict 20260101-010203 box)");
  EXPECT_EQ(Refresher::ConflictName("x.csv", t, 2), "x (conflict 20260101-010203 box 2).csv");
  // Too long: the stem gives way, at a character boundary, and the extension stays.
  std::string stem;
  while (stem.size() < 250) stem += "\xc3\xa9";  // é
  std::string name = Refresher::ConflictName(stem + ".txt", t);
  EXPECT_LE(name.size(), store::kMaxNameBytes);
  EXPECT_TRUE(name.ends_with(" (conflict 20260101-010203 box).txt")) << name;
  EXPECT_TRUE(store::ValidateName(name).ok()) << name;
}

// Objects put by az-cli come in as stubs; later changes and deletions in the cloud follow, by
// the share's delete policy.
TEST_F(RefresherTest, PicksUpObjectsAzCliPutChangedAndDeleted) {
  if (!std::filesystem::exists("/usr/bin/az")) GTEST_SKIP() << "az-cli is not installed";
  AzUpload("site/a.csv", Pattern(100, 1));
  AzUpload("site/deep/b.bin", Pattern(5000, 2));
  AzUpload("top.txt", Pattern(10, 3));

  auto p = Run();
  EXPECT_EQ(p.listed, 3u);
  EXPECT_EQ(p.added, 3u);
  EXPECT_EQ(p.failed, 0u);
  store::Attr b = At("site/deep/b.bin");
  ASSERT_NE(b.id, store::kNoNode);
  EXPECT_EQ(b.state, store::FileState::kStub);
  EXPECT_EQ(b.size, 5000u);
  EXPECT_EQ(b.mode, 0644u);  // no POSIX metadata on a foreign object: the defaults
  EXPECT_EQ(b.mtime_ns, azure_->Head("site/deep/b.bin")->mtime_ns);
  EXPECT_EQ(*store_->CacheStateOf(b.id), "stub");
  EXPECT_EQ(store_->CloudCopyOf(b.id)->etag, azure_->Head("site/deep/b.bin")->etag);
  EXPECT_EQ(At("site/deep").type, store::NodeType::kDirectory);
  EXPECT_EQ(At("site/deep").mode, 0755u);
  EXPECT_EQ(CountLines("refresh.log", "added"), 3u);
  EXPECT_TRUE(LogLines("upload.log").empty());

  p = Run();  // nothing changed
  EXPECT_EQ(p.unchanged, 3u);
  EXPECT_EQ(p.added + p.changed + p.deleted + p.kept + p.failed, 0u);
  EXPECT_EQ(LogLines("refresh.log").size(), 3u);  // unchanged objects are not logged

  AzUpload("site/a.csv", Pattern(200, 4));
  auto [rc, out] = Az("storage blob delete --name top.txt");
  ASSERT_EQ(rc, 0) << out;
  p = Run();  // keep
  EXPECT_EQ(p.listed, 2u);
  EXPECT_EQ(p.changed, 1u);
  EXPECT_EQ(p.unchanged, 1u);
  EXPECT_EQ(p.kept, 1u);
  EXPECT_EQ(p.deleted, 0u);
  store::Attr a = At("site/a.csv");
  EXPECT_EQ(a.state, store::FileState::kStub);
  EXPECT_EQ(a.size, 200u);
  EXPECT_EQ(store_->CloudCopyOf(a.id)->etag, azure_->Head("site/a.csv")->etag);
  EXPECT_NE(At("top.txt").id, store::kNoNode);  // kept
  EXPECT_EQ(CountLines("refresh.log", "kept"), 1u);

  mirror_ = true;
  p = Run();
  EXPECT_EQ(p.deleted, 1u);
  EXPECT_EQ(p.unchanged, 2u);
  EXPECT_EQ(store_->Resolve("field", "top.txt").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(CountLines("refresh.log", "deleted"), 1u);
  p = Run();
  EXPECT_EQ(p.deleted + p.kept + p.changed + p.added, 0u);

  std::string m = metrics_.Serialize();
  EXPECT_NE(m.find("fieldstack_refresh_objects_total{result=\"added\"} 3"), std::string::npos) << m;
  EXPECT_NE(m.find("fieldstack_refresh_duration_seconds{share=\"field\"}"), std::string::npos);
}

// POSIX attributes and xattrs (Samba's DOS attributes and NT ACL) in the object's metadata come
// back with the stub.
TEST_F(RefresherTest, AttributesAndXattrsComeBackFromObjectMetadata) {
  store::Attr attr;
  attr.mode = 0640;
  attr.uid = 1001;
  attr.gid = 1002;
  attr.mtime_ns = 1700000000123456789;
  std::string dos = std::string("\x00\x00\x03\x00\x20\x00", 6);
  std::string acl = Str(Pattern(300, 9));
  Put("docs/report.docx", Pattern(7000, 5),
      EncodeFileMeta(attr, {{"user.DOSATTRIB", dos}, {"security.NTACL", acl}}, 8192));
  auto p = Run();
  EXPECT_EQ(p.added, 1u);
  store::Attr got = At("docs/report.docx");
  ASSERT_NE(got.id, store::kNoNode);
  EXPECT_EQ(got.state, store::FileState::kStub);
  EXPECT_EQ(got.size, 7000u);
  EXPECT_EQ(got.mode, 0640u);
  EXPECT_EQ(got.uid, 1001u);
  EXPECT_EQ(got.gid, 1002u);
  EXPECT_EQ(got.mtime_ns, 1700000000123456789);
  EXPECT_EQ(store_->GetXattr(got.id, "user.DOSATTRIB").value_or("<none>"), dos);
  EXPECT_EQ(store_->GetXattr(got.id, "security.NTACL").value_or("<none>"), acl);
}

// The whole round trip: box A's file, with its attributes and xattrs, goes up with the
// uploader; box B's refresh brings it in with them.
TEST_F(RefresherTest, FileUploadedByAnotherBoxArrivesWithItsAttributesAndXattrs) {
  auto a = OpenStore("box-a");
  ASSERT_NE(a, nullptr);
  auto share = a->CreateShare("field", store::ShareKind::kCloud);
  auto h = a->Create(share->root, "scan.tif", {.mode = 0600, .uid = 2000, .gid = 3000});
  ASSERT_TRUE(h.ok());
  ASSERT_TRUE((*h)->Write(0, Pattern(9000, 7)).ok());
  ASSERT_TRUE((*h)->Close().ok());
  store::NodeId node = (*h)->node();
  ASSERT_TRUE(a->SetXattr(node, "user.DOSATTRIB", "dos-bits").ok());
  ASSERT_TRUE(a->SetXattr(node, "security.NTACL", "acl-bytes").ok());
  store::Attr sent = *a->GetAttr(node);
  auto up = MakeUploader(*a);
  auto pass = up->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  ASSERT_EQ(pass->uploaded, 1u);

  EXPECT_EQ(Run().added, 1u);
  store::Attr got = At("scan.tif");
  EXPECT_EQ(got.state, store::FileState::kStub);
  EXPECT_EQ(got.size, 9000u);
  EXPECT_EQ(got.mode, 0600u);
  EXPECT_EQ(got.uid, 2000u);
  EXPECT_EQ(got.gid, 3000u);
  EXPECT_EQ(got.mtime_ns, sent.mtime_ns);
  EXPECT_EQ(store_->GetXattr(got.id, "user.DOSATTRIB").value_or("<none>"), "dos-bits");
  EXPECT_EQ(store_->GetXattr(got.id, "security.NTACL").value_or("<none>"), "acl-bytes");
}

// A file changed on the box (not yet uploaded) whose object changed in the cloud: both versions
// stay, the box's under the documented conflict name, and neither overwrites the other later.
TEST_F(RefresherTest, ObjectChangedInTheCloudWhileTheFileIsDirtyKeepsBothVersions) {
  auto up = MakeUploader(*store_);
  store::NodeId n = Write(root_, "notes.txt", Pattern(1000, 1));
  ASSERT_EQ(up->RunOnce()->uploaded, 1u);
  ASSERT_EQ(store_->GetAttr(n)->state, store::FileState::kClean);
  EXPECT_EQ(Run().unchanged, 1u);  // the box's own upload

  Write(root_, "notes.txt", Pattern(1500, 2));  // dirty: not uploaded yet
  Put("notes.txt", Pattern(3000, 3));           // someone else's change in the cloud
  clock_.Advance(std::chrono::seconds(3723));   // 01:02:03
  auto p = Run();
  EXPECT_EQ(p.conflicts, 1u);
  EXPECT_EQ(p.changed + p.added, 0u);

  store::Attr mine = At("notes (conflict 20260101-010203 box).txt");
  ASSERT_EQ(mine.id, n);  // the same file, renamed: its upload follows it
  EXPECT_EQ(mine.state, store::FileState::kDirty);
  EXPECT_EQ(Read(n), Str(Pattern(1500, 2)));
  store::Attr theirs = At("notes.txt");
  ASSERT_NE(theirs.id, store::kNoNode);
  EXPECT_EQ(theirs.state, store::FileState::kStub);
  EXPECT_EQ(theirs.size, 3000u);
  auto errors = LogLines("errors.log");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["code"], 1003);
  EXPECT_EQ(errors[0]["result"], "conflict");
  EXPECT_EQ(errors[0]["log"], "refresh");
  EXPECT_EQ(errors[0]["path"], "notes.txt");
  EXPECT_NE(errors[0]["message"].get<std::string>().find("notes (conflict 20260101-010203 box)"),
            std::string::npos);

  // The box's version goes up under its new name; the cloud's stays as it is.
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(up->RunOnce().ok());
  EXPECT_EQ(azure_->Get("notes (conflict 20260101-010203 box).txt", 0, 1 << 20).value_or(""),
            Str(Pattern(1500, 2)));
  EXPECT_EQ(azure_->Get("notes.txt", 0, 1 << 20).value_or(""), Str(Pattern(3000, 3)));
  p = Run();
  EXPECT_EQ(p.conflicts + p.changed + p.added + p.failed, 0u);
  EXPECT_EQ(p.unchanged, 2u);
}

// A file created on the box and never uploaded collides with a new object: a conflict too; a
// conflict name already taken gets a number.
TEST_F(RefresherTest, NewObjectCollidingWithANeverUploadedFileIsAConflict) {
  store::NodeId n = Write(root_, "plan.md", Pattern(50, 1));
  store::NodeId other = Write(root_, "plan (conflict 20260101-000000 box).md", Pattern(60, 2));
  Put("plan.md", Pattern(70, 3));
  auto p = Run();
  EXPECT_EQ(p.conflicts, 1u);
  EXPECT_EQ(At("plan (conflict 20260101-000000 box 2).md").id, n);
  EXPECT_EQ(At("plan (conflict 20260101-000000 box).md").id, other);
  EXPECT_EQ(At("plan.md").state, store::FileState::kStub);
  EXPECT_EQ(At("plan.md").size, 70u);
}

// A refresh of some folders touches nothing else: no new files elsewhere, no deletions
// elsewhere, and "a" is not "ab".
TEST_F(RefresherTest, PathLimitedRefreshTouchesOnlyThoseFolders) {
  Put("a/1", Pattern(10, 1));
  Put("a/sub/2", Pattern(20, 2));
  Put("ab/3", Pattern(30, 3));
  Put("b/4", Pattern(40, 4));
  auto p = Run({"a"});
  EXPECT_EQ(p.listed, 2u);
  EXPECT_EQ(p.added, 2u);
  EXPECT_NE(At("a/sub/2").id, store::kNoNode);
  EXPECT_EQ(store_->Resolve("field", "ab").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Resolve("field", "b").status().code(), StatusCode::kNotFound);
  p = Run({"/b/", "a/sub", "a"});  // nested folders are listed once
  EXPECT_EQ(p.listed, 3u);
  EXPECT_EQ(p.added, 1u);
  EXPECT_EQ(p.unchanged, 2u);
  EXPECT_EQ(Run().added, 1u);  // ab/3

  mirror_ = true;
  ASSERT_TRUE(azure_->Delete("b/4", {}).ok());
  ASSERT_TRUE(azure_->Delete("ab/3", {}).ok());
  p = Run({"a"});
  EXPECT_EQ(p.deleted, 0u);
  EXPECT_NE(At("b/4").id, store::kNoNode);
  p = Run({"b"});
  EXPECT_EQ(p.deleted, 1u);
  EXPECT_EQ(At("b/4").id, store::kNoNode);
  EXPECT_NE(At("ab/3").id, store::kNoNode);
}

TEST_F(RefresherTest, BadInputIsRefusedAndBadKeysAreLoggedWhileTheRestContinues) {
  EXPECT_EQ(refresher_->Run("nosuch", {}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(refresher_->Run("field", {"a/../b"}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refresher_->Run("field", {"ok", ".."}).status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(refresher_->Run("scratch", {}).status().code(), StatusCode::kFailedPrecondition);

  std::string long_name(300, 'n');  // a valid blob name, but no valid file name
  Put("long/" + long_name, Pattern(5, 1));
  Put("ok.txt", Pattern(6, 2));
  Put(std::string(store::kStagingDir) + "/put/x", Pattern(7, 3));  // never refreshed
  // A folder on one side, a file on the other: neither changes.
  ASSERT_TRUE(store_->Mkdir(root_, "clash", {}).ok());
  Put("clash", Pattern(8, 4));
  Write(root_, "f", Pattern(9, 5));
  Put("f/g", Pattern(10, 6));

  auto p = Run();
  EXPECT_EQ(p.listed, 4u);
  EXPECT_EQ(p.added, 1u);
  EXPECT_EQ(p.failed, 3u);
  EXPECT_EQ(At("ok.txt").state, store::FileState::kStub);
  EXPECT_EQ(At("clash").type, store::NodeType::kDirectory);
  EXPECT_EQ(At("f").type, store::NodeType::kFile);
  EXPECT_EQ(At("f").size, 9u);
  EXPECT_EQ(store_->Resolve("field", store::kStagingDir).status().code(), StatusCode::kNotFound);
  std::map<int, int> codes;
  for (const auto& j : LogLines("errors.log")) {
    EXPECT_EQ(j["result"], "failed");
    ++codes[j["code"].get<int>()];
  }
  EXPECT_EQ(codes[static_cast<int>(UploadError::kInvalidName)], 1);
  EXPECT_EQ(codes[static_cast<int>(UploadError::kTypeClash)], 2);
}

// Pinned paths come in whole; a pinned file whose recall fails stays a stub, and it is logged.
TEST_F(RefresherTest, PinnedPathsArriveAsFullCopies) {
  DirectFetch hooks(*azure_);
  store_->SetCacheHooks(&hooks);
  pinned_prefix_ = "hot/";
  refresher_ = MakeRefresher(*store_);
  Put("hot/x.bin", Pattern(10000, 1));
  Put("cold/y.bin", Pattern(10000, 2));
  EXPECT_EQ(Run().added, 2u);
  store::Attr x = At("hot/x.bin");
  EXPECT_EQ(x.state, store::FileState::kClean);
  EXPECT_EQ(Read(x.id), Str(Pattern(10000, 1)));
  EXPECT_EQ(At("cold/y.bin").state, store::FileState::kStub);

  store_->SetCacheHooks(nullptr);  // recalls now fail
  Put("hot/z.bin", Pattern(100, 3));
  EXPECT_EQ(Run().added, 1u);
  EXPECT_EQ(At("hot/z.bin").state, store::FileState::kStub);
  auto errors = LogLines("errors.log");
  ASSERT_EQ(errors.size(), 1u);
  EXPECT_EQ(errors[0]["result"], "added");
  EXPECT_NE(errors[0]["message"].get<std::string>().find("recall failed"), std::string::npos);
}

// What the box deleted or renamed itself is not brought back from the objects `keep` leaves.
TEST_F(RefresherTest, FilesDeletedOrRenamedOnTheBoxAreNotBroughtBack) {
  auto up = MakeUploader(*store_);
  Write(root_, "gone.txt", Pattern(10, 1));
  store::NodeId moved = Write(root_, "old.txt", Pattern(20, 2));
  ASSERT_EQ(up->RunOnce()->uploaded, 2u);
  ASSERT_TRUE(store_->Unlink(root_, "gone.txt").ok());
  ASSERT_TRUE(up->RunOnce().ok());  // releases the object; keep leaves it
  ASSERT_TRUE(store_->Rename(root_, "old.txt", root_, "new.txt").ok());  // not uploaded yet

  auto p = Run();
  EXPECT_EQ(p.added, 0u);
  EXPECT_EQ(store_->Resolve("field", "gone.txt").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(store_->Resolve("field", "old.txt").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(At("new.txt").id, moved);
  EXPECT_TRUE(azure_->Head("gone.txt").ok());

  // Changed in the cloud since, the object is news again.
  Put("gone.txt", Pattern(30, 3));
  EXPECT_EQ(Run().added, 1u);
  EXPECT_EQ(At("gone.txt").size, 30u);
}

// Under `keep`, a clean file whose object was deleted in the cloud is the only copy left: it
// goes up again (and so can never be evicted with no copy anywhere).
TEST_F(RefresherTest, AKeptFileWhoseObjectIsGoneIsUploadedAgain) {
  auto up = MakeUploader(*store_);
  store::NodeId id = Write(root_, "only.txt", Pattern(40, 7));
  ASSERT_EQ(up->RunOnce()->uploaded, 1u);
  ASSERT_TRUE(Run().unchanged >= 1u);
  ASSERT_TRUE(azure_->Delete("only.txt", {}).ok());
  auto p = Run();
  EXPECT_EQ(p.kept, 1u);
  EXPECT_EQ(At("only.txt").state, store::FileState::kDirty);
  EXPECT_EQ(*store_->CacheStateOf(id), "dirty");
  EXPECT_EQ(up->RunOnce()->uploaded, 1u);
  auto head = azure_->Head("only.txt");
  ASSERT_TRUE(head.ok()) << head.status().ToString();
  EXPECT_EQ(head->size, 40u);
  EXPECT_EQ(At("only.txt").state, store::FileState::kClean);
}

// An open file is never replaced or removed under its reader: it is skipped, and the next
// refresh (the file closed) does it.
TEST_F(RefresherTest, OpenFilesAreSkippedAndTakenUpByTheNextRefresh) {
  auto up = MakeUploader(*store_);
  store::NodeId changed = Write(root_, "changed.bin", Pattern(100, 1));
  store::NodeId gone = Write(root_, "gone.bin", Pattern(100, 2));
  ASSERT_EQ(up->RunOnce()->uploaded, 2u);
  Put("changed.bin", Pattern(300, 3));
  ASSERT_TRUE(azure_->Delete("gone.bin", {}).ok());
  mirror_ = true;
  {
    auto r1 = store_->OpenFile(changed, false);
    auto r2 = store_->OpenFile(gone, false);
    ASSERT_TRUE(r1.ok() && r2.ok());
    auto p = Run();
    EXPECT_EQ(p.skipped, 2u);
    EXPECT_EQ(p.changed + p.deleted, 0u);
    EXPECT_EQ(Read(changed), Str(Pattern(100, 1)));
    EXPECT_EQ(CountLines("refresh.log", "skipped"), 2u);
  }
  auto p = Run();
  EXPECT_EQ(p.changed, 1u);
  EXPECT_EQ(p.deleted, 1u);
  EXPECT_EQ(At("changed.bin").state, store::FileState::kStub);
  EXPECT_EQ(At("changed.bin").size, 300u);
  EXPECT_EQ(At("gone.bin").id, store::kNoNode);
}

// Listing pages are small here: everything arrives, and a file seen on any page is not taken
// for deleted.
TEST_F(RefresherTest, ListsInPagesAndSweepsOnlyWhatIsGone) {
  page_size_ = 2;
  mirror_ = true;
  refresher_ = MakeRefresher(*store_);
  for (int i = 0; i < 7; ++i) Put("f" + std::to_string(i), Pattern(10 + i, i));
  EXPECT_EQ(Run().added, 7u);
  ASSERT_TRUE(azure_->Delete("f3", {}).ok());
  auto p = Run();
  EXPECT_EQ(p.unchanged, 6u);
  EXPECT_EQ(p.deleted, 1u);
  EXPECT_EQ(At("f3").id, store::kNoNode);
  EXPECT_NE(At("f6").id, store::kNoNode);
}

}  // namespace
}  // namespace fieldstack::sync
