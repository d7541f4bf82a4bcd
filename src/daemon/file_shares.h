#pragma once

// The file-share front ends of the daemon: the FUSE mount of every share, smbd serving it over
// SMB ([smb]) and nfs-ganesha exporting it over NFS ([nfs]); docs/semantics.md says what they
// keep and refuse.
//
// Thread safety: Start, Reload and the destructor from one thread.

#include <memory>
#include <string>

#include "common/status.h"
#include "daemon/config.h"
#include "frontends/fuse/fuse_fs.h"
#include "frontends/nfs/nfs_server.h"
#include "frontends/smb/smb_server.h"
#include "store/store.h"

namespace fieldstack::daemon {

class FileShares {
 public:
  // Mounts the shares and starts the servers the config enables; logs how to connect.
  // InvalidArgument for bad settings (naming the key).
  static Result<std::unique_ptr<FileShares>> Start(store::Store& st, const Config& c);
  ~FileShares();  // servers first, then the mount (open files are committed)

  // Applies changed share and user settings of SMB and NFS (shares must exist in the Store);
  // clients stay connected. Servers enabled or disabled, addresses and ports need a restart.
  Status Reload(const Config& c);

  const std::string& mountpoint() const { return mountpoint_; }

 private:
  FileShares(store::Store& st) : store_(st) {}
  Result<std::vector<frontends::smb::SmbShare>> SmbShares(const Config& c) const;
  Result<std::vector<frontends::smb::SmbUser>> SmbUsers(const Config& c) const;
  Result<std::vector<frontends::nfs::NfsExport>> NfsExports(const Config& c) const;

  store::Store& store_;
  std::string mountpoint_;
  std::unique_ptr<frontends::fuse::FuseFs> mount_;
  std::unique_ptr<frontends::smb::SmbServer> smb_;
  std::unique_ptr<frontends::nfs::NfsServer> nfs_;
};

}  // namespace fieldstack::daemon
