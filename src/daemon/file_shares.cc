#include "daemon/file_shares.h"

#include <spdlog/spdlog.h>

#include <filesystem>

#include "platform/file.h"

namespace fieldstack::daemon {

Result<std::unique_ptr<FileShares>> FileShares::Start(store::Store& st, const Config& c) {
  auto f = std::unique_ptr<FileShares>(new FileShares(st));
  std::string mnt = c.mountpoint.empty() ? c.data_dir + "/mnt" : c.mountpoint;
  frontends::fuse::FuseFs::DetachDeadMount(mnt);
  FS_RETURN_IF_ERROR(platform::MakeDirs(mnt, 0755));
  f->mountpoint_ = std::filesystem::absolute(mnt).lexically_normal().string();  // servers need it
  // Bad settings are found before anything starts.
  FS_ASSIGN_OR_RETURN(auto smb_shares, f->SmbShares(c));
  FS_ASSIGN_OR_RETURN(auto smb_users, f->SmbUsers(c));
  FS_ASSIGN_OR_RETURN(auto exports, f->NfsExports(c));
  auto fs = frontends::fuse::FuseFs::Mount(st, {.mountpoint = f->mountpoint_});
  if (!fs.ok()) return fs.status().WithContext("key 'mountpoint'");
  f->mount_ = std::move(*fs);
  if (c.smb_enabled) {
    auto smb = frontends::smb::SmbServer::Start(
        {.state_dir = c.data_dir + "/smb", .address = c.smb_address, .port = c.smb_port},
        smb_shares, smb_users);
    if (!smb.ok()) return smb.status().WithContext("smb");
    f->smb_ = std::move(*smb);
    for (const auto& s : smb_shares) {
      spdlog::info("SMB share '{}': smbclient //{}/{} -p {} -U {}", s.name, c.smb_address, s.name,
                   f->smb_->port(), smb_users.front().name);
    }
  }
  if (c.nfs_enabled) {
    auto nfs = frontends::nfs::NfsServer::Start(
        {.state_dir = c.data_dir + "/nfs", .address = c.nfs_address, .port = c.nfs_port}, exports);
    if (!nfs.ok()) return nfs.status().WithContext("nfs");
    f->nfs_ = std::move(*nfs);
    std::string host = c.nfs_address == "0.0.0.0" ? "127.0.0.1" : c.nfs_address;
    for (const auto& e : exports) {
      spdlog::info(
          "NFS export '{}': mount -t nfs -o vers=3,tcp {}:/{} DIR (or vers=4.1), "
          "nfs-ls nfs://{}/{}",
          e.name, host, e.name, host, e.name);
    }
  }
  return f;
}

Result<std::vector<frontends::smb::SmbShare>> FileShares::SmbShares(const Config& c) const {
  std::vector<std::string> rw, ro;
  for (const SmbUserConfig& u : c.smb_users) (u.read_only ? ro : rw).push_back(u.name);
  std::vector<frontends::smb::SmbShare> shares;
  for (const ShareConfig& sh : c.shares) {
    if (sh.smb) shares.push_back({sh.name, mountpoint_ + "/" + sh.name, rw, ro, sh.smb_encrypt});
  }
  return shares;
}

Result<std::vector<frontends::smb::SmbUser>> FileShares::SmbUsers(const Config& c) const {
  std::vector<frontends::smb::SmbUser> users;
  if (!c.smb_enabled) return users;
  for (const SmbUserConfig& u : c.smb_users) {
    FS_ASSIGN_OR_RETURN(std::string pw,
                        ReadSecret(u.password_file, "smb.users " + u.name + " password_file"));
    users.push_back({u.name, pw.substr(0, pw.find('\n'))});
  }
  return users;
}

Result<std::vector<frontends::nfs::NfsExport>> FileShares::NfsExports(const Config& c) const {
  std::vector<frontends::nfs::NfsExport> exports;
  if (!c.nfs_enabled) return exports;
  for (size_t i = 0; i < c.shares.size(); ++i) {
    const ShareConfig& sh = c.shares[i];
    if (!sh.nfs) continue;
    std::string key = "shares[" + std::to_string(i) + "].nfs_clients";
    if (sh.nfs_clients.empty()) {
      return InvalidArgumentError("key '" + key +
                                  "': list the clients allowed (addresses, CIDR prefixes or "
                                  "\"*\"), or set nfs = false for share '" +
                                  sh.name + "'");
    }
    for (const std::string& client : sh.nfs_clients) {
      FS_RETURN_IF_ERROR(
          frontends::nfs::NfsServer::CheckClient(client).WithContext("key '" + key + "'"));
    }
    FS_ASSIGN_OR_RETURN(store::ShareInfo info, store_.GetShare(sh.name));
    exports.push_back({.id = info.id,
                       .name = sh.name,
                       .path = mountpoint_ + "/" + sh.name,
                       .clients = sh.nfs_clients,
                       .read_only = sh.nfs_read_only,
                       .squash = sh.nfs_squash});
  }
  return exports;
}

Status FileShares::Reload(const Config& c) {
  FS_ASSIGN_OR_RETURN(auto smb_shares, SmbShares(c));
  FS_ASSIGN_OR_RETURN(auto smb_users, SmbUsers(c));
  FS_ASSIGN_OR_RETURN(auto exports, NfsExports(c));
  // All or nothing: both are checked before either changes.
  if (smb_ != nullptr) FS_RETURN_IF_ERROR(smb_->Check(smb_shares, smb_users).WithContext("smb"));
  if (nfs_ != nullptr) FS_RETURN_IF_ERROR(nfs_->Check(exports).WithContext("nfs"));
  if (smb_ != nullptr) FS_RETURN_IF_ERROR(smb_->Reload(smb_shares, smb_users).WithContext("smb"));
  if (nfs_ != nullptr) FS_RETURN_IF_ERROR(nfs_->Reload(exports).WithContext("nfs"));
  if ((smb_ != nullptr) != c.smb_enabled || (nfs_ != nullptr) != c.nfs_enabled) {
    spdlog::warn("enabling or disabling [smb] or [nfs] takes a restart");
  }
  return Status::Ok();
}

FileShares::~FileShares() {
  smb_.reset();  // no new requests
  nfs_.reset();
  mount_.reset();  // unmounts; open files are committed
}

}  // namespace fieldstack::daemon
