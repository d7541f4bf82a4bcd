// The child of the upload crash test: opens the Store (recovering from the last kill) and runs
// the Uploader against Azure (Azurite) until the queue is empty, then prints DONE and waits to
// be killed. Usage: upload_crash_child DATA_DIR AZURE_ENDPOINT CONTAINER

#include <unistd.h>

#include <cstdio>
#include <thread>

#include "cloud/azure_blob/azure_blob_store.h"
#include "common/logging.h"
#include "store/store.h"
#include "sync/uploader.h"

using namespace fieldstack;

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: upload_crash_child DATA_DIR ENDPOINT CONTAINER\n");
    return 1;
  }
  (void)ConfigureLogging(LogFormat::kText, "warn");
  auto store = store::Store::Open({.data_dir = argv[1]});
  if (!store.ok()) {
    std::fprintf(stderr, "open: %s\n", store.status().ToString().c_str());
    return 2;
  }
  auto azure = cloud::azure_blob::AzureBlobStore::Open(
      {argv[2], "devstoreaccount1",
       "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==",
       "", argv[3]},
      RealClock::Get());
  if (!azure.ok()) return 3;
  sync::Uploader::Options opts;
  opts.part_size_bytes = 128 * 1024;
  opts.batch = 4;
  opts.backoff_base = std::chrono::milliseconds(10);
  opts.backoff_max = std::chrono::milliseconds(50);
  opts.mirror = [](uint32_t) { return true; };  // renames and deletes reach the cloud too
  sync::Uploader up(
      **store, [&](uint32_t) -> cloud::ObjectStore* { return azure->get(); }, RealClock::Get(),
      opts);
  for (;;) {
    auto pass = up.RunOnce();
    if (!pass.ok()) {
      std::fprintf(stderr, "pass: %s\n", pass.status().ToString().c_str());
      return 4;
    }
    auto pending = (*store)->PendingUploads();
    if (pending.ok() && *pending == 0 && pass->uploaded == 0 && pass->deleted == 0) {
      std::printf("DONE\n");
      std::fflush(stdout);
      ::pause();
    }
    if (pass->uploaded == 0) std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
}
