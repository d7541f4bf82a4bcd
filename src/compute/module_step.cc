#include "compute/module_step.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <random>

#include "compute/io.h"

namespace fieldstack::compute {
namespace {

using json = nlohmann::json;

class ModuleStep final : public Step {
 public:
  ModuleStep(ModuleCall call, ModuleRunner* runner, std::string tmp_dir,
             std::function<void(std::string_view)> log)
      : call_(std::move(call)),
        runner_(runner),
        tmp_dir_(std::move(tmp_dir)),
        log_(std::move(log)) {}
  ~ModuleStep() override {
    if (fd_ >= 0) ::close(fd_);
  }

  Status Push(Record& rec, Emitter& out) override {
    (void)out;
    if (fd_ < 0) {
      std::string tmpl = tmp_dir_ + "/spool-XXXXXX";
      fd_ = ::mkstemp(tmpl.data());
      if (fd_ < 0) return ErrnoStatus(errno, "create a spool file in " + tmp_dir_);
      ::unlink(tmpl.c_str());  // anonymous: gone with the descriptor, even after a crash
    }
    buf_ += RecordToJson(rec);
    buf_ += '\n';
    if (buf_.size() >= (1 << 16)) return Flush();
    return Status::Ok();
  }

  Status Finish(Emitter& out) override {
    if (fd_ >= 0) FS_RETURN_IF_ERROR(Flush());
    off_t read_off = 0;
    std::string pending;
    Record rec;
    uint64_t lines = 0;
    ModuleSpec spec;
    spec.argv.push_back(call_.path);
    spec.argv.insert(spec.argv.end(), call_.args.begin(), call_.args.end());
    spec.limits = call_.limits;
    auto result = runner_->Run(
        spec,
        [&](std::span<uint8_t> b) -> Result<size_t> {
          if (fd_ < 0) return size_t{0};
          ssize_t n = ::pread(fd_, b.data(), b.size(), read_off);
          if (n < 0) return ErrnoStatus(errno, "read the module's spool file");
          read_off += n;
          return static_cast<size_t>(n);
        },
        [&](std::string_view chunk) -> Status {
          pending.append(chunk);
          size_t start = 0;
          while (true) {
            size_t nl = pending.find('\n', start);
            if (nl == std::string::npos) break;
            std::string_view line(pending.data() + start, nl - start);
            start = nl + 1;
            ++lines;
            if (line.find_first_not_of(" \t\r") == std::string_view::npos) continue;
            Status s = ParseJsonRecord(line, rec);
            if (!s.ok()) return s.WithContext("module output line " + std::to_string(lines));
            FS_RETURN_IF_ERROR(out.Emit(rec));
          }
          pending.erase(0, start);
          if (pending.size() > (16 << 20))
            return InvalidArgumentError("module output line longer than 16 MiB");
          return Status::Ok();
        },
        [&](std::string_view err) { log_(err); });
    if (fd_ >= 0) {
      ::close(fd_);
      fd_ = -1;
    }
    if (!result.ok()) return result.status().WithContext("module " + call_.path);
    if (!result->io_status.ok()) return result->io_status;
    if (!result->ok()) return UnavailableError("module " + call_.path + ": " + result->error);
    if (pending.find_first_not_of(" \t\r\n") != std::string::npos) {
      Status s = ParseJsonRecord(pending, rec);
      if (!s.ok()) return s.WithContext("module output (last line)");
      FS_RETURN_IF_ERROR(out.Emit(rec));
    }
    return Status::Ok();
  }

 private:
  Status Flush() {
    size_t done = 0;
    while (done < buf_.size()) {
      ssize_t n = ::write(fd_, buf_.data() + done, buf_.size() - done);
      if (n < 0) {
        if (errno == EINTR) continue;
        return ErrnoStatus(errno, "write the module's spool file");
      }
      done += static_cast<size_t>(n);
    }
    buf_.clear();
    return Status::Ok();
  }

  ModuleCall call_;
  ModuleRunner* runner_;
  std::string tmp_dir_;
  std::function<void(std::string_view)> log_;
  int fd_ = -1;
  std::string buf_;
};

}  // namespace

Result<ModuleCall> ResolveModule(const json& decl, const std::string& modules_dir) {
  ModuleCall c;
  std::string name = decl.value("module", "");
  c.path = modules_dir + "/" + name;
  struct stat st;
  if (::stat(c.path.c_str(), &st) != 0)
    return NotFoundError("module '" + name + "' is not stored on the box (upload it first)");
  if (auto it = decl.find("args"); it != decl.end() && it->is_array()) {
    for (const auto& a : *it) c.args.push_back(a.get<std::string>());
  }
  if (auto it = decl.find("limits"); it != decl.end() && it->is_object()) {
    const json& l = *it;
    if (l.contains("memory_mb")) c.limits.memory_bytes = l["memory_mb"].get<uint64_t>() << 20;
    if (l.contains("cpus")) c.limits.cpus = l["cpus"].get<double>();
    if (l.contains("max_processes")) c.limits.max_processes = l["max_processes"].get<uint32_t>();
    if (l.contains("timeout_s")) c.limits.timeout_ms = l["timeout_s"].get<int64_t>() * 1000;
    if (l.contains("network")) c.limits.network = l["network"].get<bool>();
  }
  return c;
}

Result<std::unique_ptr<Step>> MakeModuleStep(const json& decl, ModuleRunner* runner,
                                             const std::string& modules_dir,
                                             const std::string& tmp_dir,
                                             std::function<void(std::string_view)> log) {
  FS_ASSIGN_OR_RETURN(ModuleCall call, ResolveModule(decl, modules_dir));
  return std::unique_ptr<Step>(new ModuleStep(std::move(call), runner, tmp_dir, std::move(log)));
}

}  // namespace fieldstack::compute
