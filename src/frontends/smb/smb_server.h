#pragma once

// SmbServer: Samba's smbd, supervised, serving shares of the FUSE mount (src/frontends/fuse).
// The daemon generates smb.conf and keeps every Samba file — passdb, locks, state, logs — in
// its own directory (never /etc/samba or /var/lib/samba), and restarts smbd if it dies.
//
// Settings: SMB2/3 only, signing required, encryption per share (off, desired or required),
// no NetBIOS, no printers, no guest. Per share: the users who may write and the users who may
// only read (Samba's valid users / read list). smbd reaches the mount as root (force user):
// Samba does the access control, the Store keeps the data.
//
// Users: Samba needs a system user behind each SMB user. EnsureSystemUser creates a locked
// one (no home, /usr/sbin/nologin, comment "fieldstack SMB user") when the name is free;
// RemoveSystemUsers deletes exactly the users carrying that comment. Passwords live only in
// Samba's passdb in the state directory.
//
// Thread safety: Start, Reload and the destructor from one thread.

#include <sys/types.h>

#include <memory>
#include <string>
#include <vector>

#include "common/status.h"
#include "platform/process.h"

namespace fieldstack::frontends::smb {

struct SmbUser {
  std::string name;
  std::string password;
};

struct SmbShare {
  std::string name;
  std::string path;                          // the share's directory in the FUSE mount
  std::vector<std::string> users;            // read and write
  std::vector<std::string> read_only_users;  // read only
  std::string encrypt = "desired";           // "off", "desired" or "required"
};

struct SmbOptions {
  std::string state_dir;  // smb.conf, passdb, locks, logs
  std::string address = "127.0.0.1";
  uint16_t port = 445;  // 0: a free port
  std::string smbd = "/usr/sbin/smbd";
};

class SmbServer {
 public:
  static constexpr char kUserComment[] = "fieldstack SMB user";

  // Writes the config, creates users and their passwords, starts smbd and waits until it
  // accepts connections. InvalidArgument for bad settings; Unavailable when smbd does not come.
  static Result<std::unique_ptr<SmbServer>> Start(SmbOptions options, std::vector<SmbShare> shares,
                                                  std::vector<SmbUser> users);
  ~SmbServer();  // stops smbd

  // New settings: rewrites smb.conf, adds users (and sets their passwords) and has smbd reload
  // it; connected clients keep their sessions. On InvalidArgument nothing changes.
  Status Reload(const std::vector<SmbShare>& shares, const std::vector<SmbUser>& users);
  // What Reload refuses, without changing anything.
  Status Check(const std::vector<SmbShare>& shares, const std::vector<SmbUser>& users) const;

  uint16_t port() const { return port_; }
  const std::string& config_path() const { return config_; }
  // Lines "PID USER CLIENT-ADDRESS", one per share connection, appended by smbd when a client
  // connects (the audit log names SMB users and clients from it).
  std::string sessions_path() const { return SessionsPath(options_); }
  static std::string SessionsPath(const SmbOptions& o) { return o.state_dir + "/run/sessions"; }
  int restarts() const { return smbd_->restarts(); }
  pid_t pid() { return smbd_->pid(); }  // the running smbd

  // The smb.conf text for these settings (exposed for tests).
  static Result<std::string> RenderConfig(const SmbOptions& options, uint16_t port,
                                          const std::vector<SmbShare>& shares);
  static Status EnsureSystemUser(const std::string& name);
  // Deletes the system users made for SMB (those with kUserComment); with `only`, just those
  // of these names.
  static Status RemoveSystemUsers(const std::vector<std::string>& only = {});

 private:
  SmbServer() = default;
  // Writes smb.conf and the users' passwords.
  Status WriteSettings(const std::vector<SmbShare>& shares, const std::vector<SmbUser>& users);

  SmbOptions options_;
  std::string config_;
  uint16_t port_ = 0;
  std::unique_ptr<platform::Supervised> smbd_;
};

}  // namespace fieldstack::frontends::smb
