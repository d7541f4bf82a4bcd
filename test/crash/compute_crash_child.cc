// The child of the compute crash test: a Store and a compute Engine on DIR with a file pipeline
// and two MQTT pipelines (compute_crash_test.cc describes them).
//
// Usage: compute_crash_child DIR ingest   writes the input files and buffers the messages, then
//                                         exits (never killed; DIR/ingested marks it done)
//        compute_crash_child DIR run      processes until idle, prints "IDLE", exits 0
// Any failure prints "E <message>" and exits 2.

#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "compute/engine.h"
#include "store/store.h"
#include "test/crash/compute_crash_files.h"

using namespace fieldstack;
using namespace fieldstack::compute;
namespace cc = fieldstack::crashtest::compute_crash;

namespace {

[[noreturn]] void Fail(const std::string& msg) {
  std::string l = "E " + msg + "\n";
  (void)!::write(1, l.data(), l.size());
  std::_Exit(2);
}

template <typename T>
T Must(Result<T> r, const char* what) {
  if (!r.ok()) Fail(std::string(what) + ": " + r.status().ToString());
  return std::move(*r);
}

void Must(const Status& s, const char* what) {
  if (!s.ok()) Fail(std::string(what) + ": " + s.ToString());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) Fail("usage: compute_crash_child DIR ingest|run");
  std::string dir = argv[1], phase = argv[2];
  store::StoreOptions so;
  so.data_dir = dir + "/data";
  so.encryption = false;
  auto st = Must(store::Store::Open(so), "open store");
  for (const char* name : {"in", "out"}) {
    if (!st->GetShare(name).ok()) Must(st->CreateShare(name, store::ShareKind::kLocal), "share");
  }
  EngineOptions eo;
  eo.dir = dir + "/compute";
  eo.store = st.get();
  eo.workers = 2;
  eo.poll_ms = 20;
  eo.tick_ms = 20;
  auto engine = Must(Engine::Open(eo), "open engine");
  std::vector<PipelineDecl> decls;
  for (const auto& d : cc::Pipelines()) decls.push_back(Must(ParsePipeline(d), "pipeline"));
  Must(engine->SetPipelines(decls), "set pipelines");

  if (phase == "ingest") {
    auto in = Must(st->GetShare("in"), "share in");
    auto sub = Must(st->Mkdir(in.root, "in", {0755, 0, 0}), "mkdir");
    for (int k = 1; k <= cc::kFiles; ++k) {
      auto h = Must(st->Create(sub.id, cc::InputName(k), {0644, 0, 0}), "create");
      std::string data = cc::InputData(k);
      Must(h->Write(0, {reinterpret_cast<const uint8_t*>(data.data()), data.size()}), "write");
      Must(h->Close(), "close");
    }
    for (int i = 1; i <= cc::kMessages; ++i)
      Must(engine->OnMessage(cc::Topic(i), cc::Message(i)), "message");
    engine.reset();
    int fd = ::open((dir + "/ingested").c_str(), O_CREAT | O_WRONLY, 0644);
    if (fd < 0 || ::fsync(fd) != 0) Fail("marker");
    ::close(fd);
    return 0;
  }
  if (phase != "run") Fail("unknown phase " + phase);
  Must(engine->Start(), "start");
  while (!engine->WaitIdle(1000).ok()) {
  }
  engine->Stop();
  (void)!::write(1, "IDLE\n", 5);
  return 0;
}
