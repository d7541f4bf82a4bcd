#pragma once

// Sandboxed user modules: a pipeline step runs a user-supplied program (any executable or
// script stored on the box) under bubblewrap, with cgroup limits on memory, CPU and process
// count, a wall-clock timeout, and its stdout/stderr streamed back to the caller.
//
// Two contracts, both carried by ModuleSpec: input file paths as arguments plus an output
// directory (bound read-write), or JSON lines on stdin and stdout (stdin_source/on_stdout).
//
// Design of the bubblewrap runner (MakeBwrapRunner):
//  - Sandbox: `bwrap --unshare-all` (user, ipc, pid, uts, cgroup and net namespaces;
//    `--share-net` only with limits.network), --die-with-parent, --new-session. The module
//    sees /usr (read-only, with the /bin /lib /lib64 /sbin symlinks of a merged-/usr host), a
//    few files of /etc (passwd, group, hosts, resolv.conf, ssl, ld.so.cache...), a private
//    /proc, a minimal /dev, a private tmpfs /tmp, its own file and read_only_paths read-only,
//    and output_dir read-write, each at the same path as on the box. Nothing else of the host.
//  - Identity: the forked child joins the run's cgroups as root, then drops to the host uid
//    and gid opts.sandbox_uid/gid (default 65534, nobody) with no supplementary groups before it
//    execs bwrap, which then uses an unprivileged user namespace. So the module runs as an
//    unprivileged host uid with no capabilities: the module file and read_only_paths must be
//    readable (module: and executable) by that uid, and the runner chowns output_dir (not its
//    contents) to it before the run. sandbox_uid 0 keeps the daemon's uid: the module then
//    appears as 65534 inside a user namespace but is host root without capabilities (weaker).
//  - cgroups, created before exec so that bwrap and everything it starts are in them:
//    v2 when cgroup_root is a cgroup2 mount (memory.max, memory.swap.max=0, pids.max, cpu.max;
//    cgroup.kill), else v1 controllers memory, pids, cpu, cpuacct (memory.limit_in_bytes and
//    memsw, pids.max, cpu.cfs_quota_us). Each run's group is
//    <root>[/<controller>]/<the daemon's own cgroup>/<cgroup_parent>/run-<pid>-<n>, i.e.
//    nested under the daemon's own group so the daemon's limits still cover its modules.
//    Leftover run groups of a dead daemon are killed and removed by MakeBwrapRunner; empty v1
//    parents are removed when the runner is destroyed. Without
//    usable cgroups and with require_cgroups false, only RLIMIT_NPROC (per uid) and RLIMIT_CPU
//    (from the timeout) are set and a warning is logged; Describe() says what is enforced.
//  - Classification after exit: memory_exceeded from the OOM-kill counter (v1 memory.oom_control
//    oom_kill, v2 memory.events oom_kill), pids_exceeded from pids.events "max", peak memory
//    and CPU time from the group. bwrap reports a module killed by signal N as exit 128+N, so
//    an exit status in 129..192 is reported as signal N (a module exiting 137 itself is
//    indistinguishable from SIGKILL).
//  - Timeout: wall clock (std::chrono::steady_clock, not an injected Clock: it bounds a real
//    process). On timeout or when on_stdout/stdin_source fails, every process of the run's
//    cgroup and bwrap are SIGKILLed; the group is removed after the run.
//  - I/O: non-blocking pipes and one poll loop that feeds stdin and drains stdout/stderr, so a
//    module that writes much before it reads cannot deadlock. SIGPIPE is blocked in the
//    calling thread while it runs.

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/status.h"

