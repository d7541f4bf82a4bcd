#include "compute/sandbox.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <chrono>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <thread>

namespace fieldstack::compute {
namespace {

constexpr long kCgroup2SuperMagic = 0x63677270;
constexpr long kCgroupSuperMagic = 0x27e0eb;
constexpr uint64_t kCfsPeriodUs = 100000;
constexpr size_t kIoChunkBytes = 64 << 10;

// ---- small file helpers (cgroup files are tiny) ----

std::optional<std::string> ReadSmallFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Status WriteSmallFile(const std::string& path, const std::string& value) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus(errno, "open " + path);
  ssize_t n = ::write(fd, value.data(), value.size());
  int err = errno;
  ::close(fd);
  if (n != static_cast<ssize_t>(value.size())) {
    return ErrnoStatus(n < 0 ? err : EIO, "write '" + value + "' to " + path);
  }
  return Status::Ok();
}

// The number after `key ` in a "key value" per line file (memory.events, pids.events...).
uint64_t KeyedValue(const std::string& path, std::string_view key) {
  auto text = ReadSmallFile(path);
  if (!text) return 0;
  std::istringstream in(*text);
  std::string k;
  uint64_t v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return 0;
}

uint64_t NumberIn(const std::string& path) {
  auto text = ReadSmallFile(path);
  if (!text) return 0;
  return std::strtoull(text->c_str(), nullptr, 10);
}

bool IsCgroupMount(const std::string& path, long magic) {
  struct statfs s {};
  return ::statfs(path.c_str(), &s) == 0 && static_cast<long>(s.f_type) == magic;
}

// The daemon's own cgroup in the v1 hierarchy of `controller`, or in v2 when empty.
std::optional<std::string> OwnCgroup(std::string_view controller) {
  auto text = ReadSmallFile("/proc/self/cgroup");
  if (!text) return std::nullopt;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    size_t a = line.find(':');
    size_t b = line.find(':', a + 1);
    if (a == std::string::npos || b == std::string::npos) continue;
    std::string list = line.substr(a + 1, b - a - 1);
    std::string path = line.substr(b + 1);
    if (path == "/") path.clear();
    if (controller.empty()) {
      if (list.empty() && line.substr(0, a) == "0") return path;
      continue;
    }
    std::istringstream names(list);
    std::string name;
    while (std::getline(names, name, ',')) {
      if (name == controller) return path;
    }
  }
  return std::nullopt;
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes % (1 << 20) == 0) return std::to_string(bytes >> 20) + " MiB";
  return std::to_string(bytes) + " bytes";
}

std::string LastLine(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == '\r')) text.remove_suffix(1);
  size_t nl = text.rfind('\n');
  if (nl != std::string_view::npos) text.remove_prefix(nl + 1);
  if (text.size() > 200) text = text.substr(text.size() - 200);
  return std::string(text);
}

