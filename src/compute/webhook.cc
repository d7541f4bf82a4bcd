#include "compute/webhook.h"

#include <curl/curl.h>

#include <mutex>

namespace fieldstack::compute {
namespace {

size_t KeepTail(char* data, size_t size, size_t n, void* user) {
  auto* s = static_cast<std::string*>(user);
  if (s->size() < 512) s->append(data, std::min(size * n, 512 - s->size()));
  return size * n;
}

class CurlWebhookClient final : public WebhookClient {
 public:
  explicit CurlWebhookClient(std::string ca_file) : ca_file_(std::move(ca_file)) {
    static std::once_flag once;
    std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  }

  Status Post(const std::string& url, const std::string& body) override {
    CURL* h = curl_easy_init();
    if (h == nullptr) return InternalError("curl_easy_init failed");
    curl_slist* headers = nullptr;
    headers = curl_slist_append(headers, "Content-Type: application/json");
    headers = curl_slist_append(headers, "Expect:");
    std::string reply;
    curl_easy_setopt(h, CURLOPT_URL, url.c_str());
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(body.size()));
    curl_easy_setopt(h, CURLOPT_USERAGENT, "fieldstack-compute");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, 10000L);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, KeepTail);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &reply);
    if (!ca_file_.empty()) curl_easy_setopt(h, CURLOPT_CAINFO, ca_file_.c_str());
    CURLcode rc = curl_easy_perform(h);
    long code = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
    curl_slist_free_all(headers);
    curl_easy_cleanup(h);
    // The URL may carry a token in its query: name only the host part in errors.
    std::string where = url.substr(0, url.find_first_of("?#"));
    if (rc != CURLE_OK) return UnavailableError("webhook " + where + ": " + curl_easy_strerror(rc));
    if (code < 200 || code >= 300)
      return UnavailableError("webhook " + where + " answered " + std::to_string(code));
    return Status::Ok();
  }

 private:
  std::string ca_file_;
};

}  // namespace

std::unique_ptr<WebhookClient> MakeCurlWebhookClient(std::string ca_file) {
  return std::make_unique<CurlWebhookClient>(std::move(ca_file));
}

}  // namespace fieldstack::compute
