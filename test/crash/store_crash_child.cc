// The child of the Store crash test: opens the store (recovering from the previous kill), then
// runs random operations on several threads until it is killed, reporting each on stdout
// (crash_ops.h). Usage: store_crash_child DATA_DIR SEED THREADS

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/logging.h"
#include "store/store.h"
#include "test/crash/crash_ops.h"

using namespace fieldstack;
using namespace fieldstack::store;
using fieldstack::crashtest::Op;
using fieldstack::crashtest::Tree;

namespace {

void Emit(const std::string& line) {
  std::string l = line + "\n";
  if (::write(1, l.data(), l.size()) != static_cast<ssize_t>(l.size())) std::_Exit(3);
}

[[noreturn]] void Fail(int k, const std::string& msg) {
  Emit("E " + std::to_string(k) + " " + msg);
  std::_Exit(2);
}

// Reads the thread's directory into a Tree (what this run starts from).
Tree Load(Store& store, NodeId dir, const std::string& prefix, int k) {
  Tree t;
  auto page = store.ReadDir(dir, "", 100000);
  if (!page.ok()) Fail(k, page.status().ToString());
  for (const Attr& a : *page) {
    std::string path = prefix.empty() ? a.name : prefix + "/" + a.name;
    if (a.type == NodeType::kDirectory) {
      t[path] = {true, {}};
      for (auto& [p, e] : Load(store, a.id, path, k)) t[p] = e;
    } else {
      t[path] = {false, std::vector<uint8_t>(a.size)};
    }
  }
  return t;
}

Status Run(Store& store, NodeId root, const Op& op) {
  auto split = [&](const std::string& p) -> Result<std::pair<NodeId, std::string>> {
    auto slash = p.rfind('/');
    if (slash == std::string::npos) return std::make_pair(root, p);
    FS_ASSIGN_OR_RETURN(Attr d, store.Lookup(root, p.substr(0, slash)));
    return std::make_pair(d.id, p.substr(slash + 1));
  };
  FS_ASSIGN_OR_RETURN(auto loc, split(op.path));
  auto [parent, name] = loc;
  switch (op.kind) {
    case 'C': {
      FS_ASSIGN_OR_RETURN(auto h, store.Create(parent, name, {}));
      FS_RETURN_IF_ERROR(h->Write(0, crashtest::Content(op.b, op.a)));
      return h->Close();
    }
    case 'W':
    case 'S': {
      FS_ASSIGN_OR_RETURN(Attr a, store.Lookup(parent, name));
      FS_ASSIGN_OR_RETURN(auto h, store.OpenFile(a.id, true));
      FS_RETURN_IF_ERROR(h->Write(op.a, crashtest::Content(op.c, op.b)));
      if (op.kind == 'S') {
        FS_RETURN_IF_ERROR(h->Sync());
        FS_RETURN_IF_ERROR(h->Write(op.d, crashtest::Content(op.f, op.e)));
      }
      return h->Close();
    }
    case 'T': {
      FS_ASSIGN_OR_RETURN(Attr a, store.Lookup(parent, name));
      SetAttrRequest r;
      r.size = op.a;
      return store.SetAttr(a.id, r).status();
    }
    case 'R': {
      FS_ASSIGN_OR_RETURN(auto to, split(op.path2));
      return store.Rename(parent, name, to.first, to.second);
    }
    case 'U':
      return store.Unlink(parent, name);
    case 'M':
      return store.Mkdir(parent, name, {0755}).status();
  }
  return InvalidArgumentError("unknown op");
}

Op Choose(std::mt19937_64& rng, const Tree& t) {
  auto r = [&](uint64_t n) { return rng() % n; };
  std::vector<std::string> files, dirs = {""};
  for (auto& [p, e] : t) (e.dir ? dirs : files).push_back(p);
  auto fresh_name = [&]() {
    std::string d = dirs[r(dirs.size())];
    std::string n = "f" + std::to_string(r(6));
    return d.empty() ? n : d + "/" + n;
  };
  constexpr uint64_t kMaxLen = 80000;
  for (;;) {
    Op op;
    uint64_t pick = r(100);
    if (pick < 25) {
      op = {'C', fresh_name()};
      if (t.count(op.path)) continue;
      op.a = r(kMaxLen);
      op.b = rng();
    } else if (pick < 70 && !files.empty()) {
      op.path = files[r(files.size())];
      uint64_t size = t.at(op.path).data.size();
      if (pick < 45) {
        op.kind = 'W';
        op.a = r(size + 20000);
        op.b = 1 + r(40000);
        op.c = rng();
      } else if (pick < 55) {
        op.kind = 'S';
        op.a = r(size + 20000);
        op.b = 1 + r(40000);
        op.c = rng();
        op.d = r(size + 40000);
        op.e = 1 + r(40000);
        op.f = rng();
      } else {
        op.kind = 'T';
        op.a = r(kMaxLen);
      }
    } else if (pick < 82 && !files.empty()) {
      op = {'R', files[r(files.size())]};
      op.path2 = fresh_name();
      if (op.path2 == op.path || (t.count(op.path2) && t.at(op.path2).dir)) continue;
    } else if (pick < 92 && !files.empty()) {
      op = {'U', files[r(files.size())]};
    } else {
      op = {'M', "d" + std::to_string(r(2))};
      if (t.count(op.path)) continue;
    }
    return op;
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: store_crash_child DATA_DIR SEED THREADS\n");
    return 1;
  }
  // stdout carries the report to the parent: logs go to stderr.
  if (!ConfigureLogging(LogFormat::kText, "warn").ok()) return 1;
  StoreOptions o;
  o.data_dir = argv[1];
  o.chunk_size_bytes = 16 * 1024;
  uint64_t seed = std::strtoull(argv[2], nullptr, 10);
  int threads = std::atoi(argv[3]);
  auto opened = Store::Open(o);
  if (!opened.ok()) Fail(-1, opened.status().ToString());
  Store& store = **opened;
  auto share = store.GetShare("crash");
  if (!share.ok()) share = store.CreateShare("crash", ShareKind::kCloud);
  if (!share.ok()) Fail(-1, share.status().ToString());
  std::vector<NodeId> roots;
  for (int k = 0; k < threads; ++k) {
    std::string name = "t" + std::to_string(k);
    auto d = store.Lookup(share->root, name);
    if (!d.ok()) d = store.Mkdir(share->root, name, {0755});
    if (!d.ok()) Fail(k, d.status().ToString());
    roots.push_back(d->id);
  }
  Emit("READY");
  std::vector<std::thread> pool;
  for (int k = 0; k < threads; ++k) {
    pool.emplace_back([&, k] {
      std::mt19937_64 rng(seed * 1000 + k);
      Tree t = Load(store, roots[k], "", k);
      for (int i = 0; i < 100000; ++i) {
        Op op = Choose(rng, t);
        Emit("B " + std::to_string(k) + " " + op.Format());
        Status s = Run(store, roots[k], op);
        if (!s.ok()) Fail(k, op.Format() + ": " + s.ToString());
        Emit("A " + std::to_string(k));
        // The child tracks only names and sizes; contents are the parent's business.
        Tree next = crashtest::Outcomes(t, op).back();
        t = std::move(next);
      }
    });
  }
  for (auto& th : pool) th.join();
  return 0;
}
