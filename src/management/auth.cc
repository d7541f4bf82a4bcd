// Auth: users, sessions, API tokens and login lockouts (see auth.h for the contract).
//
// Design:
// - All state sits in State under one mutex `mu`. Argon2id hashing and verification are slow
//   on purpose (tens to hundreds of ms, 64 MiB), so they run outside the lock: a method copies
//   what it needs under the lock, hashes or verifies unlocked, then locks again and re-checks
//   (the user may have gone or changed its password meanwhile) before it changes anything.
// - Persistent changes build the new user/token maps as copies, write them to auth.json and
//   only then swap them in, so a failed write leaves memory and disk unchanged. The file is
//   written under the lock so that writes land in order.
// - Sessions are in memory only, keyed by the first 16 bytes of SHA-256(token); the full
//   digest is compared with sodium_memcmp. API tokens are looked up by their public id and the
//   SHA-256 of the secret is compared the same way. Clear tokens are never kept.
// - Failed logins are counted per user name and per peer address (monotonic times of the
//   failures within failure_window). Reaching max_failures starts a lockout of `lockout`;
//   on_lockout is called after the lock is released. Logins for an unknown user verify the
//   password against a dummy hash so that they take as long as for a known one.
// - last_used of API tokens is kept in memory and written to the file at most once a minute
//   per token (and with any other change).
//
// auth.json: {"version": 1, "users": [{name, role, hash, created, password_changed}],
//             "tokens": [{id, name, user, role, sha256, created, expires, last_used}]}
// where hash is the argon2id string of crypto_pwhash_str, sha256 is the hex SHA-256 of the
// token's secret part (the 43 base64url characters) and times are Unix seconds.

#include "management/auth.h"

#include <sodium.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <deque>
#include <nlohmann/json.hpp>
#include <semaphore>
#include <utility>

#include "crypto/hash.h"
#include "platform/file.h"

