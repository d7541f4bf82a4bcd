// Cache tiering end to end, on Azurite: files written over FUSE go up with the Uploader, are
// evicted by the Evictor, and come back on read over every front end (FUSE, SMB with smbclient,
// NFS with libnfs's nfs-cp, S3 with aws-cli); a cloud outage during recall is a clean error;
// the hard cap slows writers and then refuses them (ENOSPC, 507) without losing what was
// written; a refresh brings in what az-cli put into the container, readable over NFS.
//
// Runs in a network and mount namespace of its own (ganesha's rpcbind needs port 111).

#include <errno.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/xattr.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <thread>

#include "cloud/azure_blob/azure_blob_store.h"
#include "frontends/fuse/fuse_fs.h"
#include "frontends/http/server.h"
#include "frontends/nfs/nfs_server.h"
#include "frontends/objects/objects.h"
#include "frontends/s3_api/s3_api.h"
#include "frontends/smb/smb_server.h"
#include "platform/file.h"
#include "store/store.h"
#include "sync/evictor.h"
#include "sync/recall.h"
#include "sync/refresher.h"
#include "sync/uploader.h"
#include "test/support/azurite.h"
#include "test/support/private_net.h"
#include "test/support/shell.h"
#include "test/support/temp_dir.h"

namespace fieldstack {
namespace {

namespace fs = std::filesystem;
constexpr char kSecret[] = "dGllcmluZy10ZXN0LXNlY3JldC1rZXktMDEyMzQ1Ng==";

using testing::Shell;

std::string Pattern(size_t n, int seed) {
  std::string s(n, '\0');
  uint32_t x = static_cast<uint32_t>(seed) * 2654435761u + 7;
  for (auto& c : s) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return s;
}

// Equal bytes, or a short message (never the bytes themselves).
::testing::AssertionResult Same(const std::string& got, const std::string& want) {
  if (got == want) return ::testing::AssertionSuccess();
  size_t at = 0;
  while (at < got.size() && at < want.size() && got[at] == want[at]) ++at;
  return ::testing::AssertionFailure()
         << "got " << got.size() << " bytes, want " << want.size() << "; first difference at " << at
         << (got.size() < 200 ? ": " + got : std::string());
}

std::string ReadFile(const std::string& path) {
  auto r = platform::ReadFileToString(path);
  return r.ok() ? *r : "<" + r.status().ToString() + ">";
}

class TieringTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto& azurite = testing::Azurite::Shared();
    ASSERT_FALSE(azurite.endpoint().empty()) << azurite.error();
    static int n = 0;
    container_ = "tier" + std::to_string(++n);
    auto azure = cloud::azure_blob::AzureBlobStore::Open({azurite.endpoint(),
                                                          testing::Azurite::kAccount,
                                                          testing::Azurite::kKey,
                                                          "",
                                                          container_,
                                                          {}},
                                                         RealClock::Get());
    ASSERT_TRUE(azure.ok()) << azure.status().ToString();
    ASSERT_TRUE((*azure)->CreateContainer().ok());
    azure_ = std::move(*azure);
    // The same container behind a closed port: the cloud while the link is down.
    auto down = cloud::azure_blob::AzureBlobStore::Open({"http://127.0.0.1:1/devstoreaccount1",
                                                         testing::Azurite::kAccount,
                                                         testing::Azurite::kKey,
                                                         "",
                                                         container_,
                                                         {}},
                                                        RealClock::Get());
    ASSERT_TRUE(down.ok());
    down_ = std::move(*down);

