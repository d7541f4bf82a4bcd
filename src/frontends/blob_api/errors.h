#pragma once

// How the Blob API reports failures: an Azure Storage error (HTTP status, x-ms-error-code and
// the XML body), and the one translation from Store/Objects Status codes to those errors
// (STYLE.md "Errors": one file per front end).
//
// Thread safety: free functions without shared state.

#include <string>
#include <string_view>

#include "common/status.h"
#include "frontends/objects/objects.h"

namespace fieldstack::frontends::blob_api {

struct ApiError {
  int http_status = 500;
  std::string code;  // "BlobNotFound"
  std::string message;
};

// The Azure error for a failed Store or Objects call. `not_found_code` names what was missing
// ("BlobNotFound", "ContainerNotFound").
ApiError ErrorFromStatus(const Status& s, std::string_view not_found_code = "ResourceNotFound");

// <?xml ...?><Error><Code>..</Code><Message>..</Message></Error>; the message ends with the
// request id and time, as Azure's do.
std::string ErrorXml(const ApiError& e, std::string_view request_id, std::string_view time);

// XML text escaping for element content and attribute values.
using objects::XmlEscape;

}  // namespace fieldstack::frontends::blob_api
