#include "daemon/config.h"

#include <gtest/gtest.h>

#include "platform/file.h"
#include "test/support/temp_dir.h"

namespace fieldstack::daemon {
namespace {

TEST(ConfigTest, EmptyTextGivesDefaults) {
  auto c = ParseConfig("", "t.toml");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->data_dir, "./fieldstack-data");
  EXPECT_TRUE(c->encryption);
  ASSERT_EQ(c->shares.size(), 1u);
  EXPECT_EQ(c->shares[0].name, "default");
}

TEST(ConfigTest, ParsesEverySetting) {
  auto c = ParseConfig(R"(
data_dir = "/srv/box"
[http]
address = "0.0.0.0"
port = 0
[log]
format = "json"
level = "debug"
[encryption]
enabled = false
key_file = "/etc/fieldstack/master.key"
[store]
chunk_size_kib = 1024
[upload]
bandwidth = "Mon-08:00,512k 18:00,off"
part_size_mib = 16
[[shares]]
name = "ingest"
kind = "cloud"
[shares.target]
type = "azure"
endpoint = "https://acct.blob.core.windows.net"
account = "acct"
key_file = "/etc/fieldstack/azure.key"
container = "ingest"
[[shares]]
name = "scratch"
)",
                       "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->data_dir, "/srv/box");
  EXPECT_EQ(c->http_port, 0);
  EXPECT_EQ(c->log_format, LogFormat::kJson);
  EXPECT_FALSE(c->encryption);
  EXPECT_EQ(c->chunk_size_kib, 1024u);
  ASSERT_EQ(c->shares.size(), 2u);
  EXPECT_EQ(c->shares[0].kind, store::ShareKind::kCloud);
  EXPECT_EQ(c->shares[1].kind, store::ShareKind::kLocal);
  EXPECT_EQ(c->shares[0].target.type, "azure");
  EXPECT_EQ(c->shares[0].target.container, "ingest");
  EXPECT_EQ(c->upload_part_size_mib, 16u);
  EXPECT_EQ(c->upload_bandwidth, "Mon-08:00,512k 18:00,off");
}

void ExpectError(const std::string& text, const std::string& needle) {
  auto c = ParseConfig(text, "t.toml");
  ASSERT_FALSE(c.ok()) << text;
  EXPECT_EQ(c.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(c.status().message().find(needle), std::string::npos)
      << c.status().message() << " should mention " << needle;
  EXPECT_EQ(c.status().message().find('\n'), std::string::npos) << "one line";
}

TEST(ConfigTest, BadInputNamesTheKey) {
  ExpectError("[http]\nprot = 1\n", "unknown key 'http.prot'");
  ExpectError("colour = 1\n", "unknown key 'colour'");
  ExpectError("[http]\nport = \"80\"\n", "'http.port' must be an integer");
  ExpectError("[http]\nport = 70000\n", "'http.port' must be between");
  ExpectError("[log]\nformat = \"xml\"\n", "'log.format'");
  ExpectError("[encryption]\nenabled = \"yes\"\n", "'encryption.enabled'");
  ExpectError("[store]\nchunk_size_kib = 100\n", "power of two");
  ExpectError("[[shares]]\nname = \"a/b\"\n", "'shares[0].name'");
  ExpectError("[[shares]]\nname = \"a\"\n[[shares]]\nname = \"a\"\n", "repeats");
  ExpectError("[[shares]]\nname = \"a\"\nkind = \"remote\"\n", "'shares[0].kind'");
  ExpectError("data_dir = 5\n", "'data_dir' must be a string");
  ExpectError("http = 5\n", "'http' must be a table");
  ExpectError("this is not toml", "line 1");
  ExpectError("[upload]\nbandwidth = \"fast\"\n", "'upload.bandwidth'");
  ExpectError("[[shares]]\nname = \"a\"\n[shares.target]\ntype = \"localfs\"\npath = \"/x\"\n",
              "only for kind");
  ExpectError("[[shares]]\nname = \"a\"\nkind = \"cloud\"\n[shares.target]\ntype = \"localfs\"\n",
              "'shares[0].target.path'");
  ExpectError(
      "[[shares]]\nname = \"a\"\nkind = \"cloud\"\n[shares.target]\ntype = \"azure\"\n"
      "endpoint = \"http://h\"\ncontainer = \"c\"\n",
      "needs account and key_file, or sas_file");
  const std::string s3 =
      "[[shares]]\nname = \"a\"\nkind = \"cloud\"\n[shares.target]\ntype = \"s3\"\n";
  ExpectError(s3 + "endpoint = \"http://h\"\n", "needs endpoint, bucket and credentials_file");
  const std::string full =
      s3 + "endpoint = \"http://h\"\nbucket = \"b\"\ncredentials_file = \"/c\"\n";
  ExpectError(full + "addressing = \"dns\"\n", "'shares[0].target.addressing'");
  ExpectError(full + "policy = \"sync\"\n", "'shares[0].target.policy' must be \"keep\" or");
  ExpectError("[upload]\ntransfers = 0\n", "'upload.transfers'");
  ExpectError("[upload]\ndaily_budget = \"lots\"\n", "'upload.daily_budget' is not a size");
  ExpectError("[upload]\nmonthly_budget = \"1M\"\n", "smaller than one upload part");
  auto b = ParseConfig("[upload]\ndaily_budget = \"2G\"\nmonthly_budget = \"off\"\n", "t");
  ASSERT_TRUE(b.ok()) << b.status().ToString();
  EXPECT_EQ(b->upload_daily_budget, uint64_t{2} << 30);
  EXPECT_EQ(b->upload_monthly_budget, std::nullopt);
  auto c = ParseConfig(full + "policy = \"mirror\"\naddressing = \"virtual\"\n", "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->shares[0].target.type, "s3");
  EXPECT_EQ(c->shares[0].target.policy, "mirror");
  EXPECT_EQ(c->shares[0].target.addressing, "virtual");
  ExpectError(full + "page_blob_suffixes = [\".vhd\"]\n", "only for azure targets");
  const std::string azure =
      "[[shares]]\nname = \"a\"\nkind = \"cloud\"\n[shares.target]\ntype = \"azure\"\n"
      "endpoint = \"http://h\"\ncontainer = \"c\"\nsas_file = \"/s\"\n";
  ExpectError(azure + "page_blob_suffixes = \".vhd\"\n", "must be an array");
  auto pb = ParseConfig(azure + "page_blob_suffixes = [\".vhd\", \".vhdx\"]\n", "t");
  ASSERT_TRUE(pb.ok()) << pb.status().ToString();
  EXPECT_EQ(pb->shares[0].target.page_blob_suffixes, (std::vector<std::string>{".vhd", ".vhdx"}));
  ExpectError("[smb]\nenabled = true\n", "'smb.users' needs at least one user");
  ExpectError("[smb]\n[[smb.users]]\nname = \"u\"\n",
              "'smb.users[0]' needs name and password_file");
  ExpectError("[[shares]]\nname = \"a\"\nsmb_encrypt = \"yes\"\n", "'shares[0].smb_encrypt'");
  auto smb = ParseConfig(
      "[smb]\nenabled = true\nport = 1445\n[[smb.users]]\nname = \"u\"\n"
      "password_file = \"/p\"\nread_only = true\n",
      "t");
  ASSERT_TRUE(smb.ok()) << smb.status().ToString();
  EXPECT_EQ(smb->smb_port, 1445);
  EXPECT_TRUE(smb->smb_users[0].read_only);
  ExpectError("[nfs]\nport = 70000\n", "'nfs.port' must be between 0 and 65535");
  ExpectError("[[shares]]\nname = \"a\"\nnfs_squash = \"yes\"\n", "'shares[0].nfs_squash'");
  ExpectError("[[shares]]\nname = \"a\"\nnfs_clients = \"10.0.0.1\"\n",
              "'shares[0].nfs_clients' must be an array");
  auto nfs = ParseConfig(
      "[nfs]\nenabled = true\nport = 0\n[[shares]]\nname = \"a\"\n"
      "nfs_clients = [\"10.0.0.0/24\", \"*\"]\nnfs_read_only = true\nnfs_squash = \"all\"\n",
      "t");
  ASSERT_TRUE(nfs.ok()) << nfs.status().ToString();
  EXPECT_TRUE(nfs->nfs_enabled);
  EXPECT_EQ(nfs->nfs_port, 0);
  EXPECT_EQ(nfs->shares[0].nfs_clients, (std::vector<std::string>{"10.0.0.0/24", "*"}));
  EXPECT_TRUE(nfs->shares[0].nfs_read_only);
  EXPECT_EQ(nfs->shares[0].nfs_squash, "all");
  // Object endpoints, TLS and access keys.
  auto obj = ParseConfig(
      "[s3]\nenabled = true\nport = 0\ncreate_buckets = true\n[blob]\nenabled = true\n"
      "address = \"0.0.0.0\"\n[tls]\nnames = [\"box.local\"]\nallow_http = true\n"
      "[[access_keys]]\nuser = \"u\"\nid = \"AKIA1\"\nsecret_file = \"/s\"\n"
      "read = [\"a\"]\nwrite = [\"*\"]\n",
      "t");
  ASSERT_TRUE(obj.ok()) << obj.status().ToString();
  EXPECT_TRUE(obj->s3.enabled && obj->blob.enabled && obj->create_buckets && obj->allow_http);
  EXPECT_EQ(obj->s3.port, 0);
  EXPECT_EQ(obj->blob.port, 10000);
  EXPECT_EQ(obj->blob.address, "0.0.0.0");
  EXPECT_EQ(obj->tls_names, (std::vector<std::string>{"box.local"}));
  ASSERT_EQ(obj->access_keys.size(), 1u);
  EXPECT_EQ(obj->access_keys[0].write, (std::vector<std::string>{"*"}));
  // Keys may come from settings.toml: the check waits for the whole configuration.
  auto no_keys = ParseConfig("[s3]\nenabled = true\n", "t.toml");
  ASSERT_TRUE(no_keys.ok());
  Status incomplete = CheckComplete(*no_keys);
  EXPECT_NE(incomplete.message().find("'access_keys' needs at least one key"), std::string::npos)
      << incomplete.message();
  ExpectError("[blob]\ncreate_buckets = true\n", "unknown key 'blob.create_buckets'");
  ExpectError("[[access_keys]]\nuser = \"u\"\n", "'access_keys[0]' needs user, id and secret_file");
  ExpectError("[[access_keys]]\nuser = \"u\"\nid = \"a/b\"\nsecret_file = \"/s\"\n",
              "'access_keys[0].id'");
  ExpectError("[tls]\ncert_file = \"/c\"\n", "'tls.cert_file'");
  auto mapped = ParseConfig(
      "[[shares]]\nname = \"ingest\"\n[[buckets]]\nname = \"field-in\"\nshare = \"ingest\"\n"
      "path = \"/from/field/\"\n",
      "t");
  ASSERT_TRUE(mapped.ok()) << mapped.status().ToString();
  EXPECT_EQ(mapped->buckets[0].path, "from/field");
  ExpectError("[[buckets]]\nname = \"x-in\"\nshare = \"nope\"\npath = \"a\"\n",
              "'buckets[0].share' names no share");
  ExpectError("[[buckets]]\nname = \"x-in\"\nshare = \"default\"\npath = \"a/../b\"\n",
              "'buckets[0].path'");
  ExpectError("[[buckets]]\nname = \"default\"\nshare = \"default\"\npath = \"a\"\n",
              "already the name of a share");
  ExpectError("[[buckets]]\nname = \"Bad_Name\"\nshare = \"default\"\npath = \"a\"\n",
              "'buckets[0].name'");
  auto example = platform::ReadFileToString(FS_SOURCE_DIR "/docs/fieldstack.example.toml");
  ASSERT_TRUE(example.ok());
  auto parsed = ParseConfig(*example, "docs/fieldstack.example.toml");
  EXPECT_TRUE(parsed.ok()) << parsed.status().ToString();
}

}  // namespace
}  // namespace fieldstack::daemon

namespace fieldstack::daemon {
namespace {

TEST(ConfigTest, CacheLimitsForTheBoxAndPerShare) {
  auto d = ParseConfig("", "t");
  ASSERT_TRUE(d.ok());
  EXPECT_EQ(d->cache.high_watermark, "90%");
  EXPECT_EQ(d->cache.hard_cap, "95%");
  auto c = ParseConfig(
      "[cache]\nhigh_watermark = \"500GiB\"\nlow_watermark = \"400GiB\"\nhard_cap = \"98%\"\n"
      "max_age_days = 30\npinned = [\"db/\"]\nbackpressure_timeout_s = 10\n"
      "recall_timeout_s = 20\n[[shares]]\nname = \"a\"\nkind = \"cloud\"\nrefresh_ttl_s = 600\n"
      "[shares.cache]\nhigh_watermark = \"10G\"\npinned = [\"**/*.idx\"]\n",
      "t");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->cache.low_watermark, "400GiB");
  EXPECT_EQ(c->cache.max_age_days, 30u);
  EXPECT_EQ(c->cache.pinned, std::vector<std::string>{"db/"});
  EXPECT_EQ(c->backpressure_timeout_s, 10u);
  EXPECT_EQ(c->recall_timeout_s, 20u);
  EXPECT_EQ(c->shares[0].refresh_ttl_s, 600u);
  EXPECT_EQ(c->shares[0].cache.high_watermark, "10G");
  EXPECT_EQ(c->shares[0].cache.pinned, std::vector<std::string>{"**/*.idx"});
  ExpectError("[cache]\nhigh_watermark = \"lots\"\n", "'cache.high_watermark'");
  ExpectError("[cache]\nhard_cap = \"120%\"\n", "'cache.hard_cap'");
  ExpectError("[cache]\nsize = 1\n", "unknown key 'cache.size'");
  ExpectError("[cache]\nrecall_timeout_s = 0\n", "'cache.recall_timeout_s'");
  ExpectError("[[shares]]\nname = \"a\"\nrefresh_ttl_s = 5\n", "only for kind");
  ExpectError("[[shares]]\nname = \"a\"\nkind = \"cloud\"\n[shares.cache]\ninterval_s = 5\n",
              "'shares[0].cache.interval_s' is set for the box");
}

TEST(ConfigTest, SharesUseStorageAccountsByName) {
  auto c = ParseConfig(R"(
[device]
name = "rugged-7"
host_power = true
[http]
public = ["/healthz"]
[alerts]
webhook = "https://hooks.example/fs"
health_interval_s = 5
[[storage_accounts]]
name = "field-azure"
type = "azure"
endpoint = "https://acct.blob.core.windows.net"
account = "acct"
key_file = "/etc/fs/acct.key"
[[shares]]
name = "ingest"
kind = "cloud"
[shares.target]
storage_account = "field-azure"
container = "ingest"
)",
                       "t.toml");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->device_name, "rugged-7");
  EXPECT_TRUE(c->host_power);
  EXPECT_EQ(c->http_public, std::vector<std::string>{"/healthz"});
  EXPECT_EQ(c->alerts_webhook, "https://hooks.example/fs");
  EXPECT_EQ(c->health_interval_s, 5u);
  const TargetConfig& t = c->shares[0].target;
  EXPECT_EQ(t.type, "azure");
  EXPECT_EQ(t.endpoint, "https://acct.blob.core.windows.net");
  EXPECT_EQ(t.key_file, "/etc/fs/acct.key");
  EXPECT_EQ(t.container, "ingest");
  // Bad references and mixed settings name the key.
  for (auto [text, key] : std::initializer_list<std::pair<const char*, const char*>>{
           {"[[shares]]\nname = \"s\"\nkind = \"cloud\"\n[shares.target]\n"
            "storage_account = \"nope\"\ncontainer = \"c\"\n",
            "shares[0].target.storage_account"},
           {"[[storage_accounts]]\nname = \"a\"\ntype = \"ftp\"\n", "storage_accounts[0].type"},
           {"[[storage_accounts]]\nname = \"a\"\ntype = \"localfs\"\npath = \"/x\"\n"
            "[[shares]]\nname = \"s\"\nkind = \"cloud\"\n[shares.target]\n"
            "storage_account = \"a\"\npath = \"/y\"\n",
            "shares[0].target.path"},
           {"[http]\npublic = [\"/api/v1/users\"]\n", "http.public"},
           {"[device]\nname = \"bad name\"\n", "device.name"},
           {"[alerts]\nwebhook = \"ftp://x\"\n", "alerts.webhook"},
       }) {
    auto bad = ParseConfig(text, "t.toml");
    ASSERT_FALSE(bad.ok()) << text;
    EXPECT_NE(bad.status().message().find(key), std::string::npos) << bad.status().message();
  }
}