    auto st = store::Store::Open({.data_dir = dir_.path() + "/data"});
    ASSERT_TRUE(st.ok()) << st.status().ToString();
    store_ = std::move(*st);
    auto share = store_->CreateShare("field", store::ShareKind::kCloud);
    ASSERT_TRUE(share.ok());
    share_ = share->id;
    auto target = [this](uint32_t id) -> cloud::ObjectStore* {
      if (id != share_) return nullptr;
      return link_down_ ? down_.get() : azure_.get();
    };
    sync::Uploader::Options uo;
    uo.part_size_bytes = 1 << 20;  // recall blocks of 1 MiB: several per file
    uploader_ = std::make_unique<sync::Uploader>(*store_, target, RealClock::Get(), uo);
    sync::Recaller::Options ro;
    ro.timeout = std::chrono::seconds(2);
    recaller_ = std::make_unique<sync::Recaller>(target, RealClock::Get(), ro);
    refresher_ = std::make_unique<sync::Refresher>(*store_, target, RealClock::Get(),
                                                   sync::Refresher::Options{});
    mnt_ = dir_.path() + "/mnt";
    fs::create_directories(mnt_);
  }

  // Starts the Evictor (the Store's cache hooks) with `opts`, then FUSE and the S3 API.
  void Start(sync::Evictor::Options opts = {}) {
    evictor_ = std::make_unique<sync::Evictor>(*store_, RealClock::Get(), opts, recaller_.get());
    store_->SetCacheHooks(evictor_.get());
    ASSERT_TRUE(evictor_->RunOnce().ok());
    evictor_->Start();
    auto f = frontends::fuse::FuseFs::Mount(*store_, {.mountpoint = mnt_, .threads = 4});
    ASSERT_TRUE(f.ok()) << f.status().ToString();
    fuse_ = std::move(*f);
    objects_ = std::make_unique<frontends::objects::Objects>(*store_);
    s3_ = std::make_unique<frontends::s3_api::S3Api>(
        *objects_,
        std::vector<frontends::objects::AccessKey>{{"t", "AKIATIER", kSecret, {}, {"*"}}},
        frontends::s3_api::S3Options{});
    http_ = std::make_unique<frontends::http::HttpServer>(
        frontends::http::ServerOptions{},
        [this](frontends::http::Exchange& ex) { s3_->Handle(ex); });
    ASSERT_TRUE(http_->Start().ok());
    fs::create_directories(dir_.path() + "/home");
    aws_ = "env -u AWS_CA_BUNDLE -u AWS_PROFILE -u AWS_ENDPOINT_URL HOME=" + dir_.path() +
           "/home AWS_ACCESS_KEY_ID=AKIATIER AWS_SECRET_ACCESS_KEY=" + kSecret +
           " AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null "
           "AWS_SHARED_CREDENTIALS_FILE=/dev/null AWS_MAX_ATTEMPTS=1 /usr/bin/aws "
           "--endpoint-url http://127.0.0.1:" +
           std::to_string(http_->port()) + " ";
  }

  void TearDown() override {
    http_.reset();
    s3_.reset();
    objects_.reset();
    fuse_.reset();
    if (store_) store_->SetCacheHooks(nullptr);
    evictor_.reset();
    uploader_.reset();
    refresher_.reset();
    store_.reset();
  }

  std::string Path(const std::string& name) { return mnt_ + "/field/" + name; }

  // ganesha exporting the share's folder of the mount to 127.0.0.1, without squashing.
  Result<std::unique_ptr<frontends::nfs::NfsServer>> StartNfs() {
    return frontends::nfs::NfsServer::Start({.state_dir = dir_.path() + "/nfs", .port = 0},
                                            {{.id = share_,
                                              .name = "field",
                                              .path = mnt_ + "/field",
                                              .clients = {"127.0.0.1"},
                                              .squash = "none"}});
  }

