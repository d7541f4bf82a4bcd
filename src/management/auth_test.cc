#include "management/auth.h"

#include <gtest/gtest.h>
#include <sodium.h>
#include <sys/stat.h>

#include <atomic>
#include <fstream>
#include <nlohmann/json.hpp>
#include <regex>
#include <thread>
#include <tuple>

#include "platform/file.h"
#include "test/support/temp_dir.h"

namespace fieldstack::management {
namespace {

using std::chrono::hours;
using std::chrono::minutes;
using std::chrono::seconds;

constexpr char kAdminPassword[] = "correct horse battery";
constexpr char kAlicePassword[] = "alice's long password";
constexpr int64_t kStartUnix = FakeClock::kStartUnixNanos / 1'000'000'000;

struct LockoutCall {
  std::string what;
  std::string who;
  int64_t until_unix;
  bool operator==(const LockoutCall&) const = default;
};

class AuthTest : public ::testing::Test {
 protected:
  AuthOptions Options() {
    AuthOptions o;
    o.ops_limit = crypto_pwhash_OPSLIMIT_MIN;
    o.mem_limit = crypto_pwhash_MEMLIMIT_MIN;
    o.on_lockout = [this](const std::string& what, const std::string& who, int64_t until) {
      lockouts_.push_back({what, who, until});
    };
    return o;
  }

  std::string Dir() const { return dir_.path() + "/state"; }
  std::string FilePath() const { return Dir() + "/auth.json"; }

  std::unique_ptr<Auth> OpenAuth() {
    auto r = Auth::Open(Dir(), clock_, Options());
    EXPECT_TRUE(r.ok()) << r.status().ToString();
    return r.ok() ? std::move(r).value() : nullptr;
  }

  // An Auth with the admin "admin" set up.
  std::unique_ptr<Auth> OpenSetUp() {
    auto auth = OpenAuth();
    Status st = auth->SetupAdmin(auth->setup_code(), "admin", kAdminPassword, "10.0.0.1");
    EXPECT_TRUE(st.ok()) << st.ToString();
    return auth;
  }

  std::string FileText() {
    auto text = platform::ReadFileToString(FilePath());
    EXPECT_TRUE(text.ok()) << text.status().ToString();
    return text.value_or("");
  }

