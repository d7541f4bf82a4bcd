#pragma once

// The one place where Store errors become errno values for the file-share front ends (FUSE,
// and through it SMB and NFS).

#include "common/status.h"

namespace fieldstack::frontends::fuse {

// 0 for OK; otherwise a positive errno.
int ToErrno(const Status& s);

}  // namespace fieldstack::frontends::fuse