  void Upload() {
    for (int i = 0; i < 300; ++i) {
      auto pass = uploader_->RunOnce();
      ASSERT_TRUE(pass.ok()) << pass.status().ToString();
      if (*store_->PendingUploads() == 0) return;
      std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    FAIL() << "uploads did not finish";
  }

  size_t EvictAll() {
    auto c = store_->EvictionCandidates(share_, INT64_MIN, 0, 10000);
    EXPECT_TRUE(c.ok());
    auto n = store_->Evict(*c);
    EXPECT_TRUE(n.ok());
    // What the kernel cached of the files must not answer the reads that follow.
    EXPECT_EQ(Shell("sync; echo 3 > /proc/sys/vm/drop_caches").rc, 0);
    return n.ok() ? *n : 0;
  }

  // The cache state as a client sees it: the user.fieldstack.cache xattr over FUSE.
  std::string CacheState(const std::string& name) {
    char buf[64];
    ssize_t n = ::getxattr(Path(name).c_str(), "user.fieldstack.cache", buf, sizeof buf);
    return n < 0 ? std::string("errno ") + std::strerror(errno) : std::string(buf, n);
  }

  testing::TempDir dir_;
  std::string container_;
  std::unique_ptr<cloud::ObjectStore> azure_;
  std::unique_ptr<cloud::ObjectStore> down_;
  std::atomic<bool> link_down_{false};
  std::unique_ptr<store::Store> store_;
  uint32_t share_ = 0;
  std::unique_ptr<sync::Uploader> uploader_;
  std::unique_ptr<sync::Recaller> recaller_;
  std::unique_ptr<sync::Refresher> refresher_;
  std::unique_ptr<sync::Evictor> evictor_;
  std::string mnt_;
  std::unique_ptr<frontends::fuse::FuseFs> fuse_;
  std::unique_ptr<frontends::objects::Objects> objects_;
  std::unique_ptr<frontends::s3_api::S3Api> s3_;
  std::unique_ptr<frontends::http::HttpServer> http_;
  std::string aws_;
};

TEST_F(TieringTest, PastTheHighWatermarkTheLeastRecentlyUsedAreEvictedAndTheCapHolds) {
  sync::Evictor::Options o;
  sync::CachePolicy p;
  p.high.bytes = 6 << 20;
  p.low.bytes = 4 << 20;
  o.shares[1] = p;  // the first share of a new store
  Start(o);
  for (int i = 0; i < 10; ++i) {
    ASSERT_TRUE(platform::WriteFileAtomic(Path("f" + std::to_string(i)), Pattern(1 << 20, i)).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  Upload();
  // f0 is read again: the most recently used now.
  EXPECT_TRUE(Same(ReadFile(Path("f0")), Pattern(1 << 20, 0)));
  auto pass = evictor_->RunOnce();
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->evicted, 6u);
  for (int i = 1; i <= 6; ++i) EXPECT_EQ(CacheState("f" + std::to_string(i)), "stub") << i;
  for (int i : {0, 7, 8, 9}) EXPECT_EQ(CacheState("f" + std::to_string(i)), "resident") << i;
  EXPECT_LE(store_->GetCacheUsage(share_)->resident_bytes, uint64_t{4} << 20);
  // Every file is still listed with its size, and reads back identical.
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(fs::file_size(Path("f" + std::to_string(i))), 1u << 20);
  }
  EXPECT_TRUE(Same(ReadFile(Path("f3")), Pattern(1 << 20, 3)));
  EXPECT_EQ(CacheState("f3"), "resident");
}

TEST_F(TieringTest, EvictedFilesReadBackIdenticalOverFuseSmbNfsAndS3) {
  Start();
  const size_t size = (3 << 20) + 12345;  // four recall blocks, the last one short
  for (int i = 1; i <= 4; ++i) {
    ASSERT_TRUE(
        platform::WriteFileAtomic(Path("e" + std::to_string(i) + ".bin"), Pattern(size, 10 + i))
            .ok());
  }
  ASSERT_EQ(::setxattr(Path("e1.bin").c_str(), "user.DOSATTRIB", "0x20", 4, 0), 0);
  Upload();
  EXPECT_EQ(EvictAll(), 4u);
  for (int i = 1; i <= 4; ++i) EXPECT_EQ(CacheState("e" + std::to_string(i) + ".bin"), "stub");
  // Metadata stays: size, listing, xattrs.
  EXPECT_EQ(fs::file_size(Path("e1.bin")), size);
  char dos[16];
  ASSERT_EQ(::getxattr(Path("e1.bin").c_str(), "user.DOSATTRIB", dos, sizeof dos), 4);

  // FUSE.
  EXPECT_TRUE(Same(ReadFile(Path("e1.bin")), Pattern(size, 11)));
  // SMB.
  auto smb = frontends::smb::SmbServer::Start(
      {.state_dir = dir_.path() + "/smb", .port = 0},
      {{"field", mnt_ + "/field", {"fstier"}, {}, "desired"}}, {{"fstier", "secret"}});
  ASSERT_TRUE(smb.ok()) << smb.status().ToString();
  std::string got = dir_.path() + "/smb-e2.bin";
  auto r = Shell("smbclient //127.0.0.1/field -p " + std::to_string((*smb)->port()) +
                 " -m SMB3 -U fstier%secret -c 'get e2.bin " + got + "'");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(Same(ReadFile(got), Pattern(size, 12)));
  smb->reset();
  EXPECT_TRUE(frontends::smb::SmbServer::RemoveSystemUsers({"fstier"}).ok());
  // NFS.
  auto nfs = StartNfs();
  ASSERT_TRUE(nfs.ok()) << nfs.status().ToString();
  got = dir_.path() + "/nfs-e3.bin";
  r = Shell("nfs-cp nfs://127.0.0.1/field/e3.bin " + got);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(Same(ReadFile(got), Pattern(size, 13)));
  nfs->reset();
  // S3.
  got = dir_.path() + "/s3-e4.bin";
  r = Shell(aws_ + "s3 cp s3://field/e4.bin " + got);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(Same(ReadFile(got), Pattern(size, 14)));

  for (int i = 1; i <= 4; ++i) {
    EXPECT_EQ(CacheState("e" + std::to_string(i) + ".bin"), "resident") << i;
  }
}

TEST_F(TieringTest, ACloudOutageDuringRecallIsACleanErrorAndTheNextReadRecalls) {
  Start();
  const std::string data = Pattern(2 << 20, 5);
  ASSERT_TRUE(platform::WriteFileAtomic(Path("away.bin"), data).ok());
  Upload();
  EXPECT_EQ(EvictAll(), 1u);
  link_down_ = true;
  // FUSE: EIO after the recall timeout, never short or wrong bytes.
  int fd = ::open(Path("away.bin").c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  std::vector<char> buf(4096);
  auto t0 = std::chrono::steady_clock::now();
  ssize_t n = ::pread(fd, buf.data(), buf.size(), 0);
  int err = errno;
  ::close(fd);
  EXPECT_EQ(n, -1);
  EXPECT_EQ(err, EIO) << std::strerror(err);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, std::chrono::milliseconds(1500));
  // S3: 503, nothing of the body.
  std::string got = dir_.path() + "/s3-away.bin";
  auto r = Shell(aws_ + "s3api get-object --bucket field --key away.bin " + got);
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("ServiceUnavailable"), std::string::npos) << r.out;
  EXPECT_EQ(CacheState("away.bin"), "stub");
  // The link is back: the next read recalls.
  link_down_ = false;
  EXPECT_TRUE(Same(ReadFile(Path("away.bin")), data));
  EXPECT_EQ(CacheState("away.bin"), "resident");
}