  fieldstack::testing::TempDir dir_;
  FakeClock clock_;
  std::vector<LockoutCall> lockouts_;
};

TEST(AuthRoleTest, NamesAndParsingRoundTrip) {
  for (Role r : {Role::kReader, Role::kOperator, Role::kAdmin}) {
    auto parsed = ParseRole(RoleName(r));
    ASSERT_TRUE(parsed.ok());
    EXPECT_EQ(*parsed, r);
  }
  EXPECT_EQ(RoleName(Role::kOperator), "operator");
  auto bad = ParseRole("root");
  EXPECT_EQ(bad.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(bad.status().message().find("admin"), std::string::npos);
}

TEST_F(AuthTest, SetupNeedsTheCodeAndHappensOnce) {
  auto auth = OpenAuth();
  ASSERT_TRUE(auth);
  EXPECT_TRUE(auth->NeedsSetup());
  std::string code = auth->setup_code();
  EXPECT_TRUE(std::regex_match(code, std::regex("([A-Z2-9]{4}-){7}[A-Z2-9]{4}"))) << code;
  EXPECT_EQ(auth->setup_code(), code);  // stable across calls

  // Nothing but setup works before it.
  EXPECT_EQ(auth->Login("admin", kAdminPassword, "p").status().code(),
            StatusCode::kFailedPrecondition);

  std::string wrong = code;
  wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
  EXPECT_EQ(auth->SetupAdmin(wrong, "admin", kAdminPassword, "p").code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(auth->SetupAdmin("", "admin", kAdminPassword, "p").code(),
            StatusCode::kPermissionDenied);
  EXPECT_TRUE(auth->NeedsSetup());
  EXPECT_EQ(auth->SetupAdmin(code, "Admin!", kAdminPassword, "p").code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(auth->SetupAdmin(code, "admin", "short", "p").code(), StatusCode::kInvalidArgument);
  EXPECT_TRUE(auth->NeedsSetup());
  EXPECT_EQ(auth->setup_code(), code);

  ASSERT_TRUE(auth->SetupAdmin(code, "admin", kAdminPassword, "p").ok());
  EXPECT_FALSE(auth->NeedsSetup());
  EXPECT_EQ(auth->setup_code(), "");
  EXPECT_EQ(auth->SetupAdmin(code, "admin2", kAdminPassword, "p").code(),
            StatusCode::kFailedPrecondition);

  auto user = auth->GetUser("admin");
  ASSERT_TRUE(user.ok());
  EXPECT_EQ(user->role, Role::kAdmin);
  EXPECT_EQ(user->created_unix, kStartUnix);
  EXPECT_EQ(user->password_changed_unix, kStartUnix);
  EXPECT_TRUE(auth->Login("admin", kAdminPassword, "p").ok());
  EXPECT_TRUE(lockouts_.empty());
}

TEST_F(AuthTest, WrongSetupCodesLockThePeerOut) {
  auto auth = OpenAuth();
  ASSERT_TRUE(auth);
  std::string code = auth->setup_code();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ(auth->SetupAdmin("WRONG", "admin", kAdminPassword, "6.6.6.6").code(),
              StatusCode::kPermissionDenied);
  }
  ASSERT_EQ(lockouts_.size(), 1u);
  EXPECT_EQ(lockouts_[0], (LockoutCall{"peer", "6.6.6.6", kStartUnix + 15 * 60}));
  Status st = auth->SetupAdmin(code, "admin", kAdminPassword, "6.6.6.6");
  EXPECT_EQ(st.code(), StatusCode::kResourceExhausted);
  EXPECT_NE(st.message().find("900 s"), std::string::npos) << st.message();
  EXPECT_TRUE(auth->NeedsSetup());
  // Another peer is not affected.
  EXPECT_TRUE(auth->SetupAdmin(code, "admin", kAdminPassword, "10.0.0.2").ok());
}

TEST_F(AuthTest, LoginWithRightPasswordGivesASession) {
  auto auth = OpenSetUp();
  auto s = auth->Login("admin", kAdminPassword, "10.0.0.1");
  ASSERT_TRUE(s.ok()) << s.status().ToString();
  EXPECT_TRUE(std::regex_match(s->token, std::regex("fss_[A-Za-z0-9_-]{43}"))) << s->token;
  EXPECT_EQ(s->expires_unix, kStartUnix + 12 * 3600);
  EXPECT_EQ(s->user.name, "admin");
  EXPECT_EQ(s->user.role, Role::kAdmin);

  auto p = auth->Authenticate(s->token);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->user, "admin");
  EXPECT_EQ(p->role, Role::kAdmin);
  EXPECT_FALSE(p->api_token);
  EXPECT_EQ(p->token_id, s->token.substr(0, 8));

  auto s2 = auth->Login("admin", kAdminPassword, "10.0.0.1");
  ASSERT_TRUE(s2.ok());
  EXPECT_NE(s2->token, s->token);
}

TEST_F(AuthTest, LoginWithWrongPasswordOrUnknownUserIsRefused) {
  auto auth = OpenSetUp();
  auto wrong = auth->Login("admin", "not the password", "p");
  EXPECT_EQ(wrong.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(wrong.status().message(), "wrong user name or password");
  auto unknown = auth->Login("nobody", kAdminPassword, "p");
  EXPECT_EQ(unknown.status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(unknown.status().message(), "wrong user name or password");
  EXPECT_EQ(auth->Login("admin", "", "p").status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth->Login("admin", std::string(100000, 'x'), "p").status().code(),
            StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, SessionExpiresAfterIdleTime) {
  auto auth = OpenSetUp();
  auto s = auth->Login("admin", kAdminPassword, "p");
  ASSERT_TRUE(s.ok());
  clock_.Advance(minutes(59));
  EXPECT_TRUE(auth->Authenticate(s->token).ok());
  clock_.Advance(minutes(59));  // the idle timer restarted
  EXPECT_TRUE(auth->Authenticate(s->token).ok());
  clock_.Advance(minutes(60));
  EXPECT_EQ(auth->Authenticate(s->token).status().code(), StatusCode::kUnauthenticated);
  clock_.Advance(minutes(-30));  // gone for good, not just "too late"
  EXPECT_EQ(auth->Authenticate(s->token).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, SessionExpiresAfterMaximumLifetimeEvenWhenUsed) {
  auto auth = OpenSetUp();
  auto s = auth->Login("admin", kAdminPassword, "p");
  ASSERT_TRUE(s.ok());
  for (int i = 0; i < 23; ++i) {  // used every 30 min up to 11.5 h
    clock_.Advance(minutes(30));
    ASSERT_TRUE(auth->Authenticate(s->token).ok()) << i;
  }
  clock_.Advance(minutes(30));  // 12 h
  EXPECT_EQ(auth->Authenticate(s->token).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, LogoutEndsOnlyThatSession) {
  auto auth = OpenSetUp();
  auto a = auth->Login("admin", kAdminPassword, "p");
  auto b = auth->Login("admin", kAdminPassword, "p");
  ASSERT_TRUE(a.ok() && b.ok());
  auth->Logout(a->token);
  EXPECT_EQ(auth->Authenticate(a->token).status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(auth->Authenticate(b->token).ok());
  auth->Logout(a->token);  // unknown now: no error
  auth->Logout("");
  auth->Logout("garbage");
  auth->Logout(std::string(1 << 20, 'f'));
  EXPECT_TRUE(auth->Authenticate(b->token).ok());
}

TEST_F(AuthTest, PasswordChangeEndsTheUsersSessionsOnly) {
  auto auth = OpenSetUp();
  ASSERT_TRUE(auth->CreateUser("alice", Role::kOperator, kAlicePassword).ok());
  auto a1 = auth->Login("alice", kAlicePassword, "p");
  auto a2 = auth->Login("alice", kAlicePassword, "p");
  auto adm = auth->Login("admin", kAdminPassword, "p");
  auto tok = auth->CreateApiToken("alice", "script", Role::kOperator, 0);
  ASSERT_TRUE(a1.ok() && a2.ok() && adm.ok() && tok.ok());

  clock_.Advance(seconds(100));
  ASSERT_TRUE(auth->SetPassword("alice", "a brand new password").ok());
  EXPECT_EQ(auth->Authenticate(a1->token).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth->Authenticate(a2->token).status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(auth->Authenticate(adm->token).ok());
  EXPECT_TRUE(auth->Authenticate(tok->token).ok());  // API tokens stay

  EXPECT_EQ(auth->Login("alice", kAlicePassword, "p").status().code(),
            StatusCode::kUnauthenticated);
  EXPECT_TRUE(auth->Login("alice", "a brand new password", "p").ok());
  EXPECT_TRUE(auth->CheckPassword("alice", "a brand new password"));
  EXPECT_FALSE(auth->CheckPassword("alice", kAlicePassword));
  EXPECT_FALSE(auth->CheckPassword("nobody", kAlicePassword));
  EXPECT_EQ(auth->GetUser("alice")->password_changed_unix, kStartUnix + 100);
  EXPECT_EQ(auth->GetUser("alice")->created_unix, kStartUnix);

  EXPECT_EQ(auth->SetPassword("alice", "too short").code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(auth->SetPassword("nobody", "long enough password").code(), StatusCode::kNotFound);
}

TEST_F(AuthTest, CheckPasswordDoesNotCountFailures) {
  auto auth = OpenSetUp();
  for (int i = 0; i < 10; ++i) EXPECT_FALSE(auth->CheckPassword("admin", "wrong password!"));
  EXPECT_TRUE(lockouts_.empty());
  EXPECT_TRUE(auth->Login("admin", kAdminPassword, "p").ok());
}

TEST_F(AuthTest, DeletingAUserEndsItsSessionsAndTokens) {
  auto auth = OpenSetUp();
  ASSERT_TRUE(auth->CreateUser("alice", Role::kOperator, kAlicePassword).ok());
  auto s = auth->Login("alice", kAlicePassword, "p");
  auto tok = auth->CreateApiToken("alice", "script", Role::kReader, 0);
  ASSERT_TRUE(s.ok() && tok.ok());
  ASSERT_TRUE(auth->DeleteUser("alice").ok());
  EXPECT_EQ(auth->Authenticate(s->token).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth->Authenticate(tok->token).status().code(), StatusCode::kUnauthenticated);
  EXPECT_TRUE(auth->ListApiTokens()->empty());
  EXPECT_EQ(auth->GetUser("alice").status().code(), StatusCode::kNotFound);
  EXPECT_EQ(auth->DeleteUser("alice").code(), StatusCode::kNotFound);

  // A new user with the same name inherits nothing.
  ASSERT_TRUE(auth->CreateUser("alice", Role::kAdmin, kAlicePassword).ok());
  EXPECT_EQ(auth->Authenticate(tok->token).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, UsersAreListedAndCreatedOnce) {
  auto auth = OpenSetUp();
  clock_.Advance(seconds(5));
  auto bob = auth->CreateUser("bob", Role::kReader, "bob's password 1");
  ASSERT_TRUE(bob.ok());
  EXPECT_EQ(bob->created_unix, kStartUnix + 5);
  EXPECT_EQ(auth->CreateUser("bob", Role::kAdmin, "another password").status().code(),
            StatusCode::kAlreadyExists);
  auto users = auth->ListUsers();
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[0].name, "admin");
  EXPECT_EQ((*users)[1].name, "bob");
  EXPECT_EQ((*users)[1].role, Role::kReader);
  ASSERT_TRUE(auth->SetRole("bob", Role::kOperator).ok());
  EXPECT_EQ(auth->GetUser("bob")->role, Role::kOperator);
  EXPECT_EQ(auth->SetRole("nobody", Role::kReader).code(), StatusCode::kNotFound);

  auto s = auth->Login("bob", "bob's password 1", "p");
  ASSERT_TRUE(s.ok());
  ASSERT_TRUE(auth->SetRole("bob", Role::kReader).ok());
  EXPECT_EQ(auth->Authenticate(s->token)->role, Role::kReader);  // takes effect at once
}

TEST_F(AuthTest, BadUserNamesAndPasswordsAreRefused) {
  auto auth = OpenSetUp();
  for (const std::string& name :
       {std::string(), std::string(33, 'a'), std::string("Alice"), std::string("-bob"),
        std::string(".x"), std::string("_x"), std::string("a b"), std::string("a/b"),
        std::string("caf\xc3\xa9"), std::string("a\0b", 3)}) {
    auto r = auth->CreateUser(name, Role::kReader, "a good password");
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << name;
    EXPECT_NE(r.status().message().find("1 to 32"), std::string::npos);
  }
  for (const std::string& name :
       {std::string("a"), std::string("0x"), std::string("a.b_c-d"), std::string(32, 'z')}) {
    EXPECT_TRUE(auth->CreateUser(name, Role::kReader, "a good password").ok()) << name;
  }
  auto short_pw = auth->CreateUser("p1", Role::kReader, std::string(11, 'x'));
  EXPECT_EQ(short_pw.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(short_pw.status().message().find("12 to 256"), std::string::npos);
  EXPECT_EQ(auth->CreateUser("p2", Role::kReader, std::string(257, 'x')).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_TRUE(auth->CreateUser("p3", Role::kReader, std::string(12, 'x')).ok());
  EXPECT_TRUE(auth->CreateUser("p4", Role::kReader, std::string(256, 'x')).ok());
  EXPECT_TRUE(auth->Login("p4", std::string(256, 'x'), "p").ok());
  EXPECT_EQ(auth->GetUser("p1").status().code(), StatusCode::kNotFound);
}

TEST_F(AuthTest, ApiTokenAuthenticatesUntilRevoked) {
  auto auth = OpenSetUp();
  ASSERT_TRUE(auth->CreateUser("ops", Role::kOperator, "operator password").ok());
  clock_.Advance(seconds(10));
  auto tok = auth->CreateApiToken("ops", "backup script", Role::kOperator, 0);
  ASSERT_TRUE(tok.ok()) << tok.status().ToString();
  EXPECT_TRUE(std::regex_match(tok->token, std::regex("fst_[0-9a-f]{16}_[A-Za-z0-9_-]{43}")))
      << tok->token;
  EXPECT_EQ(tok->token.substr(4, 16), tok->info.id);
  EXPECT_EQ(tok->info.name, "backup script");
  EXPECT_EQ(tok->info.user, "ops");
  EXPECT_EQ(tok->info.role, Role::kOperator);
  EXPECT_EQ(tok->info.created_unix, kStartUnix + 10);
  EXPECT_EQ(tok->info.expires_unix, 0);
  EXPECT_EQ(tok->info.last_used_unix, 0);

  clock_.Advance(seconds(20));
  auto p = auth->Authenticate(tok->token);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->user, "ops");
  EXPECT_EQ(p->role, Role::kOperator);
  EXPECT_TRUE(p->api_token);
  EXPECT_EQ(p->token_id, tok->info.id);
  auto list = auth->ListApiTokens();
  ASSERT_TRUE(list.ok());
  ASSERT_EQ(list->size(), 1u);
  EXPECT_EQ((*list)[0].id, tok->info.id);
  EXPECT_EQ((*list)[0].last_used_unix, kStartUnix + 30);

  // The right id with another secret is refused.
  std::string forged = tok->token;
  forged.back() = forged.back() == 'A' ? 'B' : 'A';
  EXPECT_EQ(auth->Authenticate(forged).status().code(), StatusCode::kUnauthenticated);

  ASSERT_TRUE(auth->RevokeApiToken(tok->info.id).ok());
  EXPECT_EQ(auth->Authenticate(tok->token).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth->RevokeApiToken(tok->info.id).code(), StatusCode::kNotFound);
  EXPECT_TRUE(auth->ListApiTokens()->empty());
}

TEST_F(AuthTest, ApiTokenExpires) {
  auto auth = OpenSetUp();
  auto tok = auth->CreateApiToken("admin", "ci", Role::kReader, kStartUnix + 3600);
  ASSERT_TRUE(tok.ok());
  EXPECT_EQ(tok->info.expires_unix, kStartUnix + 3600);
  clock_.Advance(seconds(3599));
  EXPECT_TRUE(auth->Authenticate(tok->token).ok());
  clock_.Advance(seconds(1));
  EXPECT_EQ(auth->Authenticate(tok->token).status().code(), StatusCode::kUnauthenticated);
  EXPECT_EQ(auth->CreateApiToken("admin", "old", Role::kReader, kStartUnix).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(auth->CreateApiToken("admin", "", Role::kReader, 0).status().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(auth->CreateApiToken("admin", "a\nb", Role::kReader, 0).status().code(),
            StatusCode::kInvalidArgument);
}

TEST_F(AuthTest, ApiTokenCannotExceedItsUsersRole) {
  auto auth = OpenSetUp();
  ASSERT_TRUE(auth->CreateUser("reader", Role::kReader, "reader password").ok());
  ASSERT_TRUE(auth->CreateUser("ops", Role::kOperator, "operator password").ok());
  EXPECT_EQ(auth->CreateApiToken("reader", "x", Role::kOperator, 0).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(auth->CreateApiToken("ops", "x", Role::kAdmin, 0).status().code(),
            StatusCode::kPermissionDenied);
  EXPECT_EQ(auth->CreateApiToken("nobody", "x", Role::kReader, 0).status().code(),
            StatusCode::kNotFound);

  auto low = auth->CreateApiToken("ops", "read only", Role::kReader, 0);
  auto full = auth->CreateApiToken("ops", "full", Role::kOperator, 0);
  ASSERT_TRUE(low.ok() && full.ok());
  EXPECT_EQ(auth->Authenticate(low->token)->role, Role::kReader);
  EXPECT_EQ(auth->Authenticate(full->token)->role, Role::kOperator);

  // Demoting the user lowers its tokens, and promoting it again does not raise them.
  ASSERT_TRUE(auth->SetRole("ops", Role::kReader).ok());
  EXPECT_EQ(auth->Authenticate(full->token)->role, Role::kReader);
  ASSERT_TRUE(auth->SetRole("ops", Role::kAdmin).ok());
  EXPECT_EQ(auth->Authenticate(full->token)->role, Role::kReader);
  auto tokens = auth->ListApiTokens();
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 2u);
  for (const ApiTokenInfo& t : *tokens) EXPECT_EQ(t.role, Role::kReader);
}

TEST_F(AuthTest, TheLastAdminCannotBeDeletedOrDemoted) {
  auto auth = OpenSetUp();
  EXPECT_EQ(auth->DeleteUser("admin").code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(auth->SetRole("admin", Role::kOperator).code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(auth->GetUser("admin")->role, Role::kAdmin);
  EXPECT_FALSE(auth->NeedsSetup());

  ASSERT_TRUE(auth->CreateUser("second", Role::kAdmin, "second admin pw").ok());
  ASSERT_TRUE(auth->SetRole("admin", Role::kOperator).ok());
  EXPECT_EQ(auth->DeleteUser("second").code(), StatusCode::kFailedPrecondition);
  ASSERT_TRUE(auth->SetRole("admin", Role::kAdmin).ok());
  ASSERT_TRUE(auth->DeleteUser("second").ok());
  EXPECT_FALSE(auth->NeedsSetup());
}

TEST_F(AuthTest, UserIsLockedOutAfterFailuresAndRecovers) {
  auto auth = OpenSetUp();
  ASSERT_TRUE(auth->CreateUser("alice", Role::kReader, kAlicePassword).ok());
  // Different peers, so only the user name's count reaches the limit.
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(auth->Login("alice", "bad password", "10.1.0." + std::to_string(i)).status().code(),
              StatusCode::kUnauthenticated);
  }
  EXPECT_TRUE(lockouts_.empty());
  clock_.Advance(seconds(7));
  EXPECT_EQ(auth->Login("alice", "bad password", "10.1.0.9").status().code(),
            StatusCode::kUnauthenticated);
  ASSERT_EQ(lockouts_.size(), 1u);
  EXPECT_EQ(lockouts_[0], (LockoutCall{"user", "alice", kStartUnix + 7 + 900}));

  // Even the right password, from a fresh peer, is refused while locked.
  auto locked = auth->Login("alice", kAlicePassword, "10.2.0.1");
  EXPECT_EQ(locked.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(locked.status().message().find("900 s"), std::string::npos)
      << locked.status().message();
  clock_.Advance(seconds(300));
  locked = auth->Login("alice", kAlicePassword, "10.2.0.1");
  EXPECT_NE(locked.status().message().find("600 s"), std::string::npos)
      << locked.status().message();
  EXPECT_EQ(lockouts_.size(), 1u);  // called once per lockout
  // Other users are not affected.
  EXPECT_TRUE(auth->Login("admin", kAdminPassword, "10.2.0.1").ok());

  clock_.Advance(seconds(600));
  EXPECT_TRUE(auth->Login("alice", kAlicePassword, "10.2.0.1").ok());
}

TEST_F(AuthTest, PeerIsLockedOutAcrossUserNames) {
  auto auth = OpenSetUp();
  const std::string peer = "203.0.113.5";
  for (const char* name : {"admin", "root", "guest", "test"}) {
    EXPECT_EQ(auth->Login(name, "bad password", peer).status().code(),
              StatusCode::kUnauthenticated);
  }
  EXPECT_TRUE(lockouts_.empty());
  EXPECT_EQ(auth->Login("oracle", "bad password", peer).status().code(),
            StatusCode::kUnauthenticated);
  ASSERT_EQ(lockouts_.size(), 1u);
  EXPECT_EQ(lockouts_[0], (LockoutCall{"peer", peer, kStartUnix + 900}));

  auto locked = auth->Login("admin", kAdminPassword, peer);
  EXPECT_EQ(locked.status().code(), StatusCode::kResourceExhausted);
  EXPECT_NE(locked.status().message().find(peer), std::string::npos);
  EXPECT_TRUE(auth->Login("admin", kAdminPassword, "198.51.100.1").ok());

  clock_.Advance(minutes(15));
  EXPECT_TRUE(auth->Login("admin", kAdminPassword, peer).ok());
}

TEST_F(AuthTest, SameUserAndPeerLockBothAndUnknownNamesCount) {
  auto auth = OpenSetUp();
  for (int i = 0; i < 5; ++i) auth->Login("ghost", "bad password", "1.2.3.4").status();
  ASSERT_EQ(lockouts_.size(), 2u);
  EXPECT_EQ(lockouts_[0], (LockoutCall{"user", "ghost", kStartUnix + 900}));
  EXPECT_EQ(lockouts_[1], (LockoutCall{"peer", "1.2.3.4", kStartUnix + 900}));
  EXPECT_EQ(auth->Login("ghost", "bad password", "9.9.9.9").status().code(),
            StatusCode::kResourceExhausted);
}

TEST_F(AuthTest, SuccessfulLoginResetsTheUsersCount) {
  auto auth = OpenSetUp();
  for (int round = 0; round < 3; ++round) {
    for (int i = 0; i < 4; ++i) {
      auth->Login("admin", "bad password",
                  "10.3." + std::to_string(round) + "." + std::to_string(i))
          .status();
    }
    ASSERT_TRUE(auth->Login("admin", kAdminPassword, "10.4.0." + std::to_string(round)).ok());
  }
  EXPECT_TRUE(lockouts_.empty());
}

TEST_F(AuthTest, FailuresOutsideTheWindowDoNotAccumulate) {
  auto auth = OpenSetUp();
  for (int i = 0; i < 4; ++i) auth->Login("admin", "bad password", "p").status();
  clock_.Advance(minutes(5));
  for (int i = 0; i < 4; ++i) auth->Login("admin", "bad password", "p").status();
  EXPECT_TRUE(lockouts_.empty());
  EXPECT_TRUE(auth->Login("admin", kAdminPassword, "p").ok());
  auth->Login("admin", "bad password", "p").status();  // the peer's 5th within the window
  ASSERT_EQ(lockouts_.size(), 1u);
  EXPECT_EQ(lockouts_[0].what, "peer");
}

TEST_F(AuthTest, UsersAndTokensSurviveReopenSessionsDoNot) {
  std::string token, session, id;
  {
    auto auth = OpenSetUp();
    ASSERT_TRUE(auth->CreateUser("alice", Role::kOperator, kAlicePassword).ok());
    auto tok = auth->CreateApiToken("alice", "nightly", Role::kReader, kStartUnix + 86400);
    auto s = auth->Login("alice", kAlicePassword, "p");
    ASSERT_TRUE(tok.ok() && s.ok());
    token = tok->token;
    id = tok->info.id;
    session = s->token;
  }
  auto auth = OpenAuth();
  ASSERT_TRUE(auth);
  EXPECT_FALSE(auth->NeedsSetup());
  EXPECT_EQ(auth->setup_code(), "");
  auto users = auth->ListUsers();
  ASSERT_TRUE(users.ok());
  ASSERT_EQ(users->size(), 2u);
  EXPECT_EQ((*users)[1].name, "alice");
  EXPECT_EQ((*users)[1].role, Role::kOperator);
  EXPECT_EQ((*users)[1].created_unix, kStartUnix);
  EXPECT_TRUE(auth->Login("alice", kAlicePassword, "p").ok());
  EXPECT_FALSE(auth->CheckPassword("alice", kAdminPassword));

  auto tokens = auth->ListApiTokens();
  ASSERT_TRUE(tokens.ok());
  ASSERT_EQ(tokens->size(), 1u);
  EXPECT_EQ((*tokens)[0].id, id);
  EXPECT_EQ((*tokens)[0].name, "nightly");
  EXPECT_EQ((*tokens)[0].expires_unix, kStartUnix + 86400);
  auto p = auth->Authenticate(token);
  ASSERT_TRUE(p.ok()) << p.status().ToString();
  EXPECT_EQ(p->user, "alice");
  EXPECT_EQ(p->role, Role::kReader);
  EXPECT_EQ(auth->Authenticate(session).status().code(), StatusCode::kUnauthenticated);
}

TEST_F(AuthTest, LastUsedIsWrittenAtMostOnceAMinute) {
  std::string token;
  auto saved_last_used = [&] {
    auto doc = nlohmann::json::parse(FileText());
    return doc.at("tokens").at(0).at("last_used").get<int64_t>();
  };
  auto auth = OpenSetUp();
  auto tok = auth->CreateApiToken("admin", "t", Role::kAdmin, 0);
  ASSERT_TRUE(tok.ok());
  clock_.Advance(seconds(100));
  ASSERT_TRUE(auth->Authenticate(tok->token).ok());
  EXPECT_EQ(saved_last_used(), kStartUnix + 100);
  clock_.Advance(seconds(30));
  ASSERT_TRUE(auth->Authenticate(tok->token).ok());
  EXPECT_EQ(saved_last_used(), kStartUnix + 100);
  EXPECT_EQ(auth->ListApiTokens()->at(0).last_used_unix, kStartUnix + 130);
  clock_.Advance(seconds(30));
  ASSERT_TRUE(auth->Authenticate(tok->token).ok());
  EXPECT_EQ(saved_last_used(), kStartUnix + 160);
}

TEST_F(AuthTest, CorruptFileIsAnErrorAtOpen) {
  ASSERT_TRUE(OpenSetUp());
  for (const std::string& bad :
       {std::string("{not json"), std::string("[]"), std::string(""),
        std::string(R"({"version": 1, "users": "x", "tokens": []})"),
        std::string(R"({"version": 2, "users": [], "tokens": []})"),
        std::string(R"({"version": 1, "users": [{"name": "a"}], "tokens": []})"),
        std::string(R"({"version": 1, "users": [{"name": "a", "role": "god", "hash": "$argon2id$",
                        "created": 0, "password_changed": 0}], "tokens": []})")}) {
    ASSERT_TRUE(platform::WriteFileAtomic(FilePath(), bad).ok());
    auto r = Auth::Open(Dir(), clock_, Options());
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kCorruption) << bad;
    EXPECT_NE(r.status().message().find(FilePath()), std::string::npos) << r.status().message();
    EXPECT_EQ(FileText(), bad);  // never reset
  }
}

TEST_F(AuthTest, StateFileIsPrivateAndHoldsNoSecrets) {
  auto auth = OpenSetUp();
  ASSERT_TRUE(auth->CreateUser("alice", Role::kOperator, kAlicePassword).ok());
  auto tok = auth->CreateApiToken("alice", "t", Role::kReader, 0);
  auto s = auth->Login("alice", kAlicePassword, "p");
  ASSERT_TRUE(tok.ok() && s.ok());
  ASSERT_TRUE(auth->Authenticate(tok->token).ok());  // writes last_used

  struct stat st;
  ASSERT_EQ(::stat(FilePath().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  ASSERT_EQ(::stat(Dir().c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);

  std::string text = FileText();
  EXPECT_NE(text.find("$argon2id$"), std::string::npos);
  EXPECT_NE(text.find(tok->info.id), std::string::npos);
  for (const std::string& secret :
       {std::string(kAdminPassword), std::string(kAlicePassword), tok->token, tok->token.substr(21),
        s->token, s->token.substr(4)}) {
    EXPECT_EQ(text.find(secret), std::string::npos) << "secret in auth.json";
  }
}

TEST_F(AuthTest, GarbageBearerTokensAreUnauthenticated) {
  auto auth = OpenSetUp();
  auto tok = auth->CreateApiToken("admin", "t", Role::kAdmin, 0);
  auto s = auth->Login("admin", kAdminPassword, "p");
  ASSERT_TRUE(tok.ok() && s.ok());
  const std::string secret43(43, 'A');
  std::vector<std::string> garbage = {
      "",
      "fss_",
      "fst_",
      "Bearer " + s->token,
      "fss_" + secret43,
      "fss_" + secret43.substr(1),
      "fss_" + secret43 + "A",
      "fss_" + secret43.substr(1) + "!",
      s->token + "x",
      s->token.substr(0, s->token.size() - 1),
      "FSS_" + s->token.substr(4),
      std::string(1 << 20, 'x'),
      "fss_" + std::string(1 << 20, 'A'),
      "fst_" + std::string(1 << 20, 'a'),
      std::string("fss_\0", 5) + secret43.substr(1),
      "fst_0123456789abcdef_" + secret43,
      "fst_0123456789ABCDEF_" + secret43,
      "fst_" + tok->info.id + secret43 + "A",
      "fst_" + tok->info.id + "-" + secret43,
      "fst_" + tok->info.id + "_" + secret43,
      "fst_" + tok->info.id + "_",
      "fst_" + tok->info.id,
      tok->token + "A",
      tok->token.substr(0, tok->token.size() - 1) + "\xff",
      "fst_g123456789abcdef_" + secret43,
      "\xff\xfe\x00\x01",
  };
  for (const std::string& g : garbage) {
    auto p = auth->Authenticate(g);
    EXPECT_EQ(p.status().code(), StatusCode::kUnauthenticated) << g.substr(0, 80);
    auth->Logout(g);
  }
  EXPECT_TRUE(auth->Authenticate(tok->token).ok());
  EXPECT_TRUE(auth->Authenticate(s->token).ok());
}

TEST_F(AuthTest, ConcurrentLoginsAndAuthentications) {
  auto auth = OpenSetUp();
  ASSERT_TRUE(auth->CreateUser("alice", Role::kOperator, kAlicePassword).ok());
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 20; ++i) {
        auto s = auth->Login(t % 2 ? "alice" : "admin", t % 2 ? kAlicePassword : kAdminPassword,
                             "peer" + std::to_string(t));
        if (!s.ok() || !auth->Authenticate(s->token).ok()) ++failures;
        if (s.ok()) auth->Logout(s->token);
        if (!auth->ListUsers().ok()) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

}  // namespace
}  // namespace fieldstack::management
