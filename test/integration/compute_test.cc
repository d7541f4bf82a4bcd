// Edge compute end to end through the real daemon (issue 9): a file dropped over S3 into a local
// share is processed by a pipeline into a cloud share and reaches Azurite (the original never
// leaves the box); MQTT messages through the box's mosquitto are aggregated over an event-time
// window and published, and a daemon killed while it holds them loses none.

#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cmath>
#include <ctime>
#include <nlohmann/json.hpp>
#include <string>
#include <thread>

#include "cloud/azure_blob/azure_blob_store.h"
#include "common/clock.h"
#include "compute/inference/image.h"
#include "platform/file.h"
#include "store/store.h"
#include "test/support/azurite.h"
#include "test/support/daemon_proc.h"
#include "test/support/shell.h"
#include "test/support/temp_dir.h"

namespace fieldstack {
namespace {

using Proc = testing::DaemonProc;
using testing::RunShell;

class ComputeTest : public ::testing::Test {
 protected:
  std::string WriteConfig(const std::string& extra) {
    std::string path = dir_ / "fieldstack.toml";
    std::string text = "data_dir = \"" + dir_.path() +
                       "/data\"\n[http]\nport = 0\npublic = [\"/healthz\", \"/metrics\"]\n"
                       "[tls]\nallow_http = true\n" +
                       extra;
    EXPECT_TRUE(platform::WriteFileAtomic(path, text).ok());
    return path;
  }
  std::unique_ptr<Proc> Start(const std::string& config) {
    return testing::StartProc(FS_BINARY, {"serve", "--config", config}, dir_.path());
  }
  // An empty Azurite container, as a test reads it.
  std::unique_ptr<cloud::ObjectStore> Container(const std::string& name) {
    auto& azurite = testing::Azurite::Shared();
    EXPECT_FALSE(azurite.endpoint().empty()) << azurite.error();
    auto azure = cloud::azure_blob::AzureBlobStore::Open(
        {azurite.endpoint(), testing::Azurite::kAccount, testing::Azurite::kKey, "", name, {}},
        RealClock::Get());
    EXPECT_TRUE(azure.ok()) << azure.status().ToString();
    if (!azure.ok()) return nullptr;
    EXPECT_TRUE((*azure)->CreateContainer().ok());
    return std::move(*azure);
  }
  // A config with S3 on a free port (key FIELDKEY1 may write the local share `local`) and the
  // cloud share `cloud` uploading to Azurite's container `container`; `extra` follows.
  std::string DropConfig(const std::string& local, const std::string& cloud,
                         const std::string& container, const std::string& extra) {
    EXPECT_TRUE(platform::WriteFileAtomic(dir_ / "key.secret", std::string(kS3Secret) + "\n").ok());
    EXPECT_TRUE(
        platform::WriteFileAtomic(dir_ / "azure.key", std::string(testing::Azurite::kKey)).ok());
    return WriteConfig(
        "[s3]\nenabled = true\nport = 0\n"
        "[[access_keys]]\nuser = \"field\"\nid = \"FIELDKEY1\"\nsecret_file = \"" +
        (dir_ / "key.secret") + "\"\nwrite = [\"" + local + "\"]\n[[shares]]\nname = \"" + local +
        "\"\n[[shares]]\nname = \"" + cloud +
        "\"\nkind = \"cloud\"\n[shares.target]\ntype = \"azure\"\nendpoint = \"" +
        testing::Azurite::Shared().endpoint() +
        "\"\naccount = \"devstoreaccount1\"\nkey_file = \"" + (dir_ / "azure.key") +
        "\"\ncontainer = \"" + container + "\"\n" + extra);
  }
  // aws-cli against the daemon's S3 port, as FIELDKEY1.
  std::string Aws(const std::string& port) {
    return "env -u AWS_CA_BUNDLE -u AWS_PROFILE HOME=" + dir_.path() +
           " AWS_ACCESS_KEY_ID=FIELDKEY1 AWS_SECRET_ACCESS_KEY=" + kS3Secret +
           " AWS_DEFAULT_REGION=us-east-1 AWS_CONFIG_FILE=/dev/null /usr/bin/aws --endpoint-url "
           "http://127.0.0.1:" +
           port.substr(0, port.find(' ')) + " ";
  }
  // The keys of a container, once it holds any (up to 30 s).
  std::vector<std::string> WaitForKeys(cloud::ObjectStore& store) {
    std::vector<std::string> keys;
    for (int i = 0; i < 300 && keys.empty(); ++i) {
      auto page = store.List("", "", 100);
      EXPECT_TRUE(page.ok()) << page.status().ToString();
      if (!page.ok()) break;
      for (const auto& o : page->objects) keys.push_back(o.key);
      if (keys.empty()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    return keys;
  }
  static constexpr char kS3Secret[] = "dGVzdC1zZWNyZXQtZm9yLXRoZS1jb21wdXRlLXRlc3Qh";
  testing::TempDir dir_;
};

TEST_F(ComputeTest, FileDroppedOverS3IsProcessedIntoACloudShareThatReachesAzurite) {
  auto azure = Container("processed");
  ASSERT_NE(azure, nullptr);
  std::string config =
      DropConfig("drop", "processed", "processed",
                 "[[pipelines]]\nname = \"clean\"\n"
                 "[pipelines.trigger]\ntype = \"file\"\nshare = \"drop\"\nglob = \"in/**/*.csv\"\n"
                 "settle_ms = 200\n"
                 "[[pipelines.steps]]\ntype = \"filter\"\nwhere = \"temp_c > 30\"\n"
                 "[[pipelines.steps]]\ntype = \"redact\"\n"
                 "[[pipelines.sinks]]\ntype = \"file\"\nshare = \"processed\"\n"
                 "path = \"{dir}/{stem}-v{version}.csv\"\n");
  auto p = Start(config);
  std::string s3 = p->WaitFor("s3: serving http://127.0.0.1:");
  ASSERT_FALSE(s3.empty()) << p->output;
  std::string csv =
      "site,temp_c,note\n"
      "north,31.5,call bob@example.com\n"
      "south,12,ok\n"
      "east,40,\"mail ann@corp.io, then \"\"wait\"\"\"\n";
  ASSERT_TRUE(platform::WriteFileAtomic(dir_ / "readings.csv", csv).ok());
  std::string aws = Aws(s3);
  auto r = RunShell(aws + "s3 cp " + (dir_ / "readings.csv") + " s3://drop/in/site1/readings.csv");
  ASSERT_EQ(r.first, 0) << r.second << p->output;
  // A file the glob does not match is left alone.
  r = RunShell(aws + "s3 cp " + (dir_ / "readings.csv") + " s3://drop/other/readings.csv");
  ASSERT_EQ(r.first, 0) << r.second;

  std::vector<std::string> keys = WaitForKeys(*azure);
  ASSERT_EQ(keys.size(), 1u) << p->output;
  EXPECT_TRUE(keys[0].starts_with("in/site1/readings-v")) << keys[0];
  EXPECT_TRUE(keys[0].ends_with(".csv")) << keys[0];
  auto body = azure->Get(keys[0], 0, 1 << 20);
  ASSERT_TRUE(body.ok()) << body.status().ToString();
  EXPECT_EQ(*body,
            "site,temp_c,note\n"
            "north,31.5,call [email]\n"
            "east,40,\"mail [email], then \"\"wait\"\"\"\n");
  EXPECT_EQ(body->find("@"), std::string::npos);
  // Only the processed output left the box: the drop share is local.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto all = azure->List("", "", 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->objects.size(), 1u);
  ::kill(p->pid, SIGTERM);
  EXPECT_EQ(p->Wait(), 0) << p->output;
}

// Publishes `lines` (one message each) on `topic` with mosquitto_pub at QoS 1.
testing::ShellRun Publish(int port, const std::string& pw_file, const std::string& topic,
                          const std::string& lines) {
  return testing::Shell("printf '%s' '" + lines + "' | mosquitto_pub -q 1 -p " +
                        std::to_string(port) + " -u sensor -P \"$(cat " + pw_file + ")\" -t " +
                        topic + " -l");
}

TEST_F(ComputeTest, MqttMessagesAreAggregatedAndPublishedAndSurviveADaemonKill) {
  ASSERT_TRUE(platform::WriteFileAtomic(dir_ / "sensor.pw", "sensor-secret-1\n").ok());
  std::string config = WriteConfig(
      "[mqtt]\nbroker = \"builtin\"\nport = 0\n"
      "[[mqtt.users]]\nname = \"sensor\"\npassword_file = \"" +
      (dir_ / "sensor.pw") +
      "\"\n"
      "[[shares]]\nname = \"iot\"\n"
      "[[pipelines]]\nname = \"temps\"\n"
      "[pipelines.trigger]\ntype = \"mqtt\"\ntopics = [\"sensors/+/temp\"]\n"
      "[[pipelines.steps]]\ntype = \"aggregate\"\ngroup_by = [\"site\"]\ntime = \"ts\"\n"
      "window = { size_s = 4 }\n"
      "metrics = [{ op = \"count\", as = \"n\" }, { op = \"avg\", column = \"temp\", as = "
      "\"avg_temp\" }, { op = \"max\", column = \"temp\", as = \"max_temp\" }]\n"
      "[[pipelines.sinks]]\ntype = \"mqtt\"\ntopic = \"agg/{site}\"\n"
      "[[pipelines.sinks]]\ntype = \"file\"\nshare = \"iot\"\npath = \"agg/{batch}.jsonl\"\n"
      "roll = { max_age_s = 1 }\n");
  auto p = Start(config);
  std::string port_text = p->WaitFor("mqtt: broker on 127.0.0.1:");
  ASSERT_FALSE(port_text.empty()) << p->output;
  int port = std::atoi(port_text.c_str());
  ASSERT_FALSE(p->WaitFor("serving on http://127.0.0.1:").empty()) << p->output;

  // A window that ends a few seconds from now (event time = wall-clock time, so the window
  // closes by the clock once it is over).
  int64_t now_s = std::time(nullptr);
  int64_t start = (now_s / 4 + 5) * 4;  // 16 to 20 s ahead: room for a slow restart
  auto msg = [&](const std::string& site, int64_t off, double temp) {
    return "{\"site\":\"" + site + "\",\"ts\":" + std::to_string(start + off) +
           ",\"temp\":" + std::to_string(temp) + "}\n";
  };
  // A wrong password is refused by the broker.
  auto bad = testing::Shell("mosquitto_pub -q 1 -p " + std::to_string(port) +
                            " -u sensor -P wrong -t sensors/a/temp -m '{}'");
  EXPECT_NE(bad.rc, 0) << bad.out;
  auto r = Publish(port, dir_ / "sensor.pw", "sensors/a/temp",
                   msg("a", 0, 20) + msg("a", 1, 22) + msg("a", 2, 24));
  ASSERT_EQ(r.rc, 0) << r.out << p->output;
  r = Publish(port, dir_ / "sensor.pw", "sensors/b/temp", msg("b", 1, 30));
  ASSERT_EQ(r.rc, 0) << r.out;
  // Not JSON: a dead letter, the stream goes on.
  r = testing::Shell("mosquitto_pub -q 1 -p " + std::to_string(port) +
                     " -u sensor -P sensor-secret-1 -t sensors/c/temp -m 'not json'");
  ASSERT_EQ(r.rc, 0) << r.out;
  // The box is killed while it holds the messages (before their window closes), and started
  // again: the buffered messages are still there.
  std::this_thread::sleep_for(std::chrono::milliseconds(800));
  ASSERT_LT(std::time(nullptr), start + 4) << "the machine was too slow for this test's window";
  ::kill(p->pid, SIGKILL);
  p->Wait();
  auto q = Start(config);
  port_text = q->WaitFor("mqtt: broker on 127.0.0.1:");  // port 0: a new free port
  ASSERT_FALSE(port_text.empty()) << q->output;
  port = std::atoi(port_text.c_str());
  ASSERT_FALSE(q->WaitFor("serving on http://127.0.0.1:").empty()) << q->output;
  // The subscriber that checks what the pipeline publishes.
  std::string got = dir_ / "got.txt";
  std::string sub = "timeout 40 mosquitto_sub -q 1 -C 2 -v -p " + std::to_string(port) +
                    " -u sensor -P sensor-secret-1 -t 'agg/#' > " + got + " 2>&1 &";
  ASSERT_EQ(std::system(sub.c_str()), 0);
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  ASSERT_LT(std::time(nullptr), start + 4) << "the machine was too slow for this test's window";

  std::string out;
  for (int i = 0; i < 300; ++i) {
    out = platform::ReadFileToString(got).value_or("");
    if (std::count(out.begin(), out.end(), '\n') >= 2) break;
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  EXPECT_NE(out.find("agg/a {"), std::string::npos) << out << q->output;
  EXPECT_NE(out.find("\"n\":3"), std::string::npos) << out;
  EXPECT_NE(out.find("\"avg_temp\":22"), std::string::npos) << out;
  EXPECT_NE(out.find("\"max_temp\":24"), std::string::npos) << out;
  EXPECT_NE(out.find("agg/b {"), std::string::npos) << out;
  EXPECT_NE(out.find("\"avg_temp\":30"), std::string::npos) << out;
  std::this_thread::sleep_for(std::chrono::milliseconds(1500));  // the file roll closes
  ::kill(q->pid, SIGTERM);
  EXPECT_EQ(q->Wait(), 0) << q->output;

  // The same aggregates were written once into the share.
  auto st = store::Store::Open({.data_dir = dir_.path() + "/data"});
  ASSERT_TRUE(st.ok()) << st.status().ToString();
  auto agg = (*st)->Resolve("iot", "agg");
  ASSERT_TRUE(agg.ok()) << agg.status().ToString();
  auto files = (*st)->ReadDir(agg->id, "", 100);
  ASSERT_TRUE(files.ok());
  std::string all;
  for (const auto& f : *files) {
    auto h = (*st)->OpenFile(f.id, false);
    ASSERT_TRUE(h.ok());
    std::string buf(f.size, '\0');
    auto n = (*h)->Read(0, {reinterpret_cast<uint8_t*>(buf.data()), buf.size()});
    ASSERT_TRUE(n.ok());
    all += buf;
  }
  EXPECT_EQ(std::count(all.begin(), all.end(), '\n'), 2) << all;
  EXPECT_NE(all.find("\"site\":\"a\""), std::string::npos) << all;
  EXPECT_NE(all.find("\"site\":\"b\""), std::string::npos) << all;
}

// A JSON answer of the API (plain HTTP in these tests) through curl.
nlohmann::json Api(int port, const std::string& method, const std::string& path,
                   const std::string& token, const nlohmann::json& body = nullptr) {
  std::string cmd =
      "curl -sS -m 60 -X " + method + " http://127.0.0.1:" + std::to_string(port) + path;
  if (!token.empty()) cmd += " -H 'Authorization: Bearer " + token + "'";
  if (!body.is_null()) cmd += " -H 'Content-Type: application/json' --data-binary @-";
  std::string in = body.is_null() ? "" : body.dump();
  FILE* f = ::popen((cmd + " <<'EOF_BODY'\n" + in + "\nEOF_BODY").c_str(), "r");
  std::string out;
  char buf[4096];
  size_t n;
  while ((n = ::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  ::pclose(f);
  return nlohmann::json::parse(out, nullptr, false);
}

TEST_F(ComputeTest, ImageDroppedOverS3IsAnonymisedAndOnlyTheResultReachesAzurite) {
  if (!platform::PathExists(FS_BLAZEFACE_MODEL) || !platform::PathExists(FS_ASTRONAUT)) {
    GTEST_SKIP() << "the BlazeFace model or the test image is missing (scripts/install-deps)";
  }
  auto azure = Container("anon");
  ASSERT_NE(azure, nullptr);
  std::string config = DropConfig("photos", "outbound", "anon", "");
  auto p = Start(config);
  std::string s3 = p->WaitFor("s3: serving http://127.0.0.1:");
  ASSERT_FALSE(s3.empty()) << p->output;
  std::string api = p->WaitFor("serving on http://127.0.0.1:");
  ASSERT_FALSE(api.empty()) << p->output;
  int api_port = std::atoi(api.c_str());
  std::string code = p->WaitFor("set the admin password with the setup code ");
  code = code.substr(0, code.find(':'));
  ASSERT_FALSE(code.empty()) << p->output;
  auto setup =
      Api(api_port, "POST", "/api/v1/setup", "",
          {{"setup_code", code}, {"user", "admin"}, {"password", "a-long-admin-password-1"}});
  auto login = Api(api_port, "POST", "/api/v1/login", "",
                   {{"user", "admin"}, {"password", "a-long-admin-password-1"}});
  ASSERT_TRUE(login.contains("token")) << login.dump() << setup.dump();
  std::string token = login["token"];
  // The model, registered from a file on the box; its inputs and outputs are introspected.
  auto model =
      Api(api_port, "POST", "/api/v1/models/blazeface", token, {{"path", FS_BLAZEFACE_MODEL}});
  ASSERT_EQ(model.value("version", 0), 1) << model.dump();
  ASSERT_EQ(model["inputs"][0]["shape"], nlohmann::json({1, 128, 128, 3})) << model.dump();
  // A bad model is refused with a clear error.
  ASSERT_TRUE(platform::WriteFileAtomic(dir_ / "bad.onnx", "not a model at all").ok());
  auto bad = Api(api_port, "POST", "/api/v1/models/broken", token, {{"path", dir_ / "bad.onnx"}});
  EXPECT_NE(bad.dump().find("not a usable ONNX model"), std::string::npos) << bad.dump();
  // The pipeline: faces blurred, the result into the cloud share; the original stays local.
  nlohmann::json decl = {
      {"name", "anonymise"},
      {"trigger",
       {{"type", "file"}, {"share", "photos"}, {"glob", "**/*.png"}, {"settle_ms", 200}}},
      {"steps",
       {{{"type", "anonymize"},
         {"model", "blazeface"},
         {"mode", "blur"},
         {"image", {{"layout", "nhwc"}, {"scale", 2.0 / 255}, {"mean", {1, 1, 1}}}}}}},
      {"sinks", {{{"type", "file"}, {"share", "outbound"}, {"path", "{dir}/{stem}-anon.{ext}"}}}}};
  auto made = Api(api_port, "POST", "/api/v1/pipelines", token, decl);
  ASSERT_EQ(made.value("name", ""), "anonymise") << made.dump();

  std::string aws = Aws(s3);
  auto r = RunShell(aws + "s3 cp " + std::string(FS_ASTRONAUT) + " s3://photos/crew/astronaut.png");
  ASSERT_EQ(r.first, 0) << r.second << p->output;

  std::vector<std::string> keys = WaitForKeys(*azure);
  ASSERT_EQ(keys, std::vector<std::string>{"crew/astronaut-anon.png"}) << p->output;
  auto got = azure->Get(keys[0], 0, 64 << 20);
  ASSERT_TRUE(got.ok());
  auto orig_bytes = platform::ReadFileToString(FS_ASTRONAUT);
  ASSERT_TRUE(orig_bytes.ok());
  auto orig = compute::inference::DecodeImage(*orig_bytes);
  auto anon = compute::inference::DecodeImage(*got);
  ASSERT_TRUE(orig.ok() && anon.ok());
  ASSERT_EQ(anon->width, orig->width);
  ASSERT_EQ(anon->height, orig->height);
  // The face (179,82)-(274,177), verified by eye, is changed; far from it nothing is.
  auto diff = [&](int x0, int y0, int x1, int y1) {
    double sum = 0;
    int n = 0;
    for (int y = y0; y < y1; ++y) {
      for (int x = x0; x < x1; ++x) {
        for (int c = 0; c < 3; ++c) {
          size_t i = (static_cast<size_t>(y) * orig->width + x) * 3 + c;
          sum += std::abs(int(orig->pixels[i]) - int(anon->pixels[i]));
          ++n;
        }
      }
    }
    return sum / n;
  };
  EXPECT_GT(diff(195, 100, 260, 160), 10.0) << "the face was not changed";
  EXPECT_EQ(diff(0, 300, 512, 512), 0.0) << "the background changed";
  EXPECT_EQ(diff(350, 0, 512, 200), 0.0) << "the background changed";
  // The original never left the box.
  std::this_thread::sleep_for(std::chrono::seconds(1));
  auto all = azure->List("", "", 100);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->objects.size(), 1u);
  // The run is in the pipeline's log.
  auto runs = Api(api_port, "GET", "/api/v1/pipelines/anonymise/runs", token);
  ASSERT_TRUE(runs.contains("runs")) << runs.dump();
  ASSERT_FALSE(runs["runs"].empty());
  EXPECT_EQ(runs["runs"][0]["result"], "ok") << runs.dump();
  EXPECT_NE(runs["runs"][0]["log"].get<std::string>().find("1 face(s) blurred"), std::string::npos)
      << runs.dump();
  ::kill(p->pid, SIGTERM);
  EXPECT_EQ(p->Wait(), 0) << p->output;
}

}  // namespace
}  // namespace fieldstack
