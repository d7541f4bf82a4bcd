// ManagementApi: routing, the role check before every handler, body checks, error mapping,
// the API audit log, file downloads and certificate reload, over real HTTP(S) with libcurl.

#include "management/api.h"

#include <curl/curl.h>
#include <gtest/gtest.h>
#include <sodium.h>

#include "common/clock.h"
#include "crypto/certificate.h"
#include "platform/file.h"
#include "test/support/temp_dir.h"

namespace fieldstack::management {
namespace {

struct Reply {
  long status = 0;
  std::string body;
  std::string headers;
  CURLcode code = CURLE_OK;
  double wire_bytes = 0;  // body bytes as sent (compressed)
  nlohmann::json Json() const { return nlohmann::json::parse(body, nullptr, false); }
};

size_t Collect(char* p, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(p, size * n);
  return size * n;
}

Reply Call(const std::string& method, const std::string& url, const std::string& token = "",
           const std::string& body = "", const std::string& ca = "",
           const std::string& content_type = "application/json", bool gzip = false) {
  Reply r;
  CURL* c = curl_easy_init();
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method.c_str());
  curl_slist* h = nullptr;
  if (!token.empty()) h = curl_slist_append(h, ("Authorization: Bearer " + token).c_str());
  if (!body.empty()) {
    h = curl_slist_append(h, ("Content-Type: " + content_type).c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, Collect);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, Collect);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
  curl_easy_setopt(c, CURLOPT_TIMEOUT, 10L);
  if (!ca.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, ca.c_str());
  if (gzip) curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "gzip");
  r.code = curl_easy_perform(c);
  curl_off_t wire = 0;
  curl_easy_getinfo(c, CURLINFO_SIZE_DOWNLOAD_T, &wire);
  r.wire_bytes = static_cast<double>(wire);
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
  curl_slist_free_all(h);
  curl_easy_cleanup(c);
  return r;
}

class ApiTest : public ::testing::Test {
 protected:
  void SetUp() override {
    AuthOptions o;
    o.ops_limit = crypto_pwhash_OPSLIMIT_MIN;
    o.mem_limit = crypto_pwhash_MEMLIMIT_MIN;
    auto a = Auth::Open(dir_ / "auth", RealClock::Get(), o);
    ASSERT_TRUE(a.ok()) << a.status().ToString();
    auth_ = std::move(*a);
    ASSERT_TRUE(auth_->SetupAdmin(auth_->setup_code(), "root", "correct horse battery", "t").ok());
    ASSERT_TRUE(auth_->CreateUser("ops", Role::kOperator, "operator password!").ok());
    ASSERT_TRUE(auth_->CreateUser("viewer", Role::kReader, "reader password!!").ok());
    admin_ = auth_->Login("root", "correct horse battery", "t")->token;
    operator_ = auth_->Login("ops", "operator password!", "t")->token;
    reader_ = auth_->Login("viewer", "reader password!!", "t")->token;
  }

  void Start(ApiOptions o = {}) {
    o.log_dir = dir_.path();
    api_ = std::make_unique<ManagementApi>(o, *auth_);
    api_->Add(Verb::get, "/api/v1/things/{name}", Access::kReader, [](ApiRequest& req) {
      return Result<ApiResponse>(ApiResponse::Json(
          {{"name", req.params["name"]}, {"who", req.principal->user}, {"q", req.Query("q")}}));
    });
    api_->Add(Verb::post, "/api/v1/things", Access::kOperator,
              [this](ApiRequest& req) -> Result<ApiResponse> {
                FS_RETURN_IF_ERROR(CheckBody(req.body, {{"name", FieldType::kString, true, 16},
                                                        {"size", FieldType::kInt, false, 0, 1, 10},
                                                        {"tags", FieldType::kStringArray}}));
                created_.push_back(req.body["name"].get<std::string>());
                return ApiResponse::Json({{"name", req.body["name"]}}, 201);
              });
    api_->Add(Verb::delete_, "/api/v1/things/{name}", Access::kAdmin,
              [](ApiRequest& req) -> Result<ApiResponse> {
                if (req.params["name"] == "busy") return FailedPreconditionError("it is busy");
                return NotFoundError("no thing '" + req.params["name"] + "'");
              });
    api_->Add(Verb::get, "/api/v1/public", Access::kPublic, [](ApiRequest&) {
      return Result<ApiResponse>(ApiResponse::Json({{"ok", true}}));
    });
    api_->Add(Verb::get, "/metrics", Access::kReader, [](ApiRequest&) {
      ApiResponse r;
      r.content_type = "text/plain";
      r.text = "m 1\n";
      return Result<ApiResponse>(r);
    });
    api_->Add(Verb::get, "/api/v1/file", Access::kReader, [this](ApiRequest&) {
      ApiResponse r;
      r.file_path = dir_ / "download.bin";
      r.download_name = "download.bin";
      return Result<ApiResponse>(r);
    });
    api_->Add(Verb::get, "/api/v1/throws", Access::kReader,
              [](ApiRequest&) -> Result<ApiResponse> { throw std::runtime_error("boom"); });
    ASSERT_TRUE(api_->Start().ok());
    base_ = std::string(api_->secure() ? "https" : "http") +
            "://127.0.0.1:" + std::to_string(api_->port());
  }