namespace fieldstack::compute {

struct ModuleLimits {
  uint64_t memory_bytes = 512ull << 20;  // RAM (and swap) of the whole sandbox
  double cpus = 1.0;                     // CPU bandwidth, in CPUs (0.2 = 20% of one)
  uint32_t max_processes = 64;           // processes+threads, bwrap's own 2 included
  int64_t timeout_ms = 300000;           // wall clock
  bool network = false;                  // share the host's network namespace
};

struct ModuleSpec {
  // argv[0]: absolute path of the module on the box, an existing regular executable file; it
  // is bound read-only into the sandbox at the same path.
  std::vector<std::string> argv;
  // Absolute existing paths (files or directories) bound read-only at the same path.
  std::vector<std::string> read_only_paths;
  // Absolute existing directory bound read-write at the same path, and the module's working
  // directory; empty: none (the working directory is then the private /tmp).
  std::string output_dir;
  // The module's whole environment, plus PATH=/usr/bin:/bin and HOME=/tmp unless set here.
  std::vector<std::pair<std::string, std::string>> env;
  ModuleLimits limits;
};

struct ModuleResult {
  int exit_code = -1;  // -1 when killed by a signal
  int signal = 0;      // the signal that ended the module, 0 if it exited
  bool timed_out = false;
  bool memory_exceeded = false;  // the kernel OOM-killed a process of the sandbox
  bool pids_exceeded = false;    // a fork/clone failed on the process limit
  int64_t duration_ms = 0;
  uint64_t peak_memory_bytes = 0;  // 0 when unknown (no memory cgroup)
  uint64_t cpu_usage_ms = 0;       // 0 when unknown (no cpu accounting cgroup)
  // The last bytes (at most BwrapOptions::stderr_tail_bytes) the module wrote to stderr.
  std::string stderr_tail;
  // Not OK when on_stdout or stdin_source failed; the module was then killed.
  Status io_status;
  // Empty on success; else a human summary: "killed: memory limit 64 MiB exceeded", "timed
  // out after 2000 ms", "exit code 3: <last stderr line>".
  std::string error;

  // The module exited with 0 within its limits and its I/O succeeded.
  bool ok() const { return error.empty(); }
};

// ModuleRunner runs user modules in a sandbox: the seam between compute steps and child
// processes; tests of steps use a fake.
//
// Thread safety: Run may be called concurrently; each run has its own sandbox and cgroup.
class ModuleRunner {
 public:
  virtual ~ModuleRunner() = default;

  // Runs the module to completion. While it runs, bytes from `stdin_source` (null: stdin is
  // /dev/null; it fills the span and returns the count, 0 at end of input) are written to
  // its stdin, stdout chunks go to `on_stdout` and stderr chunks to `on_stderr` (each may be
  // null: discarded). Callbacks run on the calling thread. An error from `stdin_source` or
  // `on_stdout` kills the module and is returned in ModuleResult::io_status. A module that
  // closes its stdin early is not an error.
  //
  // A module that fails, crashes, times out or exceeds a limit is an OK Result with
  // !result.ok(). A Status error means it could not be started: InvalidArgument for a bad
  // spec (empty argv, relative path, "/" as a bind, bad limits, bad env name), NotFound for
  // a missing module or bind path, FailedPrecondition for a module that is not a regular
  // executable file or not accessible to the sandbox uid, or when bwrap could not set up the
  // sandbox (its message included), Internal when cgroups or pipes could not be set up.
  virtual Result<ModuleResult> Run(const ModuleSpec& spec,
                                   std::function<Result<size_t>(std::span<uint8_t>)> stdin_source,
                                   std::function<Status(std::string_view)> on_stdout,
                                   std::function<void(std::string_view)> on_stderr) = 0;

  // One line saying which isolation and limits this runner really enforces, e.g. "bwrap
  // /usr/bin/bwrap: namespaces user,mount,pid,ipc,uts,cgroup,net; host uid 65534:65534; cgroup
  // v1: memory <dir>, pids <dir>, cpu <dir>, cpuacct <dir>" or "...; no cgroups (<why>): ...".
  virtual std::string Describe() const = 0;
};

struct BwrapOptions {
  std::string bwrap_path = "bwrap";  // a name is looked up in PATH
  std::string cgroup_root = "/sys/fs/cgroup";
  // Relative to the daemon's own cgroup in each hierarchy; one path component.
  std::string cgroup_parent = "fieldstack";
  // False: without usable cgroups, run with rlimits only and log a warning.
  bool require_cgroups = true;
  uint32_t sandbox_uid = 65534;
  uint32_t sandbox_gid = 65534;
  size_t stderr_tail_bytes = 64 << 10;
};

// The bubblewrap + cgroups runner. FailedPrecondition when bwrap is missing or when cgroups are
// required but unusable (the message says why).
Result<std::unique_ptr<ModuleRunner>> MakeBwrapRunner(BwrapOptions opts);

}  // namespace fieldstack::compute
