#pragma once

// Auth: the box's management users, their passwords, sessions and API tokens, and the roles
// that every API route checks.
//
// - Users have a role: admin (everything), operator (day-to-day: shares, refresh, schedules,
//   alerts, diagnostics, support packages; not users, certificates, keys or power), reader
//   (read-only). Names: 1-32 of [a-z0-9._-], starting with a letter or digit.
// - Passwords: 12-256 bytes, hashed with argon2id (libsodium crypto_pwhash_str); the hash is
//   all that is kept.
// - Until the first admin exists (NeedsSetup), only SetupAdmin works, and it needs the setup
//   code made at Open (printed once on the console by the daemon).
// - Sessions: a random bearer token ("fss_" + 43 base64url chars) returned by Login; expires
//   after `session_ttl` without use and after `session_max` in all; revoked by Logout, by a
//   password change and by deleting the user. Sessions live in memory: a restart signs
//   everyone out.
// - API tokens: "fst_<id>_<secret>", for scripts, with an optional expiry; only a SHA-256 of
//   the secret is stored. Revocable. They carry their user's role (or a lower one).
// - Failed logins: after `max_failures` failures for a user name, or from one peer address,
//   within `failure_window`, further logins for it are refused (ResourceExhausted, naming how
//   long) for `lockout`, even with the right password; `on_lockout` is called (the daemon
//   raises the security alert). Unknown names count like known ones.
//
// State (users, token hashes) is one JSON file, <dir>/auth.json (0600), replaced atomically on
// every change; a corrupt file is an error at Open, never silently reset.
//
// Thread safety: every method may be called from any thread.

#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "common/status.h"

namespace fieldstack::management {

enum class Role { kReader = 0, kOperator = 1, kAdmin = 2 };
std::string_view RoleName(Role r);                      // "reader", "operator", "admin"
Result<Role> ParseRole(std::string_view name);          // InvalidArgument naming the roles

struct UserInfo {
  std::string name;
  Role role = Role::kReader;
  int64_t created_unix = 0;
  int64_t password_changed_unix = 0;
};

struct ApiTokenInfo {
  std::string id;  // 16 hex chars
  std::string name;
  std::string user;
  Role role = Role::kReader;
  int64_t created_unix = 0;
  int64_t expires_unix = 0;  // 0: never
  int64_t last_used_unix = 0;
};

// Who a request comes from.
struct Principal {
  std::string user;
  Role role = Role::kReader;
  bool api_token = false;  // false: a session
  std::string token_id;    // API token id, or the first 8 chars of the session token
};

struct AuthOptions {
  std::chrono::seconds session_ttl{std::chrono::hours(1)};    // idle expiry
  std::chrono::seconds session_max{std::chrono::hours(12)};   // absolute expiry
  int max_failures = 5;
  std::chrono::seconds failure_window{std::chrono::minutes(5)};
  std::chrono::seconds lockout{std::chrono::minutes(15)};
  // argon2id cost; tests lower it (crypto_pwhash_OPSLIMIT_MIN / MEMLIMIT_MIN).
  uint64_t ops_limit = 2;                // crypto_pwhash_OPSLIMIT_INTERACTIVE
  size_t mem_limit = 64 * 1024 * 1024;   // crypto_pwhash_MEMLIMIT_INTERACTIVE
  // Called (outside the lock) when a user name or peer gets locked out: (what, who, until).
  // what is "user" or "peer".
  std::function<void(const std::string& what, const std::string& who, int64_t until_unix)>
      on_lockout;
};

class Auth {
 public:
  // Loads <dir>/auth.json (made with 0700 `dir` if missing). Corruption for an unreadable
  // file, Internal when libsodium cannot start.
  static Result<std::unique_ptr<Auth>> Open(const std::string& dir, const Clock& clock,
                                            AuthOptions options = {});
  ~Auth();

  // True until an admin exists.
  bool NeedsSetup() const;
  // The one-time code SetupAdmin needs: 8 groups of 4 from [A-Z2-9]... ("ABCD-EFGH-..."),
  // made at Open when NeedsSetup; empty once set up.
  std::string setup_code() const;
  // Makes the first admin. FailedPrecondition once set up, PermissionDenied for a wrong code
  // (counted as a failed login of `peer`), InvalidArgument for a bad name or password.
  Status SetupAdmin(const std::string& setup_code, const std::string& user,
                    const std::string& password, const std::string& peer);

  // A session token for a right password. Unauthenticated ("wrong user name or password")
  // otherwise; ResourceExhausted while locked out.
  struct Session {
    std::string token;
    int64_t expires_unix = 0;  // absolute limit
    UserInfo user;
  };
  Result<Session> Login(const std::string& user, const std::string& password,
                        const std::string& peer);
  // The principal behind a bearer token (session or API token). Unauthenticated for an
  // unknown, expired or revoked token. A session's idle timer restarts.
  Result<Principal> Authenticate(const std::string& bearer);
  // Ends the session of `token` (no error if it is unknown).
  void Logout(const std::string& token);

  Result<std::vector<UserInfo>> ListUsers() const;
  Result<UserInfo> GetUser(const std::string& name) const;
  // AlreadyExists, InvalidArgument (name, password).
  Result<UserInfo> CreateUser(const std::string& name, Role role, const std::string& password);
  // NotFound; FailedPrecondition when it would leave no admin.
  Status DeleteUser(const std::string& name);
  // Changes role; FailedPrecondition when it would leave no admin.
  Status SetRole(const std::string& name, Role role);
  // Sets a new password and ends the user's sessions (API tokens stay).
  Status SetPassword(const std::string& name, const std::string& password);
  // True when `password` is the user's password (no failure counting; for "change my
  // password", which asks for the old one).
  bool CheckPassword(const std::string& name, const std::string& password) const;

  // A new API token for `user` with at most its role; the whole token is returned once.
  struct NewToken {
    ApiTokenInfo info;
    std::string token;
  };
  Result<NewToken> CreateApiToken(const std::string& user, const std::string& name, Role role,
                                  int64_t expires_unix);
  Result<std::vector<ApiTokenInfo>> ListApiTokens() const;
  Status RevokeApiToken(const std::string& id);  // NotFound

 private:
  struct State;
  Auth(std::string dir, const Clock& clock, AuthOptions options);
  std::unique_ptr<State> state_;
};

}  // namespace fieldstack::management