  testing::TempDir dir_;
  std::unique_ptr<Auth> auth_;
  std::unique_ptr<ManagementApi> api_;
  std::string base_, admin_, operator_, reader_;
  std::vector<std::string> created_;
};

TEST_F(ApiTest, RoutesByPatternAndDecodesParametersAndQuery) {
  Start();
  auto r = Call("GET", base_ + "/api/v1/things/a%20b?q=x%2By+z", reader_);
  ASSERT_EQ(r.status, 200) << r.body;
  EXPECT_EQ(r.Json()["name"], "a b");
  EXPECT_EQ(r.Json()["q"], "x+y z");
  EXPECT_EQ(r.Json()["who"], "viewer");
  EXPECT_EQ(Call("GET", base_ + "/api/v1/nothing", reader_).status, 404);
  EXPECT_EQ(Call("GET", base_ + "/api/v1/things/a/b", reader_).status, 404);
  EXPECT_EQ(Call("GET", base_ + "/api/v1/things/%zz", reader_).status, 400);
  auto wrong = Call("PUT", base_ + "/api/v1/things/x", admin_, "{}");
  EXPECT_EQ(wrong.status, 400);
  EXPECT_NE(wrong.headers.find("Allow: GET, DELETE"), std::string::npos) << wrong.headers;
}

TEST_F(ApiTest, EveryRouteChecksTheTokenAndTheRoleBeforeItsHandler) {
  Start();
  auto none = Call("GET", base_ + "/api/v1/things/x");
  EXPECT_EQ(none.status, 401);
  EXPECT_NE(none.headers.find("WWW-Authenticate: Bearer"), std::string::npos);
  EXPECT_EQ(none.Json()["error"]["code"], "unauthenticated");
  EXPECT_EQ(Call("GET", base_ + "/api/v1/things/x", "fss_garbage").status, 401);
  EXPECT_EQ(Call("GET", base_ + "/api/v1/things/x", std::string(10000, 'a')).status, 401);
  // The operator route: a reader is refused before the body is looked at.
  auto denied = Call("POST", base_ + "/api/v1/things", reader_, R"({"name":"a"})");
  EXPECT_EQ(denied.status, 403);
  EXPECT_NE(denied.Json()["error"]["message"].get<std::string>().find("operator"),
            std::string::npos);
  EXPECT_EQ(Call("POST", base_ + "/api/v1/things", operator_, R"({"name":"a"})").status, 201);
  EXPECT_EQ(Call("POST", base_ + "/api/v1/things", admin_, R"({"name":"b"})").status, 201);
  EXPECT_EQ(created_, (std::vector<std::string>{"a", "b"}));
  // The admin route.
  EXPECT_EQ(Call("DELETE", base_ + "/api/v1/things/x", operator_).status, 403);
  EXPECT_EQ(Call("DELETE", base_ + "/api/v1/things/x", admin_).status, 404);
  EXPECT_EQ(Call("DELETE", base_ + "/api/v1/things/busy", admin_).status, 409);
  // Public routes need nothing; /metrics needs a reader unless made public.
  EXPECT_EQ(Call("GET", base_ + "/api/v1/public").status, 200);
  EXPECT_EQ(Call("GET", base_ + "/metrics").status, 401);
  EXPECT_EQ(Call("GET", base_ + "/metrics", reader_).body, "m 1\n");
  // A revoked session is refused at once.
  auth_->Logout(reader_);
  EXPECT_EQ(Call("GET", base_ + "/api/v1/things/x", reader_).status, 401);
}

TEST_F(ApiTest, PublicPathsSettingOpensMetricsOnly) {
  ApiOptions o;
  o.public_paths = {"/metrics"};
  Start(o);
  EXPECT_EQ(Call("GET", base_ + "/metrics").status, 200);
  EXPECT_EQ(Call("GET", base_ + "/api/v1/things/x").status, 401);
}

