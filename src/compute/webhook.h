#pragma once

// The webhook sink's HTTP client (libcurl): POSTs JSON with a 10 s timeout.

#include <memory>
#include <string>

#include "compute/engine.h"

namespace fieldstack::compute {

// `ca_file`: CA bundle for https URLs; empty: the system's.
std::unique_ptr<WebhookClient> MakeCurlWebhookClient(std::string ca_file);

}  // namespace fieldstack::compute