TEST_F(TieringTest, AtTheHardCapWritersAreSlowedThenRefusedAndNothingWrittenIsLost) {
  sync::Evictor::Options o;
  o.box.cap.bytes = 4 << 20;
  o.backpressure_timeout = std::chrono::seconds(2);
  Start(o);
  link_down_ = true;  // nothing can go up, so nothing can be evicted
  const std::string first = Pattern(3 << 20, 1);
  ASSERT_TRUE(platform::WriteFileAtomic(Path("first.bin"), first).ok());
  ASSERT_TRUE(uploader_->RunOnce().ok());  // fails: the link is down; first.bin stays dirty
  ASSERT_TRUE(evictor_->RunOnce().ok());
  // A writer over FUSE (as SMB and NFS clients are) waits, then gets ENOSPC.
  auto t0 = std::chrono::steady_clock::now();
  auto r = Shell("dd if=/dev/zero of=" + Path("big.bin") + " bs=1M count=4 conv=fsync");
  auto waited = std::chrono::steady_clock::now() - t0;
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("No space left on device"), std::string::npos) << r.out;
  EXPECT_GE(waited, std::chrono::milliseconds(1800));
  // S3 gets 507.
  std::string local = dir_.path() + "/put.bin";
  ASSERT_TRUE(platform::WriteFileAtomic(local, Pattern(2 << 20, 2)).ok());
  r = Shell(aws_ + "s3 cp " + local + " s3://field/put.bin");
  EXPECT_NE(r.rc, 0);
  EXPECT_NE(r.out.find("InsufficientStorage"), std::string::npos) << r.out;
  // What was acknowledged is whole.
  EXPECT_TRUE(Same(ReadFile(Path("first.bin")), first));
  EXPECT_EQ(CacheState("first.bin"), "dirty");
  // The link comes back: first.bin goes up, can be evicted, and the writer gets in.
  link_down_ = false;
  Upload();
  r = Shell(aws_ + "s3 cp " + local + " s3://field/put.bin");
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_EQ(CacheState("first.bin"), "stub");
  EXPECT_TRUE(Same(ReadFile(Path("put.bin")), Pattern(2 << 20, 2)));
  EXPECT_TRUE(Same(ReadFile(Path("first.bin")), first));
}