TEST_F(ApiTest, BadBodiesGet400NamingTheFieldAndChangeNothing) {
  Start();
  struct Case {
    std::string body;
    std::string says;
  } cases[] = {
      {R"({"size":3})", "'name' is required"},
      {R"({"name":7})", "'name' must be a string"},
      {R"({"name":"a","size":"3"})", "'size' must be an integer"},
      {R"({"name":"a","size":11})", "'size' must be from 1 to 10"},
      {R"({"name":"a","size":1.5})", "'size' must be an integer"},
      {R"({"name":"a","tags":["x",3]})", "'tags' must be an array of strings"},
      {R"({"name":"a","extra":1})", "unknown field 'extra'"},
      {R"({"name":"aaaaaaaaaaaaaaaaaaaaaaaa"})", "longer than 16 bytes"},
      {"{\"name\":\"a\\u0000b\"}", "control characters"},
      {"{\"name\":\"a\\nb\"}", "control characters"},
      {R"([1,2])", "must be a JSON object"},
      {R"({"name": )", "not valid JSON"},
      {R"({"name":"a","size":99999999999999999999})", "'size'"},
  };
  for (const auto& c : cases) {
    auto r = Call("POST", base_ + "/api/v1/things", admin_, c.body);
    EXPECT_EQ(r.status, 400) << c.body << " -> " << r.body;
    auto j = r.Json();
    ASSERT_TRUE(j.is_object()) << r.body;
    EXPECT_EQ(j["error"]["code"], "invalid_argument") << r.body;
    EXPECT_NE(j["error"]["message"].get<std::string>().find(c.says), std::string::npos)
        << c.body << " -> " << r.body;
  }
  auto xml = Call("POST", base_ + "/api/v1/things", admin_, "<a/>", "", "application/xml");
  EXPECT_EQ(xml.status, 400);
  auto huge = Call("POST", base_ + "/api/v1/things", admin_,
                   R"({"name":")" + std::string(2 << 20, 'a') + R"("})");
  EXPECT_EQ(huge.status, 413);
  EXPECT_TRUE(created_.empty());
  // A handler that throws is a 500 with a message, and the server goes on.
  auto boom = Call("GET", base_ + "/api/v1/throws", reader_);
  EXPECT_EQ(boom.status, 500);
  EXPECT_EQ(boom.Json()["error"]["code"], "internal");
  EXPECT_EQ(Call("GET", base_ + "/api/v1/public").status, 200);
}

TEST_F(ApiTest, WriteCallsAreAuditedWithoutTheirBodies) {
  Start();
  ASSERT_EQ(Call("POST", base_ + "/api/v1/things", operator_, R"({"name":"s3cr3tvalue"})").status,
            201);
  ASSERT_EQ(Call("DELETE", base_ + "/api/v1/things/x", reader_).status, 403);
  ASSERT_EQ(Call("GET", base_ + "/api/v1/things/x", reader_).status, 200);
  auto log = platform::ReadFileToString(dir_ / "api-audit.log");
  ASSERT_TRUE(log.ok());
  EXPECT_NE(log->find(R"("method":"POST","path":"/api/v1/things","peer":"127.0.0.1")"),
            std::string::npos)
      << *log;
  EXPECT_NE(log->find(R"("status":201)"), std::string::npos) << *log;
  EXPECT_NE(log->find(R"("status":403)"), std::string::npos) << *log;
  EXPECT_NE(log->find(R"("user":"ops")"), std::string::npos) << *log;
  EXPECT_EQ(log->find("s3cr3tvalue"), std::string::npos);
  EXPECT_EQ(log->find(operator_), std::string::npos);
  EXPECT_EQ(log->find("GET"), std::string::npos);  // reads are not audited
}

TEST_F(ApiTest, DownloadsStreamAFileAsAnAttachment) {
  std::string data(3 << 20, 'x');
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<char>(i * 7);
  ASSERT_TRUE(platform::WriteFileAtomic(dir_ / "download.bin", data).ok());
  Start();
  auto r = Call("GET", base_ + "/api/v1/file", reader_);
  EXPECT_EQ(r.status, 200);
  EXPECT_EQ(r.body, data);
  EXPECT_NE(r.headers.find("attachment; filename=\"download.bin\""), std::string::npos);
  ASSERT_TRUE(platform::RemoveFile(dir_ / "download.bin").ok());
  EXPECT_EQ(Call("GET", base_ + "/api/v1/file", reader_).status, 500);
}