namespace fieldstack::management {
namespace {

constexpr size_t kMinPasswordBytes = 12;
constexpr size_t kMaxPasswordBytes = 256;
constexpr size_t kMaxUserNameChars = 32;
constexpr size_t kMaxTokenNameBytes = 64;
constexpr size_t kSecretBytes = 32;
constexpr size_t kSecretChars = 43;  // base64url of 32 bytes, unpadded
constexpr size_t kTokenIdBytes = 8;
constexpr size_t kTokenIdChars = 16;
constexpr std::string_view kSessionPrefix = "fss_";
constexpr std::string_view kApiTokenPrefix = "fst_";
constexpr size_t kSessionTokenChars = 4 + kSecretChars;                  // 47
constexpr size_t kApiTokenChars = 4 + kTokenIdChars + 1 + kSecretChars;  // 64
constexpr size_t kSessionKeyBytes = 16;     // the part of SHA-256(token) used as map key
constexpr size_t kMaxFailureKeyBytes = 64;  // user names and peers are cut to this
constexpr size_t kFailureSweepThreshold = 1024;
constexpr int64_t kLastUsedSaveInterval_s = 60;
constexpr int64_t kNanosPerSecond = 1'000'000'000;
constexpr std::string_view kSetupAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZ23456789";
constexpr int kSetupGroups = 8;
constexpr int kSetupGroupChars = 4;

struct UserRecord {
  UserInfo info;
  std::string hash;  // crypto_pwhash_str output
};

struct TokenRecord {
  ApiTokenInfo info;
  std::string sha256;           // raw 32 bytes of SHA-256(secret)
  int64_t last_used_saved = 0;  // the last_used_unix that auth.json holds
};

struct SessionRecord {
  std::string user;
  std::string full_hash;  // raw SHA-256(token)
  std::string prefix;     // first 8 characters of the token
  int64_t created_mono_ns = 0;
  int64_t last_used_mono_ns = 0;
  int64_t expires_unix = 0;
};

struct FailureRecord {
  std::deque<int64_t> failures_mono_ns;  // within failure_window
  int64_t locked_until_mono_ns = 0;      // 0: not locked
};

using Users = std::map<std::string, UserRecord>;
using Tokens = std::map<std::string, TokenRecord>;

struct LockoutEvent {
  std::string what;
  std::string who;
  int64_t until_unix = 0;
};

bool IsLowerHex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool IsBase64Url(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

Status CheckUserName(const std::string& name) {
  auto bad = [&] {
    return InvalidArgumentError(
        "user name must be 1 to 32 characters of a-z, 0-9, '.', '_' and '-', starting with a "
        "letter or digit");
  };
  if (name.empty() || name.size() > kMaxUserNameChars) return bad();
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
    if (!ok) return bad();
  }
  char first = name[0];
  if (!((first >= 'a' && first <= 'z') || (first >= '0' && first <= '9'))) return bad();
  return Status::Ok();
}

Status CheckPasswordRules(const std::string& password) {
  if (password.size() < kMinPasswordBytes || password.size() > kMaxPasswordBytes) {
    return InvalidArgumentError("password must be 12 to 256 bytes long");
  }
  return Status::Ok();
}

Status CheckTokenName(const std::string& name) {
  if (name.empty() || name.size() > kMaxTokenNameBytes) {
    return InvalidArgumentError("token name must be 1 to 64 bytes long");
  }
  for (unsigned char c : name) {
    if (c < 0x20 || c == 0x7f) {
      return InvalidArgumentError("token name must not contain control characters");
    }
  }
  return Status::Ok();
}

std::string Base64UrlNoPad(const unsigned char* data, size_t len) {
  std::string out(sodium_base64_encoded_len(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING), '\0');
  sodium_bin2base64(out.data(), out.size(), data, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

std::string Hex(std::string_view raw) {
  std::string out(raw.size() * 2 + 1, '\0');
  sodium_bin2hex(out.data(), out.size(), reinterpret_cast<const unsigned char*>(raw.data()),
                 raw.size());
  out.resize(raw.size() * 2);
  return out;
}

// The raw bytes of lower-case hex `hex` of exactly `bytes` bytes, or nullopt.
std::optional<std::string> FromHex(const std::string& hex, size_t bytes) {
  if (hex.size() != bytes * 2 || !std::all_of(hex.begin(), hex.end(), IsLowerHex)) {
    return std::nullopt;
  }
  std::string out(bytes, '\0');
  size_t len = 0;
  if (sodium_hex2bin(reinterpret_cast<unsigned char*>(out.data()), out.size(), hex.data(),
                     hex.size(), nullptr, &len, nullptr) != 0 ||
      len != bytes) {
    return std::nullopt;
  }
  return out;
}

// A fresh random secret as 43 base64url characters.
std::string NewSecret() {
  unsigned char raw[kSecretBytes];
  randombytes_buf(raw, sizeof raw);
  std::string out = Base64UrlNoPad(raw, sizeof raw);
  sodium_memzero(raw, sizeof raw);
  return out;
}

std::string NewSetupCode() {
  std::string code;
  for (int g = 0; g < kSetupGroups; ++g) {
    if (g > 0) code += '-';
    for (int i = 0; i < kSetupGroupChars; ++i) {
      code += kSetupAlphabet[randombytes_uniform(static_cast<uint32_t>(kSetupAlphabet.size()))];
    }
  }
  return code;
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  if (a.empty()) return true;
  return sodium_memcmp(a.data(), b.data(), a.size()) == 0;
}

// argon2id takes mem_limit (64 MiB) per hash: at most two run at once, whatever the number of
// sign-in requests, so a flood of logins queues instead of exhausting memory.
std::counting_semaphore<2>& ArgonSlots() {
  static std::counting_semaphore<2> slots(2);
  return slots;
}

struct ArgonSlot {
  ArgonSlot() { ArgonSlots().acquire(); }
  ~ArgonSlot() { ArgonSlots().release(); }
};

Result<std::string> HashPassword(const std::string& password, const AuthOptions& options) {
  ArgonSlot slot;
  char out[crypto_pwhash_STRBYTES];
  if (crypto_pwhash_str(out, password.data(), password.size(), options.ops_limit,
                        options.mem_limit) != 0) {
    return InternalError("argon2id password hashing failed (out of memory?)");
  }
  return std::string(out);
}

bool VerifyPassword(const std::string& hash, const std::string& password) {
  if (password.size() > kMaxPasswordBytes) return false;
  ArgonSlot slot;
  return crypto_pwhash_str_verify(hash.c_str(), password.data(), password.size()) == 0;
}

std::string FailureKey(const std::string& s) { return s.substr(0, kMaxFailureKeyBytes); }

int64_t CeilSeconds(int64_t ns) { return (ns + kNanosPerSecond - 1) / kNanosPerSecond; }

}  // namespace

std::string_view RoleName(Role r) {
  switch (r) {
    case Role::kReader:
      return "reader";
    case Role::kOperator:
      return "operator";
    case Role::kAdmin:
      return "admin";
  }
  return "reader";
}

Result<Role> ParseRole(std::string_view name) {
  if (name == "reader") return Role::kReader;
  if (name == "operator") return Role::kOperator;
  if (name == "admin") return Role::kAdmin;
  return InvalidArgumentError("unknown role '" + std::string(name.substr(0, 32)) +
                              "' (reader, operator or admin)");
}

struct Auth::State {
  State(std::string dir_in, const Clock& clock_in, AuthOptions options_in)
      : dir(std::move(dir_in)),
        path(dir + "/auth.json"),
        clock(clock_in),
        options(std::move(options_in)) {}

  // Immutable after Open.
  const std::string dir;
  const std::string path;
  const Clock& clock;
  const AuthOptions options;
  std::string dummy_hash;  // for unknown users; set at Open

  mutable Mutex mu;
  Users users GUARDED_BY(mu);
  Tokens tokens GUARDED_BY(mu);
  std::map<std::string, SessionRecord> sessions GUARDED_BY(mu);  // by kSessionKeyBytes
  std::map<std::string, FailureRecord> user_failures GUARDED_BY(mu);
  std::map<std::string, FailureRecord> peer_failures GUARDED_BY(mu);
  std::string setup_code GUARDED_BY(mu);  // empty once an admin exists

  int64_t NowUnix() const { return clock.NowUnixNanos() / kNanosPerSecond; }
  int64_t NowMono() const { return clock.MonotonicNanos(); }

  bool HasAdminLocked() const REQUIRES(mu) {
    return std::any_of(users.begin(), users.end(),
                       [](const auto& u) { return u.second.info.role == Role::kAdmin; });
  }

  // Writes `u` and `t` to auth.json; the caller swaps them in on success.
  Status SaveLocked(const Users& u, const Tokens& t) const REQUIRES(mu);
  Status Load() REQUIRES(mu);

  // ResourceExhausted when `rec` is locked now.
  static Status CheckLock(const FailureRecord* rec, int64_t now_ns, const std::string& what) {
    if (rec == nullptr || rec->locked_until_mono_ns <= now_ns) return Status::Ok();
    return ResourceExhaustedError("too many failed logins " + what + "; try again in " +
                                  std::to_string(CeilSeconds(rec->locked_until_mono_ns - now_ns)) +
                                  " s");
  }
  Status CheckPeerLocked(const std::string& peer) const REQUIRES(mu) {
    auto it = peer_failures.find(FailureKey(peer));
    return CheckLock(it == peer_failures.end() ? nullptr : &it->second, NowMono(),
                     "from " + FailureKey(peer));
  }
  Status CheckUserLocked(const std::string& user) const REQUIRES(mu) {
    auto it = user_failures.find(FailureKey(user));
    return CheckLock(it == user_failures.end() ? nullptr : &it->second, NowMono(),
                     "for user '" + FailureKey(user) + "'");
  }

  // Counts one failure in `map` for `who`; appends to `events` when a lockout starts.
  void RecordFailure(std::map<std::string, FailureRecord>& map, const std::string& what,
                     const std::string& who, std::vector<LockoutEvent>& events) REQUIRES(mu) {
    int64_t now = NowMono();
    int64_t window = std::chrono::nanoseconds(options.failure_window).count();
    if (map.size() >= kFailureSweepThreshold) {
      std::erase_if(map, [&](const auto& e) {
        const FailureRecord& r = e.second;
        return r.locked_until_mono_ns <= now &&
               (r.failures_mono_ns.empty() || now - r.failures_mono_ns.back() >= window);
      });
    }
    FailureRecord& rec = map[FailureKey(who)];
    if (rec.locked_until_mono_ns > now) return;  // already locked; not counted again
    while (!rec.failures_mono_ns.empty() && now - rec.failures_mono_ns.front() >= window) {
      rec.failures_mono_ns.pop_front();
    }
    rec.failures_mono_ns.push_back(now);
    if (static_cast<int>(rec.failures_mono_ns.size()) < options.max_failures) return;
    rec.failures_mono_ns.clear();
    rec.locked_until_mono_ns = now + std::chrono::nanoseconds(options.lockout).count();
    int64_t until_unix = NowUnix() + options.lockout.count();
    spdlog::warn("auth: {} '{}' locked out for {} s after {} failed logins", what, FailureKey(who),
                 options.lockout.count(), options.max_failures);
    events.push_back({what, FailureKey(who), until_unix});
  }

  void RecordLoginFailure(const std::string& user, const std::string& peer,
                          std::vector<LockoutEvent>& events) REQUIRES(mu) {
    RecordFailure(user_failures, "user", user, events);
    RecordFailure(peer_failures, "peer", peer, events);
  }

  void FireLockouts(const std::vector<LockoutEvent>& events) const {
    if (!options.on_lockout) return;
    for (const LockoutEvent& e : events) options.on_lockout(e.what, e.who, e.until_unix);
  }

  void EndSessionsOfLocked(const std::string& user) REQUIRES(mu) {
    std::erase_if(sessions, [&](const auto& e) { return e.second.user == user; });
  }

  bool SessionExpired(const SessionRecord& s, int64_t now) const {
    return now - s.last_used_mono_ns >= std::chrono::nanoseconds(options.session_ttl).count() ||
           now - s.created_mono_ns >= std::chrono::nanoseconds(options.session_max).count();
  }

  Result<Principal> AuthenticateSession(const std::string& bearer);
  Result<Principal> AuthenticateApiToken(const std::string& bearer);
};

Status Auth::State::SaveLocked(const Users& u, const Tokens& t) const {
  nlohmann::json users_json = nlohmann::json::array();
  for (const auto& [name, rec] : u) {
    users_json.push_back({{"name", rec.info.name},
                          {"role", std::string(RoleName(rec.info.role))},
                          {"hash", rec.hash},
                          {"created", rec.info.created_unix},
                          {"password_changed", rec.info.password_changed_unix}});
  }
  nlohmann::json tokens_json = nlohmann::json::array();
  for (const auto& [id, rec] : t) {
    tokens_json.push_back({{"id", rec.info.id},
                           {"name", rec.info.name},
                           {"user", rec.info.user},
                           {"role", std::string(RoleName(rec.info.role))},
                           {"sha256", Hex(rec.sha256)},
                           {"created", rec.info.created_unix},
                           {"expires", rec.info.expires_unix},
                           {"last_used", rec.info.last_used_unix}});
  }
  nlohmann::json doc = {{"version", 1}, {"users", users_json}, {"tokens", tokens_json}};
  return platform::WriteFileAtomic(path, doc.dump(2) + "\n", 0600).WithContext("saving auth state");
}

Status Auth::State::Load() {
  auto text = platform::ReadFileToString(path);
  if (!text.ok()) {
    if (text.status().code() == StatusCode::kNotFound) return Status::Ok();  // first start
    return text.status();
  }
  auto corrupt = [&](const std::string& why) { return CorruptionError(path + ": " + why); };
  nlohmann::json doc = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (doc.is_discarded()) return corrupt("not valid JSON");
  if (!doc.is_object()) return corrupt("not a JSON object");
  Users loaded_users;
  Tokens loaded_tokens;
  try {
    if (doc.at("version").get<int>() != 1) return corrupt("unknown version");
    if (!doc.at("users").is_array() || !doc.at("tokens").is_array()) {
      return corrupt("users and tokens must be arrays");
    }
    for (const nlohmann::json& j : doc.at("users")) {
      UserRecord rec;
      rec.info.name = j.at("name").get<std::string>();
      if (!CheckUserName(rec.info.name).ok()) return corrupt("bad user name");
      auto role = ParseRole(j.at("role").get<std::string>());
      if (!role.ok()) return corrupt("bad role of user '" + rec.info.name + "'");
      rec.info.role = *role;
      rec.hash = j.at("hash").get<std::string>();
      if (!rec.hash.starts_with("$argon2id$") || rec.hash.size() >= crypto_pwhash_STRBYTES) {
        return corrupt("bad password hash of user '" + rec.info.name + "'");
      }
      rec.info.created_unix = j.at("created").get<int64_t>();
      rec.info.password_changed_unix = j.at("password_changed").get<int64_t>();
      std::string name = rec.info.name;
      if (!loaded_users.emplace(name, std::move(rec)).second) {
        return corrupt("user '" + name + "' appears twice");
      }
    }
    for (const nlohmann::json& j : doc.at("tokens")) {
      TokenRecord rec;
      rec.info.id = j.at("id").get<std::string>();
      if (!FromHex(rec.info.id, kTokenIdBytes)) return corrupt("bad token id");
      rec.info.name = j.at("name").get<std::string>();
      rec.info.user = j.at("user").get<std::string>();
      if (!loaded_users.contains(rec.info.user)) {
        return corrupt("token " + rec.info.id + " belongs to an unknown user");
      }
      auto role = ParseRole(j.at("role").get<std::string>());
      if (!role.ok()) return corrupt("bad role of token " + rec.info.id);
      rec.info.role = *role;
      auto sha = FromHex(j.at("sha256").get<std::string>(), crypto_hash_sha256_BYTES);
      if (!sha) return corrupt("bad sha256 of token " + rec.info.id);
      rec.sha256 = std::move(*sha);
      rec.info.created_unix = j.at("created").get<int64_t>();
      rec.info.expires_unix = j.at("expires").get<int64_t>();
      rec.info.last_used_unix = j.at("last_used").get<int64_t>();
      rec.last_used_saved = rec.info.last_used_unix;
      std::string id = rec.info.id;
      if (!loaded_tokens.emplace(id, std::move(rec)).second) {
        return corrupt("token " + id + " appears twice");
      }
    }
  } catch (const nlohmann::json::exception& e) {
    return corrupt(std::string("unexpected content: ") + e.what());
  }
  users = std::move(loaded_users);
  tokens = std::move(loaded_tokens);
  return Status::Ok();
}

Auth::Auth(std::string dir, const Clock& clock, AuthOptions options)
    : state_(std::make_unique<State>(std::move(dir), clock, std::move(options))) {}

Auth::~Auth() = default;

Result<std::unique_ptr<Auth>> Auth::Open(const std::string& dir, const Clock& clock,
                                         AuthOptions options) {
  static const int sodium_rc = sodium_init();  // thread-safe, once per process
  if (sodium_rc < 0) return InternalError("libsodium failed to initialize");
  FS_RETURN_IF_ERROR(platform::MakeDirs(dir, 0700));
  std::unique_ptr<Auth> auth(new Auth(dir, clock, std::move(options)));
  State& s = *auth->state_;
  {
    MutexLock lock(s.mu);
    FS_RETURN_IF_ERROR(s.Load());
    if (!s.HasAdminLocked()) s.setup_code = NewSetupCode();
  }
  // A hash of a random password, verified against for unknown user names.
  FS_ASSIGN_OR_RETURN(s.dummy_hash, HashPassword(NewSecret(), s.options));
  return auth;
}

bool Auth::NeedsSetup() const {
  MutexLock lock(state_->mu);
  return !state_->HasAdminLocked();
}

std::string Auth::setup_code() const {
  MutexLock lock(state_->mu);
  return state_->HasAdminLocked() ? std::string() : state_->setup_code;
}

Status Auth::SetupAdmin(const std::string& setup_code, const std::string& user,
                        const std::string& password, const std::string& peer) {
  State& s = *state_;
  std::vector<LockoutEvent> events;
  Status refused;
  {
    MutexLock lock(s.mu);
    if (s.HasAdminLocked()) return FailedPreconditionError("the first admin already exists");
    FS_RETURN_IF_ERROR(s.CheckPeerLocked(peer));
    if (!ConstantTimeEquals(setup_code, s.setup_code)) {
      s.RecordFailure(s.peer_failures, "peer", peer, events);
      refused = PermissionDeniedError("wrong setup code");
    }
  }
  if (!refused.ok()) {
    s.FireLockouts(events);
    return refused;
  }
  FS_RETURN_IF_ERROR(CheckUserName(user));
  FS_RETURN_IF_ERROR(CheckPasswordRules(password));
  FS_ASSIGN_OR_RETURN(std::string hash, HashPassword(password, s.options));

  MutexLock lock(s.mu);
  if (s.HasAdminLocked()) return FailedPreconditionError("the first admin already exists");
  if (s.users.contains(user)) return AlreadyExistsError("user '" + user + "' exists");
  int64_t now = s.NowUnix();
  Users users = s.users;
  users[user] = UserRecord{{user, Role::kAdmin, now, now}, std::move(hash)};
  FS_RETURN_IF_ERROR(s.SaveLocked(users, s.tokens));
  s.users = std::move(users);
  s.setup_code.clear();
  spdlog::info("auth: first admin '{}' set up", user);
  return Status::Ok();
}

Result<Auth::Session> Auth::Login(const std::string& user, const std::string& password,
                                  const std::string& peer) {
  State& s = *state_;
  std::string hash;
  {
    MutexLock lock(s.mu);
    if (!s.HasAdminLocked()) return FailedPreconditionError("no admin yet: run the first setup");
    FS_RETURN_IF_ERROR(s.CheckPeerLocked(peer));
    FS_RETURN_IF_ERROR(s.CheckUserLocked(user));
    auto it = s.users.find(user);
    if (it != s.users.end()) hash = it->second.hash;
  }
  // Unknown names are verified against the dummy hash: same time, same counting.
  bool right = VerifyPassword(hash.empty() ? s.dummy_hash : hash, password) && !hash.empty();

  std::vector<LockoutEvent> events;
  Result<Session> result = UnauthenticatedError("wrong user name or password");
  {
    MutexLock lock(s.mu);
    auto it = s.users.find(user);
    // A password change or deletion while verifying makes the verification stale.
    if (right && it != s.users.end() && it->second.hash == hash) {
      Status locked = s.CheckPeerLocked(peer);
      if (locked.ok()) locked = s.CheckUserLocked(user);
      if (!locked.ok()) return locked;
      s.user_failures.erase(FailureKey(user));
      int64_t now = s.NowMono();
      std::erase_if(s.sessions, [&](const auto& e) { return s.SessionExpired(e.second, now); });
      std::string token, full_hash;
      do {
        token = std::string(kSessionPrefix) + NewSecret();
        full_hash = crypto::Digest::Sha256(token);
      } while (s.sessions.contains(full_hash.substr(0, kSessionKeyBytes)));
      SessionRecord rec;
      rec.user = user;
      rec.full_hash = full_hash;
      rec.prefix = token.substr(0, 8);
      rec.created_mono_ns = now;
      rec.last_used_mono_ns = now;
      rec.expires_unix = s.NowUnix() + s.options.session_max.count();
      Session session{token, rec.expires_unix, it->second.info};
      s.sessions.emplace(full_hash.substr(0, kSessionKeyBytes), std::move(rec));
      result = std::move(session);
    } else if (!right) {
      s.RecordLoginFailure(user, peer, events);
    }
  }
  s.FireLockouts(events);
  return result;
}

Result<Principal> Auth::State::AuthenticateSession(const std::string& bearer) {
  if (bearer.size() != kSessionTokenChars ||
      !std::all_of(bearer.begin() + kSessionPrefix.size(), bearer.end(), IsBase64Url)) {
    return UnauthenticatedError("invalid token");
  }
  std::string full_hash = crypto::Digest::Sha256(bearer);
  MutexLock lock(mu);
  auto it = sessions.find(full_hash.substr(0, kSessionKeyBytes));
  if (it == sessions.end() || !ConstantTimeEquals(it->second.full_hash, full_hash)) {
    return UnauthenticatedError("invalid token");
  }
  int64_t now = NowMono();
  if (SessionExpired(it->second, now)) {
    sessions.erase(it);
    return UnauthenticatedError("session expired; sign in again");
  }
  auto user = users.find(it->second.user);
  if (user == users.end()) {
    sessions.erase(it);
    return UnauthenticatedError("invalid token");
  }
  it->second.last_used_mono_ns = now;
  return Principal{user->first, user->second.info.role, false, it->second.prefix};
}

Result<Principal> Auth::State::AuthenticateApiToken(const std::string& bearer) {
  // fst_<16 hex id>_<43 base64url secret>; the secret may contain '_' itself.
  constexpr size_t kIdPos = kApiTokenPrefix.size();
  constexpr size_t kSepPos = kIdPos + kTokenIdChars;
  if (bearer.size() != kApiTokenChars || bearer[kSepPos] != '_' ||
      !std::all_of(bearer.begin() + kIdPos, bearer.begin() + kSepPos, IsLowerHex) ||
      !std::all_of(bearer.begin() + kSepPos + 1, bearer.end(), IsBase64Url)) {
    return UnauthenticatedError("invalid token");
  }
  std::string id = bearer.substr(kIdPos, kTokenIdChars);
  std::string sha = crypto::Digest::Sha256(std::string_view(bearer).substr(kSepPos + 1));
  MutexLock lock(mu);
  auto it = tokens.find(id);
  if (it == tokens.end() || !ConstantTimeEquals(it->second.sha256, sha)) {
    return UnauthenticatedError("invalid token");
  }
  TokenRecord& rec = it->second;
  int64_t now = NowUnix();
  if (rec.info.expires_unix != 0 && now >= rec.info.expires_unix) {
    return UnauthenticatedError("API token " + id + " expired");
  }
  auto user = users.find(rec.info.user);
  if (user == users.end()) return UnauthenticatedError("invalid token");
  rec.info.last_used_unix = now;
  if (now - rec.last_used_saved >= kLastUsedSaveInterval_s) {
    // Bookkeeping only: a failed write does not fail the request.
    if (Status st = SaveLocked(users, tokens); st.ok()) {
      for (auto& [_, t] : tokens) t.last_used_saved = t.info.last_used_unix;
    } else {
      spdlog::warn("auth: could not record token use: {}", st.ToString());
    }
  }
  return Principal{rec.info.user, std::min(rec.info.role, user->second.info.role), true, id};
}

Result<Principal> Auth::Authenticate(const std::string& bearer) {
  if (bearer.starts_with(kSessionPrefix)) return state_->AuthenticateSession(bearer);
  if (bearer.starts_with(kApiTokenPrefix)) return state_->AuthenticateApiToken(bearer);
  return UnauthenticatedError("invalid token");
}

void Auth::Logout(const std::string& token) {
  if (!token.starts_with(kSessionPrefix) || token.size() != kSessionTokenChars) return;
  std::string full_hash = crypto::Digest::Sha256(token);
  MutexLock lock(state_->mu);
  auto it = state_->sessions.find(full_hash.substr(0, kSessionKeyBytes));
  if (it != state_->sessions.end() && ConstantTimeEquals(it->second.full_hash, full_hash)) {
    state_->sessions.erase(it);
  }
}

Result<std::vector<UserInfo>> Auth::ListUsers() const {
  MutexLock lock(state_->mu);
  std::vector<UserInfo> out;
  for (const auto& [_, rec] : state_->users) out.push_back(rec.info);
  return out;
}

Result<UserInfo> Auth::GetUser(const std::string& name) const {
  MutexLock lock(state_->mu);
  auto it = state_->users.find(name);
  if (it == state_->users.end()) return NotFoundError("no user '" + name + "'");
  return it->second.info;
}

Result<UserInfo> Auth::CreateUser(const std::string& name, Role role, const std::string& password) {
  State& s = *state_;
  FS_RETURN_IF_ERROR(CheckUserName(name));
  FS_RETURN_IF_ERROR(CheckPasswordRules(password));
  {
    MutexLock lock(s.mu);
    if (s.users.contains(name)) return AlreadyExistsError("user '" + name + "' exists");
  }
  FS_ASSIGN_OR_RETURN(std::string hash, HashPassword(password, s.options));
  MutexLock lock(s.mu);
  if (s.users.contains(name)) return AlreadyExistsError("user '" + name + "' exists");
  int64_t now = s.NowUnix();
  UserInfo info{name, role, now, now};
  Users users = s.users;
  users[name] = UserRecord{info, std::move(hash)};
  FS_RETURN_IF_ERROR(s.SaveLocked(users, s.tokens));
  s.users = std::move(users);
  if (role == Role::kAdmin) s.setup_code.clear();
  spdlog::info("auth: user '{}' created ({})", name, RoleName(role));
  return info;
}

Status Auth::DeleteUser(const std::string& name) {
  State& s = *state_;
  MutexLock lock(s.mu);
  auto it = s.users.find(name);
  if (it == s.users.end()) return NotFoundError("no user '" + name + "'");
  Users users = s.users;
  users.erase(name);
  if (it->second.info.role == Role::kAdmin &&
      std::none_of(users.begin(), users.end(),
                   [](const auto& u) { return u.second.info.role == Role::kAdmin; })) {
    return FailedPreconditionError("cannot delete '" + name + "': it is the last admin");
  }
  Tokens tokens = s.tokens;
  std::erase_if(tokens, [&](const auto& t) { return t.second.info.user == name; });
  FS_RETURN_IF_ERROR(s.SaveLocked(users, tokens));
  s.users = std::move(users);
  s.tokens = std::move(tokens);
  s.EndSessionsOfLocked(name);
  spdlog::info("auth: user '{}' deleted", name);
  return Status::Ok();
}

Status Auth::SetRole(const std::string& name, Role role) {
  State& s = *state_;
  MutexLock lock(s.mu);
  auto it = s.users.find(name);
  if (it == s.users.end()) return NotFoundError("no user '" + name + "'");
  if (it->second.info.role == role) return Status::Ok();
  Users users = s.users;
  users[name].info.role = role;
  if (std::none_of(users.begin(), users.end(),
                   [](const auto& u) { return u.second.info.role == Role::kAdmin; })) {
    return FailedPreconditionError("cannot change the role of '" + name +
                                   "': it is the last admin");
  }
  // Tokens never carry more than their user's role, also after a later promotion.
  Tokens tokens = s.tokens;
  for (auto& [_, t] : tokens) {
    if (t.info.user == name && t.info.role > role) t.info.role = role;
  }
  FS_RETURN_IF_ERROR(s.SaveLocked(users, tokens));
  s.users = std::move(users);
  s.tokens = std::move(tokens);
  spdlog::info("auth: user '{}' is now {}", name, RoleName(role));
  return Status::Ok();
}

Status Auth::SetPassword(const std::string& name, const std::string& password) {
  State& s = *state_;
  {
    MutexLock lock(s.mu);
    if (!s.users.contains(name)) return NotFoundError("no user '" + name + "'");
  }
  FS_RETURN_IF_ERROR(CheckPasswordRules(password));
  FS_ASSIGN_OR_RETURN(std::string hash, HashPassword(password, s.options));
  MutexLock lock(s.mu);
  if (!s.users.contains(name)) return NotFoundError("no user '" + name + "'");
  Users users = s.users;
  users[name].hash = std::move(hash);
  users[name].info.password_changed_unix = s.NowUnix();
  FS_RETURN_IF_ERROR(s.SaveLocked(users, s.tokens));
  s.users = std::move(users);
  s.EndSessionsOfLocked(name);
  spdlog::info("auth: password of user '{}' changed; its sessions ended", name);
  return Status::Ok();
}

bool Auth::CheckPassword(const std::string& name, const std::string& password) const {
  std::string hash;
  {
    MutexLock lock(state_->mu);
    auto it = state_->users.find(name);
    if (it != state_->users.end()) hash = it->second.hash;
  }
  return !hash.empty() && VerifyPassword(hash, password);
}

Result<Auth::NewToken> Auth::CreateApiToken(const std::string& user, const std::string& name,
                                            Role role, int64_t expires_unix) {
  State& s = *state_;
  FS_RETURN_IF_ERROR(CheckTokenName(name));
  MutexLock lock(s.mu);
  auto it = s.users.find(user);
  if (it == s.users.end()) return NotFoundError("no user '" + user + "'");
  if (role > it->second.info.role) {
    return PermissionDeniedError("a token of '" + user + "' can have at most the role " +
                                 std::string(RoleName(it->second.info.role)));
  }
  int64_t now = s.NowUnix();
  if (expires_unix != 0 && expires_unix <= now) {
    return InvalidArgumentError("the token's expiry is in the past");
  }
  std::string id;
  do {
    unsigned char raw[kTokenIdBytes];
    randombytes_buf(raw, sizeof raw);
    id = Hex(std::string_view(reinterpret_cast<const char*>(raw), sizeof raw));
  } while (s.tokens.contains(id));
  std::string secret = NewSecret();
  TokenRecord rec;
  rec.info = ApiTokenInfo{id, name, user, role, now, expires_unix, 0};
  rec.sha256 = crypto::Digest::Sha256(secret);
  Tokens tokens = s.tokens;
  tokens[id] = rec;
  FS_RETURN_IF_ERROR(s.SaveLocked(s.users, tokens));
  s.tokens = std::move(tokens);
  spdlog::info("auth: API token {} ('{}') created for user '{}' ({})", id, name, user,
               RoleName(role));
  return NewToken{rec.info, std::string(kApiTokenPrefix) + id + "_" + secret};
}

Result<std::vector<ApiTokenInfo>> Auth::ListApiTokens() const {
  MutexLock lock(state_->mu);
  std::vector<ApiTokenInfo> out;
  for (const auto& [_, rec] : state_->tokens) out.push_back(rec.info);
  return out;
}

Status Auth::RevokeApiToken(const std::string& id) {
  State& s = *state_;
  MutexLock lock(s.mu);
  if (!s.tokens.contains(id)) return NotFoundError("no API token '" + id + "'");
  Tokens tokens = s.tokens;
  tokens.erase(id);
  FS_RETURN_IF_ERROR(s.SaveLocked(s.users, tokens));
  s.tokens = std::move(tokens);
  spdlog::info("auth: API token {} revoked", id);
  return Status::Ok();
}

}  // namespace fieldstack::management
