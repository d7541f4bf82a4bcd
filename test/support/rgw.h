#pragma once

// Rgw: the S3-compatible server of the tests (docs/s3-test-server.md): Ceph's radosgw from
// Debian, on a throwaway single-node cluster that test/support/rgw/start-rgw brings up in about
// two seconds on free loopback ports. One instance per test process (Shared()), stopped at exit.

#include <cstdlib>
#include <fstream>
#include <string>

namespace fieldstack::testing {

class Rgw {
 public:
  static constexpr char kRegion[] = "us-east-1";

  // The shared instance; endpoint() is empty (and error() says why) if it could not start.
  static Rgw& Shared() {
    static Rgw instance;
    return instance;
  }

  Rgw() {
    char tmpl[] = "/tmp/fs-rgw-XXXXXX";  // short: admin socket paths live below it
    if (::mkdtemp(tmpl) == nullptr) {
      error_ = "mkdtemp failed";
      return;
    }
    dir_ = tmpl;
    std::string cmd = std::string(FS_SOURCE_DIR "/test/support/rgw/start-rgw ") + dir_ +
                      " </dev/null >" + dir_ + ".out 2>&1";
    int rc = std::system(cmd.c_str());
    std::ifstream env(dir_ + "/env");
    std::string line;
    while (std::getline(env, line)) {
      size_t eq = line.find('=');
      if (eq == std::string::npos) continue;
      std::string k = line.substr(0, eq), v = line.substr(eq + 1);
      if (k == "RGW_ENDPOINT") endpoint_ = v;
      if (k == "RGW_ACCESS_KEY") access_key_ = v;
      if (k == "RGW_SECRET_KEY") secret_key_ = v;
    }
    if (rc != 0 || endpoint_.empty()) {
      std::ifstream out(dir_ + ".out");
      error_ = "radosgw did not start (test/support/rgw/start-rgw, exit " + std::to_string(rc) +
               "): " + std::string(std::istreambuf_iterator<char>(out), {});
      endpoint_.clear();
    }
    std::remove((dir_ + ".out").c_str());
  }

  ~Rgw() {
    if (dir_.empty()) return;
    std::string cmd = std::string(FS_SOURCE_DIR "/test/support/rgw/stop-rgw ") + dir_ +
                      " </dev/null >/dev/null 2>&1";
    (void)std::system(cmd.c_str());
  }

  Rgw(const Rgw&) = delete;
  Rgw& operator=(const Rgw&) = delete;

  const std::string& endpoint() const { return endpoint_; }  // http://127.0.0.1:PORT
  const std::string& access_key() const { return access_key_; }
  const std::string& secret_key() const { return secret_key_; }
  const std::string& error() const { return error_; }

 private:
  std::string dir_;
  std::string endpoint_;
  std::string access_key_;
  std::string secret_key_;
  std::string error_;
};

}  // namespace fieldstack::testing