TEST_F(ApiTest, ServesTlsAndReloadsANewCertificateForNewConnections) {
  std::string a_crt = dir_ / "a.crt", a_key = dir_ / "a.key";
  ASSERT_TRUE(crypto::EnsureSelfSignedCertificate(a_crt, a_key, {"127.0.0.1"}).ok());
  std::string live_crt = dir_ / "live.crt", live_key = dir_ / "live.key";
  ASSERT_TRUE(platform::WriteFileAtomic(live_crt, *platform::ReadFileToString(a_crt)).ok());
  ASSERT_TRUE(platform::WriteFileAtomic(live_key, *platform::ReadFileToString(a_key)).ok());
  ApiOptions o;
  o.server.tls_cert_file = live_crt;
  o.server.tls_key_file = live_key;
  Start(o);
  ASSERT_TRUE(api_->secure());
  EXPECT_EQ(Call("GET", base_ + "/api/v1/public", "", "", a_crt).status, 200);
  // Plain HTTP on the TLS port gets nothing.
  std::string plain = "http://127.0.0.1:" + std::to_string(api_->port());
  EXPECT_NE(Call("GET", plain + "/api/v1/public").status, 200);
  // A second certificate replaces the first.
  std::string b_crt = dir_ / "b.crt", b_key = dir_ / "b.key";
  ASSERT_TRUE(crypto::EnsureSelfSignedCertificate(b_crt, b_key, {"127.0.0.1"}).ok());
  ASSERT_TRUE(platform::WriteFileAtomic(live_crt, *platform::ReadFileToString(b_crt)).ok());
  ASSERT_TRUE(platform::WriteFileAtomic(live_key, *platform::ReadFileToString(b_key)).ok());
  ASSERT_TRUE(api_->ReloadCertificate().ok());
  EXPECT_EQ(Call("GET", base_ + "/api/v1/public", "", "", b_crt).status, 200);
  EXPECT_EQ(Call("GET", base_ + "/api/v1/public", "", "", a_crt).code,
            CURLE_PEER_FAILED_VERIFICATION);
  // Unusable files are refused and the served certificate stays.
  ASSERT_TRUE(platform::WriteFileAtomic(live_key, *platform::ReadFileToString(a_key)).ok());
  EXPECT_EQ(api_->ReloadCertificate().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(Call("GET", base_ + "/api/v1/public", "", "", b_crt).status, 200);
}

TEST_F(ApiTest, ServesTheUiFilesPubliclyWithAStrictPolicy) {
  ASSERT_TRUE(platform::MakeDirs(dir_ / "ui/assets").ok());
  ASSERT_TRUE(platform::WriteFileAtomic(dir_ / "ui/index.html", "<html>box</html>").ok());
  ASSERT_TRUE(platform::WriteFileAtomic(dir_ / "ui/assets/app-1a2b.js", "let x = 1;").ok());
  ASSERT_TRUE(platform::WriteFileAtomic(dir_ / "secret.txt", "outside").ok());
  ApiOptions o;
  o.ui_dir = dir_ / "ui";
  Start(o);
  auto index = Call("GET", base_ + "/");
  EXPECT_EQ(index.status, 200);
  EXPECT_EQ(index.body, "<html>box</html>");
  EXPECT_NE(index.headers.find("Content-Security-Policy: default-src 'self'"), std::string::npos);
  EXPECT_NE(index.headers.find("text/html"), std::string::npos);
  auto js = Call("GET", base_ + "/assets/app-1a2b.js");
  EXPECT_EQ(js.body, "let x = 1;");
  EXPECT_NE(js.headers.find("text/javascript"), std::string::npos);
  EXPECT_NE(js.headers.find("immutable"), std::string::npos);
  // Browsers that take gzip get it (curl decodes it back).
  std::string big(20000, 'a');
  ASSERT_TRUE(platform::WriteFileAtomic(dir_ / "ui/assets/big-1.js", big).ok());
  auto gz = Call("GET", base_ + "/assets/big-1.js", "", "", "", "application/json", true);
  EXPECT_EQ(gz.body, big);
  EXPECT_NE(gz.headers.find("Content-Encoding: gzip"), std::string::npos) << gz.headers;
  EXPECT_LT(gz.wire_bytes, 1000.0);
  EXPECT_EQ(Call("GET", base_ + "/assets/big-1.js").headers.find("Content-Encoding"),
            std::string::npos);
  // The UI's own routes get index.html; missing assets and escapes get 404.
  EXPECT_EQ(Call("GET", base_ + "/shares/edit").body, "<html>box</html>");
  EXPECT_EQ(Call("GET", base_ + "/assets/missing.js").status, 404);
  EXPECT_EQ(Call("GET", base_ + "/%2e%2e/secret.txt").status, 404);
  EXPECT_EQ(Call("GET", base_ + "/assets/..%2f..%2fsecret.txt").status, 404);
  // The API is not the UI: unknown API paths stay JSON 404s, and routes need their tokens.
  auto api = Call("GET", base_ + "/api/v1/nothing");
  EXPECT_EQ(api.status, 404);
  EXPECT_EQ(api.Json()["error"]["code"], "not_found");
  EXPECT_EQ(Call("GET", base_ + "/metrics").status, 401);
}

}  // namespace
}  // namespace fieldstack::management