// Kills every process listed in `procs_file` until it lists none (at most ~5 s).
void KillAllIn(const std::string& procs_file) {
  for (int i = 0; i < 500; ++i) {
    auto text = ReadSmallFile(procs_file);
    if (!text) return;
    std::istringstream in(*text);
    pid_t pid;
    bool any = false;
    while (in >> pid) {
      any = true;
      ::kill(pid, SIGKILL);
    }
    if (!any) return;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
}

void RemoveDir(const std::string& dir) {
  for (int i = 0; i < 100; ++i) {
    if (::rmdir(dir.c_str()) == 0 || errno == ENOENT) return;
    if (errno != EBUSY) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  spdlog::warn("sandbox: cannot remove cgroup {}: {}", dir, std::strerror(errno));
}

// ---- cgroups ----

// Where the runner makes its runs' groups, found once by MakeBwrapRunner.
struct CgroupLayout {
  int version = 0;                         // 0: none usable
  std::string why_none;                    // when version is 0
  std::string memory, pids, cpu, cpuacct;  // parent dirs; v2: all the same; empty: absent
  std::vector<std::string> Parents() const {
    std::vector<std::string> out;
    for (const auto* d : {&memory, &pids, &cpu, &cpuacct}) {
      if (!d->empty() && std::find(out.begin(), out.end(), *d) == out.end()) out.push_back(*d);
    }
    return out;
  }
};

Status MakeDir(const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) return InternalError("mkdir " + dir + ": " + ec.message());
  return Status::Ok();
}

CgroupLayout FindCgroups(const BwrapOptions& opts) {
  CgroupLayout l;
  const std::string& root = opts.cgroup_root;
  if (IsCgroupMount(root, kCgroup2SuperMagic)) {
    auto own = OwnCgroup("");
    if (!own) {
      l.why_none = "no v2 entry in /proc/self/cgroup";
      return l;
    }
    std::string base = root + *own;
    std::string parent = base + "/" + opts.cgroup_parent;
    if (Status s = MakeDir(parent); !s.ok()) {
      l.why_none = s.message();
      return l;
    }
    // The no-internal-process rule: this fails with EBUSY when the daemon's own group holds
    // processes and is not the root; the unit must then be delegated with the daemon in a leaf.
    for (const auto& dir : {base, parent}) {
      if (Status s = WriteSmallFile(dir + "/cgroup.subtree_control", "+memory +pids +cpu");
          !s.ok()) {
        l.why_none = "cannot enable controllers: " + s.message();
        return l;
      }
    }
    l.version = 2;
    l.memory = l.pids = l.cpu = l.cpuacct = parent;
    return l;
  }
  for (auto [name, field] : {std::pair{"memory", &l.memory}, std::pair{"pids", &l.pids},
                             std::pair{"cpu", &l.cpu}, std::pair{"cpuacct", &l.cpuacct}}) {
    std::string mount = root + "/" + name;
    if (!IsCgroupMount(mount, kCgroupSuperMagic)) continue;
    auto own = OwnCgroup(name);
    if (!own) continue;
    std::error_code ec;
    std::string real = std::filesystem::canonical(mount, ec).string();
    if (ec) continue;
    std::string parent = real + *own + "/" + opts.cgroup_parent;
    if (Status s = MakeDir(parent); !s.ok()) {
      spdlog::warn("sandbox: cgroup controller {} unusable: {}", name, s.message());
      continue;
    }
    *field = parent;
  }
  if (l.memory.empty() || l.pids.empty()) {
    l.why_none = "cgroup v1 memory and pids controllers not usable under " + root;
    l.memory = l.pids = l.cpu = l.cpuacct = "";
    return l;
  }
  l.version = 1;
  return l;
}

// Kills and removes run groups left by a daemon that died (its pid is gone).
void RemoveLeftovers(const CgroupLayout& layout) {
  for (const auto& parent : layout.Parents()) {
    DIR* d = ::opendir(parent.c_str());
    if (d == nullptr) continue;
    std::vector<std::string> stale;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name.rfind("run-", 0) != 0) continue;
      pid_t pid = static_cast<pid_t>(std::strtol(name.c_str() + 4, nullptr, 10));
      if (pid == ::getpid()) continue;  // another runner of this process
      if (pid <= 0 || (::kill(pid, 0) != 0 && errno == ESRCH)) stale.push_back(parent + "/" + name);
    }
    ::closedir(d);
    for (const auto& dir : stale) {
      spdlog::warn("sandbox: removing leftover cgroup {}", dir);
      KillAllIn(dir + "/cgroup.procs");
      RemoveDir(dir);
    }
  }
}

// One run's groups (one per v1 hierarchy, one in v2).
class RunCgroup {
 public:
  RunCgroup(const CgroupLayout& layout, const std::string& name) : layout_(layout) {
    auto in = [&](const std::string& parent) {
      return parent.empty() ? std::string() : parent + "/" + name;
    };
    memory_ = in(layout.memory);
    pids_ = in(layout.pids);
    cpu_ = in(layout.cpu);
    cpuacct_ = in(layout.cpuacct);
    for (const auto* d : {&memory_, &pids_, &cpu_, &cpuacct_}) {
      if (!d->empty() && std::find(dirs_.begin(), dirs_.end(), *d) == dirs_.end()) {
        dirs_.push_back(*d);
      }
    }
  }

  Status Create(const ModuleLimits& limits) {
    for (const auto& dir : dirs_) {
      // create_directories: another runner's destructor may have removed the empty parent.
      FS_RETURN_IF_ERROR(MakeDir(dir));
      created_.push_back(dir);
    }
    uint64_t quota_us = std::max<uint64_t>(1000, std::llround(limits.cpus * kCfsPeriodUs));
    std::string mem = std::to_string(limits.memory_bytes);
    if (layout_.version == 2) {
      FS_RETURN_IF_ERROR(WriteSmallFile(memory_ + "/memory.max", mem));
      (void)WriteSmallFile(memory_ + "/memory.swap.max", "0");  // absent without swap
      FS_RETURN_IF_ERROR(WriteSmallFile(pids_ + "/pids.max", std::to_string(limits.max_processes)));
      FS_RETURN_IF_ERROR(WriteSmallFile(
          cpu_ + "/cpu.max", std::to_string(quota_us) + " " + std::to_string(kCfsPeriodUs)));
      return Status::Ok();
    }
    FS_RETURN_IF_ERROR(WriteSmallFile(memory_ + "/memory.limit_in_bytes", mem));
    // Swap counts too where the kernel accounts it (absent with swapaccount=0).
    if (::access((memory_ + "/memory.memsw.limit_in_bytes").c_str(), F_OK) == 0) {
      FS_RETURN_IF_ERROR(WriteSmallFile(memory_ + "/memory.memsw.limit_in_bytes", mem));
    }
    FS_RETURN_IF_ERROR(WriteSmallFile(pids_ + "/pids.max", std::to_string(limits.max_processes)));
    if (!cpu_.empty()) {
      FS_RETURN_IF_ERROR(WriteSmallFile(cpu_ + "/cpu.cfs_period_us", std::to_string(kCfsPeriodUs)));
      FS_RETURN_IF_ERROR(WriteSmallFile(cpu_ + "/cpu.cfs_quota_us", std::to_string(quota_us)));
    }
    return Status::Ok();
  }

