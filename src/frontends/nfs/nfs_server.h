#pragma once

// NfsServer: nfs-ganesha, supervised, exporting shares of the FUSE mount (src/frontends/fuse)
// through its VFS FSAL over NFSv3 and NFSv4 (4.0, 4.1, 4.2), TCP only.
//
// The daemon generates ganesha.conf and keeps ganesha's pid file, logs and NFSv4 recovery
// state in its own directory. NFSv3 needs the portmapper: when nothing answers on port 111 of
// 127.0.0.1, rpcbind is started and supervised too. Grace periods are off (Graceless): the
// Store, not ganesha, holds the state that matters, and locks (NLM) are not offered.
//
// Per export: the clients allowed (IPv4/IPv6 addresses or CIDR prefixes, or "*"), read-only or
// read-write, and squashing (root by default; all; none). Everyone else is refused at mount.
// Attributes are not cached by ganesha (Attr_Expiration_Time 0), so a change made through
// another front end (SMB, the Store API) is seen at once.
//
// Thread safety: Start, Reload and the destructor from one thread.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "platform/process.h"

namespace fieldstack::frontends::nfs {

struct NfsExport {
  uint32_t id = 0;   // stable across restarts and reloads (the Store's share id), 1..65535
  std::string name;  // exported as /name (NFSv3 mount path and NFSv4 pseudo path)
  std::string path;  // the share's directory in the FUSE mount
  std::vector<std::string> clients;  // addresses or CIDRs allowed; "*" for any
  bool read_only = false;
  std::string squash = "root";  // "root", "all" or "none"
  uint32_t anonymous_uid = 65534;
  uint32_t anonymous_gid = 65534;
};

struct NfsOptions {
  std::string state_dir;  // ganesha.conf, pid file, recovery state, logs
  std::string address = "127.0.0.1";
  uint16_t port = 2049;  // 0: a free port (clients find it through the portmapper)
  std::string ganesha = "/usr/bin/ganesha.nfsd";
  std::string rpcbind = "/usr/sbin/rpcbind";
};

class NfsServer {
 public:
  // Writes the config, starts rpcbind when needed and ganesha, and waits until ganesha's NFS
  // and MOUNT services answer. InvalidArgument for bad settings; Unavailable when ganesha does
  // not come up.
  static Result<std::unique_ptr<NfsServer>> Start(NfsOptions options,
                                                  std::vector<NfsExport> exports);
  ~NfsServer();  // stops ganesha (and the rpcbind it started)

  // New exports: rewrites the config and has ganesha reload it. On InvalidArgument nothing
  // changes.
  Status Reload(const std::vector<NfsExport>& exports);
  // What Reload refuses, without changing anything.
  Status Check(const std::vector<NfsExport>& exports) const {
    return RenderConfig(options_, port_, exports).status();
  }

  uint16_t port() const { return port_; }
  const std::string& config_path() const { return config_; }
  int restarts() const { return ganesha_->restarts(); }
  pid_t pid() { return ganesha_->pid(); }

  static Result<std::string> RenderConfig(const NfsOptions& options, uint16_t port,
                                          const std::vector<NfsExport>& exports);
  // Checks one allow-list entry: "*", an address, or a CIDR prefix.
  static Status CheckClient(const std::string& client);

 private:
  NfsServer() = default;
  Status WaitReady();

  NfsOptions options_;
  std::string config_;
  uint16_t port_ = 0;
  std::unique_ptr<platform::Supervised> rpcbind_;  // only when we started it
  std::unique_ptr<platform::Supervised> ganesha_;
};

}  // namespace fieldstack::frontends::nfs
