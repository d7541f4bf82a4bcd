// bench/shares: the file shares against the same servers on plain ext4, in one run.
//
//  - SMB (smbclient, SMB3): put and get of one 1 GiB file and of 2,000 files of 64 KiB, with
//    smbd serving a share of our FUSE mount and smbd serving a plain ext4 directory (one smbd,
//    two shares, the same generated settings).
//  - NFSv3 (libnfs's nfs-cp): write and read of 1 GiB, ganesha exporting our mount and a plain
//    ext4 directory (one ganesha, two exports).
//  - The FUSE mount itself: sequential write (1 MiB writes, then close, which is our commit)
//    and cold sequential read of 1 GiB, against `rclone mount` of a local directory (its
//    default, uncached VFS mode) and against ext4 directly.
// The Store encrypts (the default). Reads start cold (page cache dropped). Three interleaved
// rounds; medians. Runs in a network namespace of its own (ganesha needs rpcbind on port 111).
//
// Usage: shares_bench [MiB=1024] [files=2000]   (as root; data under $TMPDIR or /tmp)

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "frontends/fuse/fuse_fs.h"
#include "frontends/nfs/nfs_server.h"
#include "frontends/smb/smb_server.h"
#include "platform/file.h"
#include "platform/process.h"
#include "store/store.h"
#include "test/support/private_net.h"
#include "test/support/temp_dir.h"

namespace fs = std::filesystem;
using namespace fieldstack;

namespace {

double Seconds(const std::function<void()>& f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

void Run(const std::string& cmd) {
  Status s = platform::RunCommand(cmd);
  if (!s.ok()) {
    std::fprintf(stderr, "shares_bench: %s\n", s.ToString().c_str());
    std::exit(1);
  }
}

void DropCaches() {
  ::sync();
  Run("echo 3 > /proc/sys/vm/drop_caches");
}

void WriteSeq(const std::string& path, size_t mib) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) std::exit(1);
  std::vector<char> buf(1 << 20);
  for (size_t i = 0; i < buf.size(); ++i) buf[i] = static_cast<char>(i * 2654435761u >> 13);
  for (size_t i = 0; i < mib; ++i) {
    buf[0] = static_cast<char>(i);
    if (::write(fd, buf.data(), buf.size()) != static_cast<ssize_t>(buf.size())) std::exit(1);
  }
  if (::fsync(fd) != 0 || ::close(fd) != 0) std::exit(1);
}