  std::vector<std::string> ProcsFiles() const {
    std::vector<std::string> out;
    for (const auto& d : dirs_) out.push_back(d + "/cgroup.procs");
    return out;
  }

  // SIGKILLs every process in the run's groups, until none is left.
  void KillAll() {
    if (layout_.version == 2 && ::access((memory_ + "/cgroup.kill").c_str(), F_OK) == 0) {
      (void)WriteSmallFile(memory_ + "/cgroup.kill", "1");
    }
    for (const auto& d : created_) KillAllIn(d + "/cgroup.procs");
  }

  // Sends SIGKILL once to each process in the groups (no waiting).
  void KillOnce() {
    if (layout_.version == 2 && ::access((memory_ + "/cgroup.kill").c_str(), F_OK) == 0) {
      (void)WriteSmallFile(memory_ + "/cgroup.kill", "1");
      return;
    }
    if (pids_.empty()) return;
    auto text = ReadSmallFile(pids_ + "/cgroup.procs");
    if (!text) return;
    std::istringstream in(*text);
    pid_t pid;
    while (in >> pid) ::kill(pid, SIGKILL);
  }

  void FillStats(ModuleResult& r) const {
    if (layout_.version == 2) {
      r.peak_memory_bytes = NumberIn(memory_ + "/memory.peak");
      r.memory_exceeded = KeyedValue(memory_ + "/memory.events", "oom_kill") > 0;
      r.pids_exceeded = KeyedValue(pids_ + "/pids.events", "max") > 0;
      r.cpu_usage_ms = KeyedValue(cpu_ + "/cpu.stat", "usage_usec") / 1000;
      return;
    }
    r.peak_memory_bytes = NumberIn(memory_ + "/memory.max_usage_in_bytes");
    r.memory_exceeded = KeyedValue(memory_ + "/memory.oom_control", "oom_kill") > 0;
    r.pids_exceeded = KeyedValue(pids_ + "/pids.events", "max") > 0;
    if (!cpuacct_.empty()) r.cpu_usage_ms = NumberIn(cpuacct_ + "/cpuacct.usage") / 1000000;
  }

  ~RunCgroup() {
    KillAll();
    for (const auto& d : created_) RemoveDir(d);
  }

 private:
  const CgroupLayout& layout_;
  std::string memory_, pids_, cpu_, cpuacct_;
  std::vector<std::string> dirs_;
  std::vector<std::string> created_;
};

// ---- the forked child ----

enum ChildStage : int {
  kStageDup = 1,
  kStageCgroup,
  kStageRlimit,
  kStageSetgroups,
  kStageSetgid,
  kStageSetuid,
  kStageAccessModule,
  kStageAccessReadOnly,
  kStageAccessOutput,
  kStageExec,
};

struct ChildError {
  int stage = 0;
  int err = 0;
  int index = 0;
};

// Everything the child needs, prepared before fork: the child only makes async-signal-safe
// calls (the daemon is multi-threaded).
struct ChildPlan {
  int stdin_fd, stdout_fd, stderr_fd, status_fd, error_fd;
  std::vector<const char*> procs_files;
  bool drop_privileges;
  uid_t uid;
  gid_t gid;
  bool set_rlimits;
  rlim_t nproc, cpu_s;
  const char* module;
  std::vector<const char*> read_only;
  const char* output_dir;  // null: none
  const char* bwrap;
  char* const* argv;
  char* const* envp;
};

[[noreturn]] void ChildFail(int error_fd, int stage, int err, int index = 0) {
  ChildError e{stage, err, index};
  (void)!::write(error_fd, &e, sizeof e);
  ::_exit(127);
}

