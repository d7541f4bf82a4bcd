#pragma once

// Operations of the Store crash test, shared by the child (which runs them) and the parent
// (which checks what survived). Each thread of the child works in its own directory "t<k>" of
// share "crash", so every thread's subtree can be checked on its own.
//
// Wire format, one line per record on the child's stdout:
//   B <thread> <op>   an operation starts
//   A <thread>        it returned OK (acknowledged, so it must survive)
//   E <thread> <msg>  it failed (the test fails)
// An operation is one of
//   C <path> <len> <seed>                       create, write, close
//   W <path> <off> <len> <seed>                 open, write, close
//   S <path> <off> <len> <seed> <off2> <len2> <seed2>   write, sync, write, close
//   T <path> <size>                             truncate
//   R <from> <to>                               rename a file (may replace a file)
//   U <path>                                    unlink
//   M <path>                                    mkdir

#include <cstdint>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace fieldstack::crashtest {

struct Entry {
  bool dir = false;
  std::vector<uint8_t> data;
  bool operator==(const Entry&) const = default;
};
using Tree = std::map<std::string, Entry>;  // thread-relative path -> entry

inline std::vector<uint8_t> Content(uint64_t seed, uint64_t len) {
  std::vector<uint8_t> v(len);
  uint64_t x = seed * 0x9E3779B97F4A7C15ull + 1;
  for (auto& b : v) {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    b = static_cast<uint8_t>(x);
  }
  return v;
}

struct Op {
  char kind = 0;
  std::string path, path2;
  uint64_t a = 0, b = 0, c = 0, d = 0, e = 0, f = 0;

  std::string Format() const {
    std::ostringstream o;
    o << kind << ' ' << path;
    switch (kind) {
      case 'C':
        o << ' ' << a << ' ' << b;
        break;
      case 'W':
        o << ' ' << a << ' ' << b << ' ' << c;
        break;
      case 'S':
        o << ' ' << a << ' ' << b << ' ' << c << ' ' << d << ' ' << e << ' ' << f;
        break;
      case 'T':
        o << ' ' << a;
        break;
      case 'R':
        o << ' ' << path2;
        break;
      default:
        break;
    }
    return o.str();
  }

  static Op Parse(const std::string& s) {
    std::istringstream in(s);
    Op op;
    in >> op.kind >> op.path;
    switch (op.kind) {
      case 'C':
        in >> op.a >> op.b;
        break;
      case 'W':
        in >> op.a >> op.b >> op.c;
        break;
      case 'S':
        in >> op.a >> op.b >> op.c >> op.d >> op.e >> op.f;
        break;
      case 'T':
        in >> op.a;
        break;
      case 'R':
        in >> op.path2;
        break;
      default:
        break;
    }
    return op;
  }
};

inline void WriteAt(std::vector<uint8_t>& data, uint64_t off, const std::vector<uint8_t>& bytes) {
  if (data.size() < off + bytes.size()) data.resize(off + bytes.size(), 0);
  std::copy(bytes.begin(), bytes.end(), data.begin() + off);
}

// The states a thread's tree may be in after `op` started on `pre`: first the state before it,
// last the state after it, and between them any state a crash part-way may leave.
inline std::vector<Tree> Outcomes(const Tree& pre, const Op& op) {
  std::vector<Tree> out = {pre};
  Tree t = pre;
  switch (op.kind) {
    case 'C':
      t[op.path] = Entry{};
      out.push_back(t);
      t[op.path].data = Content(op.b, op.a);
      break;
    case 'W':
      WriteAt(t[op.path].data, op.a, Content(op.c, op.b));
      break;
    case 'S':
      WriteAt(t[op.path].data, op.a, Content(op.c, op.b));
      out.push_back(t);
      WriteAt(t[op.path].data, op.d, Content(op.f, op.e));
      break;
    case 'T':
      t[op.path].data.resize(op.a, 0);
      break;
    case 'R': {
      Entry e = t[op.path];
      t.erase(op.path);
      t[op.path2] = e;
      break;
    }
    case 'U':
      t.erase(op.path);
      break;
    case 'M':
      t[op.path] = Entry{true, {}};
      break;
  }
  out.push_back(t);
  return out;
}

}  // namespace fieldstack::crashtest