TEST(ConfigTest, ManagedSettingsRoundTripAndReplaceTheirSections) {
  auto base = ParseConfig(R"(
data_dir = "/srv/box"
[http]
port = 9443
[[storage_accounts]]
name = "lake"
type = "localfs"
path = "/mnt/lake"
[[shares]]
name = "ingest"
kind = "cloud"
refresh_ttl_s = 60
[shares.cache]
pinned = ["keep/**"]
[shares.target]
storage_account = "lake"
policy = "mirror"
[upload]
bandwidth = "Mon-08:00,512k 18:00,off"
daily_budget = "10G"
)",
                          "t.toml");
  ASSERT_TRUE(base.ok()) << base.status().ToString();
  std::string text = ManagedSettingsToml(*base);
  auto back = ParseConfig(text, "settings.toml");
  ASSERT_TRUE(back.ok()) << back.status().ToString() << "\n" << text;
  EXPECT_EQ(ManagedSettingsToml(*back), text);
  EXPECT_EQ(back->shares[0].target.path, "/mnt/lake");
  EXPECT_EQ(back->shares[0].target.policy, "mirror");
  EXPECT_EQ(back->shares[0].cache.pinned, std::vector<std::string>{"keep/**"});
  EXPECT_EQ(back->upload_daily_budget, uint64_t{10} << 30);
  // Written to <data_dir>/settings.toml, they replace the file's sections at the next start;
  // the rest (ports, data_dir) stays the file's.
  testing::TempDir dir;
  Config changed = *back;
  changed.shares.push_back(ShareConfig{"more", store::ShareKind::kLocal, {}});
  ASSERT_TRUE(platform::WriteFileAtomic(dir / "settings.toml", ManagedSettingsToml(changed)).ok());
  Config start = *base;
  start.data_dir = dir.path();
  ASSERT_TRUE(ApplyManagedSettings(start).ok());
  EXPECT_EQ(start.shares.size(), 2u);
  EXPECT_EQ(start.http_port, 9443);
  // A broken settings file is an error naming it, not silently ignored.
  ASSERT_TRUE(platform::WriteFileAtomic(dir / "settings.toml", "[[shares]]\nname = 3\n").ok());
  Status s = ApplyManagedSettings(start);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("settings.toml"), std::string::npos) << s.message();
  // ValidateManaged refuses what the parser refuses.
  Config bad = *base;
  bad.shares[0].nfs_squash = "everyone";
  EXPECT_EQ(ValidateManaged(bad).status().code(), StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fieldstack::daemon

namespace fieldstack::daemon {
namespace {

TEST(ConfigTest, PipelinesMqttAndComputeSectionsParseAndRoundTripThroughSettings) {
  auto c = ParseConfig(
      "[compute]\nworkers = 3\n"
      "[mqtt]\nbroker = \"builtin\"\nport = 0\n[[mqtt.users]]\nname = \"sensor\"\n"
      "password_file = \"/x\"\n"
      "[[shares]]\nname = \"in\"\n[[shares]]\nname = \"out\"\n"
      "[[pipelines]]\nname = \"p1\"\n[pipelines.trigger]\ntype = \"file\"\nshare = \"in\"\n"
      "glob = \"**/*.csv\"\n[[pipelines.steps]]\ntype = \"filter\"\nwhere = \"a > 1\"\n"
      "[[pipelines.steps]]\ntype = \"aggregate\"\ngroup_by = [\"site\"]\n"
      "metrics = [{ op = \"count\" }, { op = \"p95\", column = \"v\" }]\n"
      "[[pipelines.sinks]]\ntype = \"file\"\nshare = \"out\"\n"
      "[[pipelines]]\nname = \"p2\"\n[pipelines.trigger]\ntype = \"mqtt\"\n"
      "topics = [\"s/+/t\"]\n[[pipelines.sinks]]\ntype = \"mqtt\"\ntopic = \"o/{site}\"\n",
      "t");
  ASSERT_TRUE(c.ok()) << c.status().ToString();
  EXPECT_EQ(c->compute_workers, 3u);
  EXPECT_EQ(c->mqtt.broker, "builtin");
  ASSERT_EQ(c->mqtt.users.size(), 1u);
  ASSERT_EQ(c->pipelines.size(), 2u);
  EXPECT_EQ(c->pipelines[0]["steps"][1]["metrics"][1]["op"], "p95");
  EXPECT_TRUE(CheckComplete(*c).ok());
  // Kept in settings.toml and read back the same.
  auto back = ParseConfig(ManagedSettingsToml(*c), "(settings)");
  ASSERT_TRUE(back.ok()) << back.status().ToString();
  EXPECT_EQ(back->pipelines, c->pipelines);
  // An MQTT pipeline needs a broker.
  Config off = *c;
  off.mqtt.broker = "off";
  EXPECT_NE(CheckComplete(off).message().find("uses MQTT"), std::string::npos);

  ExpectError(
      "[[pipelines]]\nname = \"p\"\n[pipelines.trigger]\ntype = \"file\"\n"
      "share = \"nope\"\n[[pipelines.sinks]]\ntype = \"alert\"\n",
      "pipelines[0]: trigger.share: no share named 'nope'");
  ExpectError(
      "[[pipelines]]\nname = \"p\"\n[pipelines.trigger]\ntype = \"file\"\n"
      "share = \"default\"\n[[pipelines.steps]]\ntype = \"filter\"\nwhere = \"a >\"\n"
      "[[pipelines.sinks]]\ntype = \"alert\"\n",
      "pipelines[0]: steps[0]");
  ExpectError(
      "[[pipelines]]\nname = \"p\"\n[pipelines.trigger]\ntype = \"file\"\n"
      "share = \"default\"\n[[pipelines.sinks]]\ntype = \"alert\"\n"
      "[[pipelines]]\nname = \"p\"\n[pipelines.trigger]\ntype = \"file\"\n"
      "share = \"default\"\n[[pipelines.sinks]]\ntype = \"alert\"\n",
      "'pipelines[1].name' is the name of another pipeline");
  ExpectError("[mqtt]\nbroker = \"cloud\"\n", "'mqtt.broker'");
  ExpectError("[mqtt]\nbroker = \"external\"\nurl = \"http://x\"\n", "'mqtt.url'");
  ExpectError("[mqtt]\n[[mqtt.users]]\nname = \"fieldstack\"\npassword_file = \"/x\"\n",
              "'mqtt.users[0].name'");
  ExpectError("[compute]\nworkers = 0\n", "'compute.workers'");
  ExpectError("[compute]\ngpu_concurrency = 0\n", "'compute.gpu_concurrency'");
  auto gpu = ParseConfig(
      "[compute]\ngpu_concurrency = 1\ngpu_memory_limit_mib = 2048\ninference_threads = 2\n"
      "cuda_provider_dir = \"/opt/ort-cuda\"\ncuda_library_dirs = [\"/opt/cuda/lib\"]\n",
      "t");
  ASSERT_TRUE(gpu.ok()) << gpu.status().ToString();
  EXPECT_EQ(gpu->inference_gpu_concurrency, 1u);
  EXPECT_EQ(gpu->inference_gpu_memory_limit, 2048ull << 20);
  EXPECT_EQ(gpu->inference_threads, 2u);
  EXPECT_EQ(gpu->inference_cuda_provider_dir, "/opt/ort-cuda");
  EXPECT_EQ(gpu->inference_cuda_library_dirs, std::vector<std::string>{"/opt/cuda/lib"});
}

}  // namespace
}  // namespace fieldstack::daemon