[[noreturn]] void ChildExec(const ChildPlan& p) {
  ::setpgid(0, 0);
  // Move the pipes out of the way of 0..4, then into place.
  int fds[5] = {p.stdin_fd, p.stdout_fd, p.stderr_fd, p.status_fd, p.error_fd};
  for (int& fd : fds) {
    fd = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
    if (fd < 0) ::_exit(127);
  }
  int error_fd = fds[4];
  for (int i = 0; i < 4; ++i) {
    if (::dup2(fds[i], i) < 0) ChildFail(error_fd, kStageDup, errno);
  }
  if (::dup3(error_fd, 4, O_CLOEXEC) < 0) ChildFail(error_fd, kStageDup, errno);
  error_fd = 4;
  ::close_range(5, ~0U, 0);

  // Join the run's groups while still root.
  char pid_text[24];
  int n = 0;
  {
    char rev[24];
    int len = 0;
    for (pid_t pid = ::getpid(); pid > 0; pid /= 10) rev[len++] = static_cast<char>('0' + pid % 10);
    while (len > 0) pid_text[n++] = rev[--len];
  }
  for (size_t i = 0; i < p.procs_files.size(); ++i) {
    int fd = ::open(p.procs_files[i], O_WRONLY | O_CLOEXEC);
    if (fd < 0 || ::write(fd, pid_text, n) != n) {
      ChildFail(error_fd, kStageCgroup, errno, static_cast<int>(i));
    }
    ::close(fd);
  }

  sigset_t none;
  sigemptyset(&none);
  ::sigprocmask(SIG_SETMASK, &none, nullptr);
  struct sigaction dfl {};
  dfl.sa_handler = SIG_DFL;
  for (int sig = 1; sig < NSIG; ++sig) ::sigaction(sig, &dfl, nullptr);

  if (p.set_rlimits) {
    rlimit nproc{p.nproc, p.nproc};
    rlimit cpu{p.cpu_s, p.cpu_s};
    if (::setrlimit(RLIMIT_NPROC, &nproc) != 0 || ::setrlimit(RLIMIT_CPU, &cpu) != 0) {
      ChildFail(error_fd, kStageRlimit, errno);
    }
  }
  if (p.drop_privileges) {
    // Raw system calls: glibc's wrappers synchronise threads, which a forked child lacks.
    if (::syscall(SYS_setgroups, 0, nullptr) != 0) ChildFail(error_fd, kStageSetgroups, errno);
    if (::syscall(SYS_setresgid, p.gid, p.gid, p.gid) != 0) {
      ChildFail(error_fd, kStageSetgid, errno);
    }
    if (::syscall(SYS_setresuid, p.uid, p.uid, p.uid) != 0) {
      ChildFail(error_fd, kStageSetuid, errno);
    }
    if (::access(p.module, R_OK | X_OK) != 0) ChildFail(error_fd, kStageAccessModule, errno);
    for (size_t i = 0; i < p.read_only.size(); ++i) {
      if (::access(p.read_only[i], R_OK) != 0) {
        ChildFail(error_fd, kStageAccessReadOnly, errno, static_cast<int>(i));
      }
    }
    if (p.output_dir != nullptr && ::access(p.output_dir, R_OK | W_OK | X_OK) != 0) {
      ChildFail(error_fd, kStageAccessOutput, errno);
    }
  }
  ::execve(p.bwrap, p.argv, p.envp);
  ChildFail(error_fd, kStageExec, errno);
}

// ---- spec checks ----

Status CheckBindPath(const std::string& path, std::string_view what) {
  if (path.empty() || path[0] != '/') {
    return InvalidArgumentError(std::string(what) + " must be an absolute path: '" + path + "'");
  }
  std::filesystem::path p(path);
  std::string normal = p.lexically_normal().string();
  if (normal.size() > 1 && normal.back() == '/') normal.pop_back();
  if (normal != path) {
    return InvalidArgumentError(std::string(what) + " must be a normalized path: '" + path + "'");
  }
  if (path == "/") return InvalidArgumentError(std::string(what) + " cannot be /");
  for (std::string_view reserved : {"/proc", "/dev", "/sys"}) {
    if (path == reserved || path.rfind(std::string(reserved) + "/", 0) == 0) {
      return InvalidArgumentError(std::string(what) + " cannot be under " + std::string(reserved) +
                                  ": '" + path + "'");
    }
  }
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus(errno, std::string(what) + " " + path);
  return Status::Ok();
}