void ReadSeq(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) std::exit(1);
  std::vector<char> buf(1 << 20);
  while (::read(fd, buf.data(), buf.size()) > 0) {
  }
  ::close(fd);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  fieldstack::testing::EnterPrivateNetwork();
  const size_t mib = argc > 1 ? std::stoul(argv[1]) : 1024;
  const size_t files = argc > 2 ? std::stoul(argv[2]) : 2000;
  const int rounds = 3;
  testing::TempDir dir;
  const std::string d = dir.path();
  auto st = store::Store::Open({.data_dir = d + "/data"});
  if (!st.ok() || !(*st)->CreateShare("bench", store::ShareKind::kLocal).ok()) return 1;
  fs::create_directories(d + "/mnt");
  fs::create_directories(d + "/plain");
  ::chmod((d + "/plain").c_str(), 0777);
  auto fuse = frontends::fuse::FuseFs::Mount(**st, {.mountpoint = d + "/mnt"});
  if (!fuse.ok()) return 1;
  const std::string ours = d + "/mnt/bench", plain = d + "/plain";
  auto smb = frontends::smb::SmbServer::Start(
      {.state_dir = d + "/smb", .port = 0},
      {{"ours", ours, {"fsbench"}, {}, "off"}, {"plain", plain, {"fsbench"}, {}, "off"}},
      {{"fsbench", "bench-secret"}});
  if (!smb.ok()) {
    std::fprintf(stderr, "%s\n", smb.status().ToString().c_str());
    return 1;
  }
  auto nfs = frontends::nfs::NfsServer::Start(
      {.state_dir = d + "/nfs", .port = 0},
      {{.id = 1, .name = "ours", .path = ours, .clients = {"127.0.0.1"}, .squash = "none"},
       {.id = 2, .name = "plain", .path = plain, .clients = {"127.0.0.1"}, .squash = "none"}});
  if (!nfs.ok()) {
    std::fprintf(stderr, "%s\n", nfs.status().ToString().c_str());
    return 1;
  }
  // rclone mount of a local directory, its default (uncached) VFS mode.
  fs::create_directories(d + "/rsrc");
  fs::create_directories(d + "/rmnt");
  Run("rclone mount " + d + "/rsrc " + d + "/rmnt --daemon --log-file " + d + "/rclone.log");
  for (int i = 0; i < 100 && platform::RunCommand("mountpoint -q " + d + "/rmnt").code() !=
                                 StatusCode::kOk;
       ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }

  // Test data, made once.
  fs::create_directories(d + "/src/small");
  fs::create_directories(d + "/out");
  Run("head -c " + std::to_string(mib) + "M /dev/urandom > " + d + "/src/big.bin");
  Run("head -c " + std::to_string(files * 64) + "K /dev/urandom | split -b 64K -a 5 - " + d +
      "/src/small/f");
  const std::string smbc = "smbclient -m SMB3 -p " + std::to_string((*smb)->port()) +
                           " -U fsbench%bench-secret //127.0.0.1/";
  const double big_mb = mib * 1.048576, small_mb = files * 64 * 1.024e-3;

  std::map<std::string, std::vector<double>> mbps;  // "measure|target" -> MB/s per round
  auto add = [&](const std::string& m, const std::string& target, double mb, double secs) {
    mbps[m + "|" + target].push_back(mb / secs);
  };
  for (int r = 0; r < rounds; ++r) {
    for (const std::string target : {"ours", "plain"}) {
      const std::string local = target == "ours" ? ours : plain;
      // SMB, one large file.
      add("SMB put 1 file", target, big_mb, Seconds([&] {
            Run(smbc + target + " -c 'put " + d + "/src/big.bin big.bin'");
          }));
      DropCaches();
      add("SMB get 1 file", target, big_mb,
          Seconds([&] { Run(smbc + target + " -c 'get big.bin /dev/null'"); }));
      fs::remove(local + "/big.bin");
      // SMB, many small files.
      add("SMB put 64 KiB files", target, small_mb, Seconds([&] {
            Run(smbc + target + " -c 'prompt off; mkdir s; cd s; lcd " + d +
                "/src/small; mput *'");
          }));
      DropCaches();
      add("SMB get 64 KiB files", target, small_mb, Seconds([&] {
            Run(smbc + target + " -c 'prompt off; cd s; lcd " + d + "/out; mget *'");
          }));
      fs::remove_all(local + "/s");
      fs::remove_all(d + "/out");
      fs::create_directories(d + "/out");
      // NFSv3.
      add("NFSv3 write", target, big_mb, Seconds([&] {
            Run("nfs-cp " + d + "/src/big.bin nfs://127.0.0.1/" + target + "/big.bin");
          }));
      DropCaches();
      add("NFSv3 read", target, big_mb, Seconds([&] {
            Run("nfs-cp nfs://127.0.0.1/" + target + "/big.bin " + d + "/out/big.bin");
          }));
      fs::remove(local + "/big.bin");
      fs::remove(d + "/out/big.bin");
    }
    // The mounts themselves.
    for (const auto& [target, path] : std::vector<std::pair<std::string, std::string>>{
             {"ours", ours + "/seq.bin"},
             {"rclone", d + "/rmnt/seq.bin"},
             {"ext4", plain + "/seq.bin"}}) {
      add("mount sequential write", target, big_mb, Seconds([&] { WriteSeq(path, mib); }));
      DropCaches();
      add("mount sequential read", target, big_mb, Seconds([&] { ReadSeq(path); }));
      fs::remove(path);
    }
    std::fprintf(stderr, "round %d done\n", r + 1);
  }
  Run("fusermount3 -u " + d + "/rmnt");

  std::printf("| measure (MB/s, median of %d) | ours | plain ext4 | ratio | rclone mount | "
              "ours / rclone |\n|---|---|---|---|---|---|\n",
              rounds);
  for (const char* m : {"SMB put 1 file", "SMB get 1 file", "SMB put 64 KiB files",
                        "SMB get 64 KiB files", "NFSv3 write", "NFSv3 read"}) {
    double o = Median(mbps[std::string(m) + "|ours"]), p = Median(mbps[std::string(m) + "|plain"]);
    std::printf("| %s | %.0f | %.0f | %.2f | - | - |\n", m, o, p, o / p);
  }
  for (const char* m : {"mount sequential write", "mount sequential read"}) {
    double o = Median(mbps[std::string(m) + "|ours"]), e = Median(mbps[std::string(m) + "|ext4"]),
           rc = Median(mbps[std::string(m) + "|rclone"]);
    std::printf("| %s | %.0f | %.0f | %.2f | %.0f | %.2f |\n", m, o, e, o / e, rc, o / rc);
  }
  return 0;
}
