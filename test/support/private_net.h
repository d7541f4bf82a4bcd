#pragma once

// Moves the calling process into a network and mount namespace of its own, for tests of
// servers that need fixed, system-wide resources: rpcbind owns port 111 and its socket in /run.
// Everything the process starts afterwards (rpcbind, ganesha, smbd, clients) shares them.
// Call it first in main(), before any thread exists (unshare(CLONE_NEWNS) requires that).
//
// Inside: loopback is up, with a second address, kOtherClientAddress, that a client reaches
// the server from when it connects to that address (for allow-list tests); /run is an empty
// tmpfs; mounts made here (FUSE) are invisible outside and vanish with the process.

#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace fieldstack::testing {

inline constexpr char kOtherClientAddress[] = "10.77.0.2";

inline void EnterPrivateNetwork() {
  auto die = [](const char* what) {
    std::fprintf(stderr, "EnterPrivateNetwork: %s: %s (the test needs root)\n", what,
                 std::strerror(errno));
    std::exit(1);
  };
  if (::unshare(CLONE_NEWNET | CLONE_NEWNS) != 0) die("unshare");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0)
    die("mount --make-rprivate /");
  if (::mount("tmpfs", "/run", "tmpfs", 0, "mode=0755") != 0) die("mount tmpfs /run");
  std::string cmd =
      std::string("ip link set lo up && ip addr add ") + kOtherClientAddress + "/32 dev lo";
  if (std::system(cmd.c_str()) != 0) die("ip (iproute2)");
}

}  // namespace fieldstack::testing