Status CheckSpec(const ModuleSpec& spec) {
  if (spec.argv.empty()) return InvalidArgumentError("module argv is empty");
  const std::string& module = spec.argv[0];
  FS_RETURN_IF_ERROR(CheckBindPath(module, "module"));
  struct stat st {};
  if (::stat(module.c_str(), &st) != 0) return ErrnoStatus(errno, "module " + module);
  if (!S_ISREG(st.st_mode)) {
    return FailedPreconditionError("module " + module + " is not a regular file");
  }
  if ((st.st_mode & 0111) == 0) {
    return FailedPreconditionError("module " + module + " is not executable");
  }
  for (const auto& p : spec.read_only_paths) FS_RETURN_IF_ERROR(CheckBindPath(p, "read-only path"));
  if (!spec.output_dir.empty()) {
    FS_RETURN_IF_ERROR(CheckBindPath(spec.output_dir, "output dir"));
    if (::lstat(spec.output_dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
      return InvalidArgumentError("output dir " + spec.output_dir +
                                  " is not a directory (symlinks are refused)");
    }
  }
  for (const auto& [name, value] : spec.env) {
    if (name.empty() || name.find('=') != std::string::npos ||
        name.find('\0') != std::string::npos) {
      return InvalidArgumentError("bad environment variable name '" + name + "'");
    }
  }
  const ModuleLimits& l = spec.limits;
  if (l.memory_bytes < (4 << 20)) return InvalidArgumentError("memory limit below 4 MiB");
  if (!(l.cpus > 0)) return InvalidArgumentError("cpus must be positive");
  if (l.max_processes < 4) {
    return InvalidArgumentError("max_processes below 4 (bwrap itself needs 2)");
  }
  if (l.timeout_ms <= 0) return InvalidArgumentError("timeout_ms must be positive");
  return Status::Ok();
}

std::optional<std::string> FindInPath(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    if (::access(name.c_str(), X_OK) == 0) return name;
    return std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::istringstream in(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(in, dir, ':')) {
    if (dir.empty()) continue;
    std::string full = dir + "/" + name;
    if (::access(full.c_str(), X_OK) == 0) return full;
  }
  return std::nullopt;
}

struct Pipe {
  int read = -1, write = -1;
};

void CloseFd(int& fd) {
  if (fd >= 0) ::close(fd);
  fd = -1;
}

// ---- the runner ----

class BwrapRunner final : public ModuleRunner {
 public:
  BwrapRunner(BwrapOptions opts, std::string bwrap, CgroupLayout layout)
      : opts_(std::move(opts)), bwrap_(std::move(bwrap)), layout_(std::move(layout)) {
    // The host's top level: merged-/usr symlinks are recreated, real directories bound.
    for (const char* top : {"/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}) {
      struct stat st {};
      if (::lstat(top, &st) != 0) continue;
      if (S_ISLNK(st.st_mode)) {
        char target[256];
        ssize_t n = ::readlink(top, target, sizeof target - 1);
        if (n <= 0) continue;
        base_args_.insert(base_args_.end(), {"--symlink", std::string(target, n), top});
      } else if (S_ISDIR(st.st_mode)) {
        base_args_.insert(base_args_.end(), {"--ro-bind", top, top});
      }
    }
  }

  // Removes the parent groups when they are empty (v1: a v2 parent also carries the
  // controllers enabled for its children, which a concurrent runner may rely on).
  ~BwrapRunner() override {
    if (layout_.version != 1) return;
    for (const auto& parent : layout_.Parents()) ::rmdir(parent.c_str());
  }

  std::string Describe() const override {
    std::string d = "bwrap " + bwrap_ + ": namespaces user,mount,pid,ipc,uts,cgroup,net";
    d += opts_.sandbox_uid == 0 ? "; daemon uid mapped to 65534 in a user namespace"
                                : "; host uid " + std::to_string(opts_.sandbox_uid) + ":" +
                                      std::to_string(opts_.sandbox_gid);
    if (layout_.version == 0) {
      d += "; no cgroups (" + layout_.why_none +
           "): RLIMIT_NPROC per uid and RLIMIT_CPU only, memory and CPU share not enforced";
      return d;
    }
    d += "; cgroup v" + std::to_string(layout_.version) + ":";
    d += " memory " + layout_.memory + ", pids " + layout_.pids;
    d += layout_.cpu.empty() ? ", cpu share not enforced" : ", cpu " + layout_.cpu;
    if (layout_.version == 1) {
      d += layout_.cpuacct.empty() ? ", no cpu accounting" : ", cpuacct " + layout_.cpuacct;
    }
    return d;
  }

  Result<ModuleResult> Run(const ModuleSpec& spec,
                           std::function<Result<size_t>(std::span<uint8_t>)> stdin_source,
                           std::function<Status(std::string_view)> on_stdout,
                           std::function<void(std::string_view)> on_stderr) override;

 private:
  std::vector<std::string> BwrapArgs(const ModuleSpec& spec) const;

  const BwrapOptions opts_;
  const std::string bwrap_;
  const CgroupLayout layout_;
  std::vector<std::string> base_args_;
};

// Run names are unique in the process, across runners.
std::atomic<uint64_t> next_run{0};

std::vector<std::string> BwrapRunner::BwrapArgs(const ModuleSpec& spec) const {
  std::vector<std::string> a = {bwrap_, "--unshare-all"};
  if (spec.limits.network) a.push_back("--share-net");
  if (opts_.sandbox_uid == 0) {
    a.insert(a.end(), {"--unshare-user", "--uid", "65534", "--gid", "65534"});
  }
  a.insert(a.end(), {"--die-with-parent", "--new-session", "--json-status-fd", "3", "--ro-bind",
                     "/usr", "/usr"});
  a.insert(a.end(), base_args_.begin(), base_args_.end());
  a.insert(a.end(), {"--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"});
  for (const char* etc : {"/etc/passwd", "/etc/group", "/etc/nsswitch.conf", "/etc/hosts",
                          "/etc/resolv.conf", "/etc/localtime", "/etc/ld.so.cache", "/etc/ssl",
                          "/etc/ca-certificates", "/etc/alternatives", "/etc/mime.types"}) {
    a.insert(a.end(), {"--ro-bind-try", etc, etc});
  }
  a.insert(a.end(), {"--ro-bind", spec.argv[0], spec.argv[0]});
  for (const auto& p : spec.read_only_paths) a.insert(a.end(), {"--ro-bind", p, p});
  if (!spec.output_dir.empty()) {
    a.insert(a.end(), {"--bind", spec.output_dir, spec.output_dir});
  }
  a.push_back("--clearenv");
  bool has_path = false, has_home = false;
  for (const auto& [name, value] : spec.env) {
    has_path |= name == "PATH";
    has_home |= name == "HOME";
    a.insert(a.end(), {"--setenv", name, value});
  }
  if (!has_path) a.insert(a.end(), {"--setenv", "PATH", "/usr/bin:/bin"});
  if (!has_home) a.insert(a.end(), {"--setenv", "HOME", "/tmp"});
  a.insert(a.end(), {"--chdir", spec.output_dir.empty() ? "/tmp" : spec.output_dir, "--"});
  a.insert(a.end(), spec.argv.begin(), spec.argv.end());
  return a;
}

Result<ModuleResult> BwrapRunner::Run(
    const ModuleSpec& spec, std::function<Result<size_t>(std::span<uint8_t>)> stdin_source,
    std::function<Status(std::string_view)> on_stdout,
    std::function<void(std::string_view)> on_stderr) {
  FS_RETURN_IF_ERROR(CheckSpec(spec));
  const ModuleLimits& limits = spec.limits;
  const bool drop = opts_.sandbox_uid != 0;
  if (drop && !spec.output_dir.empty() &&
      ::chown(spec.output_dir.c_str(), opts_.sandbox_uid, opts_.sandbox_gid) != 0) {
    return ErrnoStatus(errno, "chown output dir " + spec.output_dir);
  }

  std::optional<RunCgroup> cgroup;
  if (layout_.version != 0) {
    std::string name =
        "run-" + std::to_string(::getpid()) + "-" + std::to_string(next_run.fetch_add(1));
    cgroup.emplace(layout_, name);
    if (Status s = cgroup->Create(limits); !s.ok()) {
      return InternalError("cannot set up the module's cgroup: " + s.message());
    }
  }

  // Pipes: the parent's ends are non-blocking; every end is close-on-exec until the child
  // moves its ends into place.
  Pipe in, out, err, status, error;
  auto close_all = [&] {
    for (Pipe* p : {&in, &out, &err, &status, &error}) {
      CloseFd(p->read);
      CloseFd(p->write);
    }
  };
  for (Pipe* p : {&in, &out, &err, &status, &error}) {
    if (p == &in && !stdin_source) {
      p->read = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
      if (p->read < 0) {
        close_all();
        return ErrnoStatus(errno, "open /dev/null");
      }
      continue;
    }
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) {
      int e = errno;
      close_all();
      return ErrnoStatus(e, "pipe");
    }
    p->read = fds[0];
    p->write = fds[1];
  }

  std::vector<std::string> args = BwrapArgs(spec);
  std::vector<char*> argv;
  for (auto& s : args) argv.push_back(s.data());
  argv.push_back(nullptr);
  std::string env_path = "PATH=/usr/bin:/bin";
  char* envp[] = {env_path.data(), nullptr};
  std::vector<std::string> procs = cgroup ? cgroup->ProcsFiles() : std::vector<std::string>{};

  ChildPlan plan{};
  plan.stdin_fd = in.read;
  plan.stdout_fd = out.write;
  plan.stderr_fd = err.write;
  plan.status_fd = status.write;
  plan.error_fd = error.write;
  for (const auto& p : procs) plan.procs_files.push_back(p.c_str());
  plan.drop_privileges = drop;
  plan.uid = opts_.sandbox_uid;
  plan.gid = opts_.sandbox_gid;
  plan.set_rlimits = !cgroup.has_value();
  plan.nproc = limits.max_processes;
  plan.cpu_s = static_cast<rlim_t>(std::ceil(limits.timeout_ms / 1000.0 * limits.cpus)) + 1;
  plan.module = spec.argv[0].c_str();
  for (const auto& p : spec.read_only_paths) plan.read_only.push_back(p.c_str());
  plan.output_dir = spec.output_dir.empty() ? nullptr : spec.output_dir.c_str();
  plan.bwrap = bwrap_.c_str();
  plan.argv = argv.data();
  plan.envp = envp;

  const auto start = std::chrono::steady_clock::now();
  pid_t pid = ::fork();
  if (pid < 0) {
    int e = errno;
    close_all();
    return ErrnoStatus(e, "fork");
  }
  if (pid == 0) ChildExec(plan);

  CloseFd(in.read);
  CloseFd(out.write);
  CloseFd(err.write);
  CloseFd(status.write);
  CloseFd(error.write);

  // The child writes here only when it fails before exec; exec closes it.
  ChildError child_error;
  ssize_t got;
  do {
    got = ::read(error.read, &child_error, sizeof child_error);
  } while (got < 0 && errno == EINTR);
  CloseFd(error.read);
  if (got == sizeof child_error) {
    int wstatus;
    ::waitpid(pid, &wstatus, 0);
    close_all();
    std::string uid = "uid " + std::to_string(opts_.sandbox_uid);
    std::string why = std::strerror(child_error.err);
    switch (child_error.stage) {
      case kStageAccessModule:
        return FailedPreconditionError("module " + spec.argv[0] +
                                       " is not readable and executable by " + uid + ": " + why);
      case kStageAccessReadOnly:
        return FailedPreconditionError("read-only path " +
                                       spec.read_only_paths.at(child_error.index) +
                                       " is not readable by " + uid + ": " + why);
      case kStageAccessOutput:
        return FailedPreconditionError("output dir " + spec.output_dir + " is not writable by " +
                                       uid + ": " + why);
      case kStageExec:
        return FailedPreconditionError("cannot run " + bwrap_ + ": " + why);
      case kStageCgroup:
        return InternalError("cannot join cgroup " + procs.at(child_error.index) + ": " + why);
      default:
        return InternalError("cannot start the sandbox (stage " +
                             std::to_string(child_error.stage) + "): " + why);
    }
  }

  int pidfd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  for (int fd : {in.write, out.read, err.read, status.read}) {
    if (fd >= 0) ::fcntl(fd, F_SETFL, ::fcntl(fd, F_GETFL) | O_NONBLOCK);
  }

  // A module that stops reading must not kill the daemon with SIGPIPE.
  sigset_t pipe_set, old_mask;
  sigemptyset(&pipe_set);
  sigaddset(&pipe_set, SIGPIPE);
  ::pthread_sigmask(SIG_BLOCK, &pipe_set, &old_mask);

  ModuleResult r;
  std::string status_json;
  std::vector<uint8_t> in_buf(kIoChunkBytes);
  size_t in_off = 0, in_len = 0;
  std::vector<char> read_buf(kIoChunkBytes);
  bool exited = false, killed = false;
  int wstatus = 0;
  const auto deadline = start + std::chrono::milliseconds(limits.timeout_ms);
  std::chrono::steady_clock::time_point exited_at, last_kill;

  auto kill_all = [&] {
    killed = true;
    last_kill = std::chrono::steady_clock::now();
    if (!exited) ::kill(pid, SIGKILL);
    if (cgroup) cgroup->KillOnce();
  };

  while (true) {
    auto now = std::chrono::steady_clock::now();
    if (!killed && now >= deadline) {
      r.timed_out = true;
      kill_all();
    }
    // bwrap's death takes its pid namespace with it, so the pipes close soon after; a process
    // that escaped (it cannot, but) is killed after a grace period.
    if (exited && now - exited_at > std::chrono::seconds(2)) {
      if (cgroup) cgroup->KillAll();
      break;
    }
    if (killed && !exited && now - last_kill > std::chrono::milliseconds(100)) kill_all();

    pollfd fds[5];
    int nfds = 0;
    int i_in = -1, i_out = -1, i_err = -1, i_status = -1, i_pid = -1;
    if (in.write >= 0) fds[i_in = nfds++] = {in.write, POLLOUT, 0};
    if (out.read >= 0) fds[i_out = nfds++] = {out.read, POLLIN, 0};
    if (err.read >= 0) fds[i_err = nfds++] = {err.read, POLLIN, 0};
    if (status.read >= 0) fds[i_status = nfds++] = {status.read, POLLIN, 0};
    if (!exited && pidfd >= 0) fds[i_pid = nfds++] = {pidfd, POLLIN, 0};
    if (exited && out.read < 0 && err.read < 0 && status.read < 0) break;

    int wait_ms = 100;
    if (!killed) {
      wait_ms = static_cast<int>(std::clamp<int64_t>(
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - now).count() + 1, 0,
          100));
    }
    if (pidfd < 0 && !exited) wait_ms = std::min(wait_ms, 20);
    int n = ::poll(fds, nfds, wait_ms);
    if (n < 0 && errno != EINTR) break;

    if (i_in >= 0 && fds[i_in].revents != 0) {
      if (fds[i_in].revents & (POLLERR | POLLHUP)) {
        CloseFd(in.write);  // the module closed its stdin
      } else if (fds[i_in].revents & POLLOUT) {
        if (in_off == in_len && !killed) {
          Result<size_t> got_in = stdin_source(std::span<uint8_t>(in_buf));
          if (!got_in.ok()) {
            r.io_status = got_in.status().WithContext("stdin source");
            kill_all();
            CloseFd(in.write);
          } else if (*got_in == 0) {
            CloseFd(in.write);
          } else {
            in_off = 0;
            in_len = std::min(*got_in, in_buf.size());
          }
        }
        if (in.write >= 0 && in_off < in_len) {
          ssize_t w = ::write(in.write, in_buf.data() + in_off, in_len - in_off);
          if (w > 0) {
            in_off += static_cast<size_t>(w);
          } else if (w < 0 && errno != EAGAIN && errno != EINTR) {
            CloseFd(in.write);  // EPIPE: the module stopped reading
          }
        }
      }
    }
    auto drain = [&](int& fd, auto&& sink) {
      while (fd >= 0) {
        ssize_t got_out = ::read(fd, read_buf.data(), read_buf.size());
        if (got_out > 0) {
          sink(std::string_view(read_buf.data(), static_cast<size_t>(got_out)));
          continue;
        }
        if (got_out < 0 && (errno == EAGAIN || errno == EINTR)) return;
        CloseFd(fd);  // EOF or error
      }
    };
    if (i_out >= 0 && fds[i_out].revents != 0) {
      drain(out.read, [&](std::string_view chunk) {
        if (!on_stdout || !r.io_status.ok()) return;
        if (Status s = on_stdout(chunk); !s.ok()) {
          r.io_status = s.WithContext("stdout handler");
          kill_all();
        }
      });
    }
    if (i_err >= 0 && fds[i_err].revents != 0) {
      drain(err.read, [&](std::string_view chunk) {
        if (on_stderr) on_stderr(chunk);
        r.stderr_tail.append(chunk);
        if (r.stderr_tail.size() > opts_.stderr_tail_bytes) {
          r.stderr_tail.erase(0, r.stderr_tail.size() - opts_.stderr_tail_bytes);
        }
      });
    }
    if (i_status >= 0 && fds[i_status].revents != 0) {
      drain(status.read, [&](std::string_view chunk) {
        if (status_json.size() < 4096) status_json.append(chunk);
      });
    }
    bool maybe_exited = (i_pid >= 0 && fds[i_pid].revents != 0) || (pidfd < 0 && !exited);
    if (maybe_exited) {
      pid_t w = ::waitpid(pid, &wstatus, pidfd >= 0 ? 0 : WNOHANG);
      if (w == pid) {
        exited = true;
        exited_at = std::chrono::steady_clock::now();
        CloseFd(in.write);
      }
    }
  }
  if (!exited) ::waitpid(pid, &wstatus, 0);
  r.duration_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                      std::chrono::steady_clock::now() - start)
                      .count();
  CloseFd(pidfd);
  close_all();
  timespec zero{};
  while (::sigtimedwait(&pipe_set, nullptr, &zero) == SIGPIPE) {
  }
  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);

  if (cgroup) {
    cgroup->KillAll();
    cgroup->FillStats(r);
  }
  if (WIFEXITED(wstatus)) {
    int code = WEXITSTATUS(wstatus);
    if (code > 128 && code <= 128 + 64) {
      r.signal = code - 128;
    } else {
      r.exit_code = code;
    }
  } else if (WIFSIGNALED(wstatus)) {
    r.signal = WTERMSIG(wstatus);
  }
  // bwrap reports the sandbox's setup on the status fd before it runs the module.
  if (!killed && status_json.find("child-pid") == std::string::npos) {
    return FailedPreconditionError("bwrap could not set up the sandbox: " +
                                   LastLine(r.stderr_tail));
  }

  if (!r.io_status.ok()) {
    r.error = "killed: " + r.io_status.ToString();
  } else if (r.timed_out) {
    r.error = "timed out after " + std::to_string(limits.timeout_ms) + " ms";
  } else if (r.memory_exceeded) {
    r.error = "killed: memory limit " + FormatBytes(limits.memory_bytes) + " exceeded";
  } else if (r.signal != 0) {
    r.error = "killed by signal " + std::to_string(r.signal) + " (" + ::strsignal(r.signal) + ")";
  } else if (r.exit_code != 0) {
    r.error = "exit code " + std::to_string(r.exit_code);
    if (r.pids_exceeded) {
      r.error += " (process limit " + std::to_string(limits.max_processes) + " reached)";
    }
    if (std::string last = LastLine(r.stderr_tail); !last.empty()) r.error += ": " + last;
  }
  return r;
}

}  // namespace