TEST_F(TieringTest, ARefreshBringsInWhatAzCliPutAndItReadsBackOverNfs) {
  if (!fs::exists("/usr/bin/az")) GTEST_SKIP() << "az-cli is not installed";
  Start();
  const std::string data = Pattern((2 << 20) + 77, 8);
  std::string local = dir_.path() + "/az.bin";
  ASSERT_TRUE(platform::WriteFileAtomic(local, data).ok());
  std::string conn = std::string("DefaultEndpointsProtocol=http;AccountName=") +
                     testing::Azurite::kAccount + ";AccountKey=" + testing::Azurite::kKey +
                     ";BlobEndpoint=" + testing::Azurite::Shared().endpoint() + ";";
  auto r = Shell("env -u AZURE_STORAGE_CONNECTION_STRING HOME=" + dir_.path() +
                 "/home AZURE_CORE_COLLECT_TELEMETRY=false AZURE_CORE_ONLY_SHOW_ERRORS=1 "
                 "/usr/bin/az storage blob upload --overwrite --file " +
                 local + " --name incoming/az.bin --container-name " + container_ +
                 " --connection-string '" + conn + "'");
  ASSERT_EQ(r.rc, 0) << r.out;
  auto pass = refresher_->Run("field", {});
  ASSERT_TRUE(pass.ok()) << pass.status().ToString();
  EXPECT_EQ(pass->added, 1u);
  EXPECT_EQ(CacheState("incoming/az.bin"), "stub");
  EXPECT_EQ(fs::file_size(Path("incoming/az.bin")), data.size());
  auto nfs = StartNfs();
  ASSERT_TRUE(nfs.ok()) << nfs.status().ToString();
  std::string got = dir_.path() + "/nfs-az.bin";
  r = Shell("nfs-cp nfs://127.0.0.1/field/incoming/az.bin " + got);
  EXPECT_EQ(r.rc, 0) << r.out;
  EXPECT_TRUE(Same(ReadFile(got), data));
  EXPECT_EQ(CacheState("incoming/az.bin"), "resident");
  // Bad input: an unknown share, a path that climbs out.
  EXPECT_EQ(refresher_->Run("nope", {}).status().code(), StatusCode::kNotFound);
  EXPECT_EQ(refresher_->Run("field", {"../x"}).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fieldstack

int main(int argc, char** argv) {
  fieldstack::testing::EnterPrivateNetwork();  // before any thread
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
