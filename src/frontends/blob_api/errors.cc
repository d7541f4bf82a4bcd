#include "frontends/blob_api/errors.h"

namespace fieldstack::frontends::blob_api {

ApiError ErrorFromStatus(const Status& s, std::string_view not_found_code) {
  const std::string& m = s.message();
  switch (s.code()) {
    case StatusCode::kOk:
      return {200, "", ""};
    case StatusCode::kNotFound:
      return {404, std::string(not_found_code), m};
    case StatusCode::kAlreadyExists:
      return {409, "BlobAlreadyExists", m};
    case StatusCode::kInvalidArgument:
      return {400, "InvalidInput", m};
    case StatusCode::kFailedPrecondition:
      // A folder where the blob would go, or a file where a folder of its name would.
      return {409, "InvalidBlobOrBlock", m};
    case StatusCode::kNoSpace:
    case StatusCode::kResourceExhausted:
      return {507, "InsufficientAccountResources", m};
    case StatusCode::kUnavailable:
      return {503, "ServerBusy", m};
    case StatusCode::kPermissionDenied:
      return {403, "AuthorizationPermissionMismatch", m};
    case StatusCode::kUnauthenticated:
      return {403, "AuthenticationFailed", m};
    case StatusCode::kCorruption:
    case StatusCode::kInternal:
      return {500, "InternalError", m};
  }
  return {500, "InternalError", m};
}

std::string ErrorXml(const ApiError& e, std::string_view request_id, std::string_view time) {
  return "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>" + XmlEscape(e.code) +
         "</Code><Message>" + XmlEscape(e.message) + "\nRequestId:" + std::string(request_id) +
         "\nTime:" + std::string(time) + "</Message></Error>";
}

}  // namespace fieldstack::frontends::blob_api