Result<std::unique_ptr<ModuleRunner>> MakeBwrapRunner(BwrapOptions opts) {
  if (opts.cgroup_parent.empty() || opts.cgroup_parent.find('/') != std::string::npos ||
      opts.cgroup_parent == "." || opts.cgroup_parent == "..") {
    return InvalidArgumentError("cgroup_parent must be one path component: '" + opts.cgroup_parent +
                                "'");
  }
  auto bwrap = FindInPath(opts.bwrap_path);
  if (!bwrap) {
    return FailedPreconditionError("bubblewrap not found: '" + opts.bwrap_path +
                                   "' (scripts/install-deps installs it)");
  }
  CgroupLayout layout = FindCgroups(opts);
  if (layout.version == 0) {
    if (opts.require_cgroups) {
      return FailedPreconditionError("cgroups unusable for module limits: " + layout.why_none);
    }
    spdlog::warn(
        "sandbox: cgroups unusable ({}); modules run without memory and CPU limits, process "
        "count limited per uid only",
        layout.why_none);
  } else {
    RemoveLeftovers(layout);
  }
  return std::unique_ptr<ModuleRunner>(
      std::make_unique<BwrapRunner>(std::move(opts), std::move(*bwrap), std::move(layout)));
}

}  // namespace fieldstack::compute
