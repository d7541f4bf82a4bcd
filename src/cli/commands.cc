#include "cli/commands.h"

#include <signal.h>
#include <termios.h>
#include <toml++/toml.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "cli/client.h"
#include "common/status.h"
#include "platform/file.h"

namespace fieldstack::cli {
namespace {

using nlohmann::json;

constexpr char kDefaultServer[] = "https://127.0.0.1:8480";
constexpr char kExitCodes[] =
    "Exit codes: 0 success; 1 the box failed or cannot be reached (5xx, network, TLS);\n"
    "2 bad usage or input refused (400, 404, 409, 413, 422); 3 not signed in or not allowed\n"
    "(401, 403, 429); 4 a job finished failed or cancelled.";

// ---- errors ----

// How a command ends early: the message is printed already. Thrown only inside this file and
// caught by RunClientCommand.
struct ExitCode {
  int code;
};

[[noreturn]] void Die(int code, const std::string& message) {
  std::fprintf(stderr, "fieldstack: %s\n", message.c_str());
  throw ExitCode{code};
}

int ExitCodeOfHttp(long status) {
  if (status >= 200 && status < 300) return 0;
  if (status == 401 || status == 403 || status == 429) return 3;
  if (status >= 400 && status < 500) return 2;
  return 1;
}

int ExitCodeOfStatus(const Status& s) {
  switch (s.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
      return 2;
    default:
      return 1;
  }
}

// ---- formatting ----

std::string HumanBytes(double bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  if (bytes < 0) bytes = 0;
  int unit = 0;
  while (bytes >= 1024 && unit < 5) {
    bytes /= 1024;
    ++unit;
  }
  char buf[32];
  if (unit == 0) {
    std::snprintf(buf, sizeof buf, "%.0f B", bytes);
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", bytes, kUnits[unit]);
  }
  return buf;
}

std::string HumanDuration(double seconds) {
  auto s = static_cast<int64_t>(seconds < 0 ? 0 : seconds);
  char buf[48];
  if (s < 60) {
    std::snprintf(buf, sizeof buf, "%llds", static_cast<long long>(s));
  } else if (s < 3600) {
    std::snprintf(buf, sizeof buf, "%lldm %02llds", static_cast<long long>(s / 60),
                  static_cast<long long>(s % 60));
  } else if (s < 86400) {
    std::snprintf(buf, sizeof buf, "%lldh %02lldm", static_cast<long long>(s / 3600),
                  static_cast<long long>(s % 3600 / 60));
  } else {
    std::snprintf(buf, sizeof buf, "%lldd %02lldh", static_cast<long long>(s / 86400),
                  static_cast<long long>(s % 86400 / 3600));
  }
  return buf;
}

// "2024-05-01T10:00:00Z" (or with fractions) -> "2024-05-01 10:00:00"; times stay UTC.
std::string HumanTime(const std::string& iso) {
  if (iso.size() < 19 || iso[10] != 'T') return iso;
  return iso.substr(0, 10) + " " + iso.substr(11, 8);
}

std::string NumberText(const json& v) {
  if (v.is_number_integer() || v.is_number_unsigned()) return v.dump();
  double d = v.get<double>();
  if (std::fabs(d - std::round(d)) < 1e-9 && std::fabs(d) < 1e15) {
    return std::to_string(static_cast<long long>(std::llround(d)));
  }
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.2f", d);
  return buf;
}

// Any JSON value as table text: strings as they are, null as "-", booleans as yes/no, arrays
// joined with ", ".
std::string Text(const json& v) {
  if (v.is_null()) return "-";
  if (v.is_string()) {
    std::string s = v.get<std::string>();
    return s.empty() ? "-" : s;
  }
  if (v.is_boolean()) return v.get<bool>() ? "yes" : "no";
  if (v.is_number()) return NumberText(v);
  if (v.is_array()) {
    std::string out;
    for (const auto& e : v) out += (out.empty() ? "" : ", ") + Text(e);
    return out.empty() ? "-" : out;
  }
  return v.dump();
}

const json& Field(const json& j, const char* key) {
  static const json kNull;
  if (!j.is_object()) return kNull;
  auto it = j.find(key);
  return it == j.end() ? kNull : *it;
}
std::string Text(const json& j, const char* key) { return Text(Field(j, key)); }
double Num(const json& j, const char* key) {
  const json& v = Field(j, key);
  return v.is_number() ? v.get<double>() : 0;
}
std::string Size(const json& j, const char* key) {
  return Field(j, key).is_number() ? HumanBytes(Num(j, key)) : "-";
}
std::string Time(const json& j, const char* key) {
  const json& v = Field(j, key);
  return v.is_string() ? HumanTime(v.get<std::string>()) : "-";
}

// Rows of aligned columns under a header row; two spaces between columns, no trailing blanks.
// Thread safety: none needed (one command, the main thread); owns its rows.
class Table {
 public:
  explicit Table(std::vector<std::string> header) { rows_.push_back(std::move(header)); }
  void Add(std::vector<std::string> row) {
    for (auto& cell : row) {
      for (char& c : cell) {
        if (c == '\n' || c == '\t' || c == '\r') c = ' ';
      }
    }
    rows_.push_back(std::move(row));
  }
  void Print() const {
    std::vector<size_t> width;
    for (const auto& r : rows_) {
      if (width.size() < r.size()) width.resize(r.size(), 0);
      for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], Width(r[i]));
    }
    for (const auto& r : rows_) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i) {
        line += r[i];
        if (i + 1 < r.size()) line += std::string(width[i] - Width(r[i]) + 2, ' ');
      }
      while (!line.empty() && line.back() == ' ') line.pop_back();
      std::printf("%s\n", line.c_str());
    }
  }

 private:
  // Display width: UTF-8 code points (continuation bytes do not count).
  static size_t Width(const std::string& s) {
    size_t n = 0;
    for (unsigned char c : s) n += (c & 0xc0) != 0x80;
    return n;
  }
  std::vector<std::vector<std::string>> rows_;
};

// "Label:  value" lines, the values aligned. Thread safety: as Table.
class Fields {
 public:
  void Add(std::string label, std::string value) {
    rows_.emplace_back(std::move(label), std::move(value));
  }
  void Print() const {
    size_t width = 0;
    for (const auto& [l, v] : rows_) width = std::max(width, l.size());
    for (const auto& [l, v] : rows_) {
      std::printf("%s:%s%s\n", l.c_str(), std::string(width - l.size() + 2, ' ').c_str(),
                  v.c_str());
    }
  }

 private:
  std::vector<std::pair<std::string, std::string>> rows_;
};

std::string Label(const std::string& key) {
  std::string out = key;
  for (const char* unit : {"_bytes_per_second", "_bytes", "_unix", "_s", "_ms"}) {
    if (out.size() > std::strlen(unit) && out.ends_with(unit)) {
      out.resize(out.size() - std::strlen(unit));
      if (std::strcmp(unit, "_s") == 0) out += " (s)";
      if (std::strcmp(unit, "_ms") == 0) out += " (ms)";
      break;
    }
  }
  for (char& c : out) {
    if (c == '_') c = ' ';
  }
  if (!out.empty()) out[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(out[0])));
  return out;
}

// A JSON object as Fields: nested objects flattened ("Capacity used"), sizes and times made
// human by their key's unit.
void AddObject(Fields& f, const json& j, const std::string& prefix = "") {
  if (!j.is_object()) return;
  for (const auto& [key, v] : j.items()) {
    std::string label = prefix.empty() ? Label(key) : prefix + " " + Label(key);
    if (!prefix.empty())
      label[prefix.size() + 1] =
          static_cast<char>(std::tolower(static_cast<unsigned char>(label[prefix.size() + 1])));
    if (v.is_object()) {
      AddObject(f, v, label);
    } else if (v.is_array() && !v.empty() && v[0].is_object()) {
      f.Add(label, std::to_string(v.size()) + " entries (--output json shows them)");
    } else if (v.is_number() && key.ends_with("_bytes_per_second")) {
      f.Add(label, HumanBytes(v.get<double>()) + "/s");
    } else if (v.is_number() && key.ends_with("_bytes")) {
      f.Add(label, HumanBytes(v.get<double>()));
    } else if (v.is_string() && v.get<std::string>().size() >= 20 &&
               v.get<std::string>()[10] == 'T' && v.get<std::string>().back() == 'Z') {
      f.Add(label, HumanTime(v.get<std::string>()));
    } else {
      f.Add(label, Text(v));
    }
  }
}

void PrintJson(const json& j) {
  std::printf("%s\n", j.dump(2, ' ', false, json::error_handler_t::replace).c_str());
}

// ---- secrets and files ----

std::string Trimmed(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t start = 0;
  while (start < s.size() && std::isspace(static_cast<unsigned char>(s[start]))) ++start;
  return s.substr(start);
}

std::string ReadFileOrDie(const std::string& path, const std::string& what) {
  auto text = platform::ReadFileToString(path);
  if (!text.ok()) Die(2, what + ": " + text.status().message());
  return *text;
}

// The first line of a secret file (a password, key or token), without the line end.
std::string ReadSecretFile(const std::string& path, const std::string& what) {
  std::string text = ReadFileOrDie(path, what);
  std::string line = text.substr(0, text.find('\n'));
  if (!line.empty() && line.back() == '\r') line.pop_back();
  if (line.empty()) Die(2, what + ": " + path + " is empty");
  return line;
}

// One line of stdin; on a terminal after `prompt` on stderr, without echo.
std::optional<std::string> ReadStdinLine(const std::string& prompt) {
  bool tty = ::isatty(STDIN_FILENO) == 1;
  termios old{};
  if (tty) {
    std::fprintf(stderr, "%s", prompt.c_str());
    std::fflush(stderr);
    if (::tcgetattr(STDIN_FILENO, &old) == 0) {
      termios quiet = old;
      quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
      ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
    }
  }
  std::string line;
  bool got = static_cast<bool>(std::getline(std::cin, line));
  if (tty) {
    ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
    std::fprintf(stderr, "\n");
  }
  if (!got) return std::nullopt;
  if (!line.empty() && line.back() == '\r') line.pop_back();
  return line;
}

// A password from `file`, else $`env`, else stdin (asked twice on a terminal when `confirm`).
std::string ReadPassword(const std::string& file, const char* flag, const char* env,
                         const std::string& prompt, bool confirm) {
  if (!file.empty()) return ReadSecretFile(file, "password file");
  if (const char* v = std::getenv(env); v != nullptr && *v != '\0') return v;
  auto line = ReadStdinLine(prompt);
  if (!line || line->empty()) {
    Die(2, "no password: give " + std::string(flag) + " FILE, set " + std::string(env) +
               ", or type it on stdin");
  }
  if (confirm && ::isatty(STDIN_FILENO) == 1) {
    auto again = ReadStdinLine("Again: ");
    if (!again || *again != *line) Die(2, "the passwords do not match");
  }
  return *line;
}

std::string Base64(const std::string& in) {
  static const char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t n = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8) |
                 static_cast<uint8_t>(in[i + 2]);
    for (int k = 3; k >= 0; --k) out += kAlphabet[(n >> (6 * k)) & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t n = static_cast<uint8_t>(in[i]) << 16;
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t n = (static_cast<uint8_t>(in[i]) << 16) | (static_cast<uint8_t>(in[i + 1]) << 8);
    out += kAlphabet[(n >> 18) & 63];
    out += kAlphabet[(n >> 12) & 63];
    out += kAlphabet[(n >> 6) & 63];
    out += '=';
  }
  return out;
}

// "90d", "12h", "30m", "45s" or plain seconds; nullopt otherwise.
std::optional<int64_t> ParseDurationSeconds(const std::string& text) {
  if (text.empty()) return std::nullopt;
  size_t digits = text.find_first_not_of("0123456789");
  if (digits == 0 || text.size() > 12) return std::nullopt;
  int64_t n = std::stoll(text.substr(0, digits));
  if (digits == std::string::npos) return n;
  std::string unit = text.substr(digits);
  if (unit == "s") return n;
  if (unit == "m") return n * 60;
  if (unit == "h") return n * 3600;
  if (unit == "d") return n * 86400;
  if (unit == "w") return n * 7 * 86400;
  return std::nullopt;
}

// ---- saved login ----

struct SavedLogin {
  std::string server;
  std::string token;
  std::string cacert;
  bool insecure = false;
};

std::string SavedLoginPath() {
  if (const char* p = std::getenv("FIELDSTACK_CLI_CONFIG"); p != nullptr && *p != '\0') return p;
  const char* home = std::getenv("HOME");
  if (home == nullptr || *home == '\0') return "";
  return std::string(home) + "/.config/fieldstack/cli.json";
}

SavedLogin LoadSavedLogin() {
  SavedLogin s;
  std::string path = SavedLoginPath();
  if (path.empty() || !platform::PathExists(path)) return s;
  auto text = platform::ReadFileToString(path);
  json j = text.ok() ? json::parse(*text, nullptr, false) : json();
  if (!j.is_object()) {
    std::fprintf(stderr, "fieldstack: warning: ignoring %s: not a JSON object\n", path.c_str());
    return s;
  }
  auto str = [&](const char* k) {
    return j.contains(k) && j[k].is_string() ? j[k].get<std::string>() : std::string();
  };
  s.server = str("server");
  s.token = str("token");
  s.cacert = str("cacert");
  s.insecure = j.contains("insecure") && j["insecure"].is_boolean() && j["insecure"].get<bool>();
  return s;
}

void StoreSavedLogin(const SavedLogin& s) {
  std::string path = SavedLoginPath();
  if (path.empty()) Die(1, "cannot save the login: set HOME or FIELDSTACK_CLI_CONFIG");
  std::string dir = platform::DirName(path);
  if (!dir.empty()) {
    if (Status st = platform::MakeDirs(dir, 0700); !st.ok()) {
      Die(1, "cannot save the login: " + st.message());
    }
  }
  json j = {
      {"server", s.server}, {"token", s.token}, {"cacert", s.cacert}, {"insecure", s.insecure}};
  if (Status st = platform::WriteFileAtomic(path, j.dump(2) + "\n", 0600); !st.ok()) {
    Die(1, "cannot save the login: " + st.message());
  }
}

// ---- global options and the session of one command ----

struct GlobalOptions {
  std::string server;
  std::string cacert;
  std::string token;
  std::string output = "table";
  bool insecure = false;
};
GlobalOptions g_options;

// One command's connection: the client, where it came from, and how to print. Errors end the
// command: Call and Fail print the API's message and throw ExitCode.
// Thread safety: the main thread only; owns its ApiClient.
class Session {
 public:
  Session(ClientOptions options, SavedLogin saved, bool json_output)
      : client_(std::move(options)), saved_(std::move(saved)), json_(json_output) {}

  ApiClient& client() { return client_; }
  const std::string& server() const { return client_.options().server; }
  const SavedLogin& saved() const { return saved_; }
  bool json() const { return json_; }
  // Whether a 401 should suggest `fieldstack login` (not for login itself).
  bool login_hint = true;

  // The reply of a call, whatever its status; dies when the box cannot be reached.
  ApiReply Raw(std::string_view method, const std::string& path, const nlohmann::json& body,
               const Query& query = {}) {
    auto r = client_.Send(method, path, body, query);
    if (!r.ok()) Die(ExitCodeOfStatus(r.status()), r.status().message());
    return std::move(*r);
  }
  // The body of a successful call; otherwise prints the API's message and exits.
  nlohmann::json Call(std::string_view method, const std::string& path,
                      const nlohmann::json& body = nullptr, const Query& query = {}) {
    ApiReply r = Raw(method, path, body, query);
    if (!r.ok()) Fail(r);
    return r.body;
  }
  nlohmann::json Get(const std::string& path, const Query& query = {}) {
    return Call("GET", path, nullptr, query);
  }

  [[noreturn]] void Fail(const ApiReply& r) {
    std::fprintf(stderr, "fieldstack: %s\n", r.ErrorMessage().c_str());
    if (r.status == 401 && login_hint) {
      std::fprintf(stderr, "fieldstack: sign in with: fieldstack login --server %s\n",
                   server().c_str());
    }
    throw ExitCode{ExitCodeOfHttp(r.status)};
  }

  // Prints `j` in json mode; otherwise runs `table`.
  void Show(const nlohmann::json& j, const std::function<void()>& table) {
    if (json_) {
      PrintJson(j);
    } else {
      table();
    }
  }
  // For calls without a body (204): a line in table mode, nothing in json mode.
  void Done(const std::string& line) {
    if (!json_) std::printf("%s\n", line.c_str());
  }

 private:
  ApiClient client_;
  SavedLogin saved_;
  bool json_;
};

// ---- registration ----

using Action = std::function<int(Session&)>;
struct Command {
  CLI::App* app;
  Action run;
  bool login_hint;
};
std::vector<Command>& Commands() {
  static std::vector<Command> commands;
  return commands;
}

void AddGlobalOptions(CLI::App& c) {
  const char* group = "Global options";
  c.add_option("--server", g_options.server,
               "the box's API URL (default: the saved login's, $FIELDSTACK_SERVER, or " +
                   std::string(kDefaultServer) + ")")
      ->type_name("URL")
      ->group(group);
  c.add_option("--cacert", g_options.cacert,
               "PEM file of the box's certificate or its CA (default: $FIELDSTACK_CACERT, the "
               "saved login's); the box makes <data_dir>/tls/box.crt")
      ->type_name("FILE")
      ->group(group);
  c.add_flag("--insecure", g_options.insecure,
             "do not check the box's certificate (prints a warning)")
      ->group(group);
  c.add_option("--token", g_options.token,
               "bearer token (default: $FIELDSTACK_TOKEN, else the saved login's)")
      ->type_name("TOKEN")
      ->group(group);
  c.add_option("--output,-o", g_options.output, "table (default) or json (the API's JSON)")
      ->type_name("FORMAT")
      ->check(CLI::IsMember({"table", "json"}))
      ->group(group);
}

// A client command `name` under `parent`, with help, an example and the global options.
CLI::App* Leaf(CLI::App& parent, const std::string& name, const std::string& what,
               const std::string& example, Action run, bool login_hint = true) {
  CLI::App* c = parent.add_subcommand(name, what);
  c->footer("Example:\n  " + example + "\n\n" + kExitCodes);
  AddGlobalOptions(*c);
  Commands().push_back({c, std::move(run), login_hint});
  return c;
}

CLI::App* Noun(CLI::App& app, const std::string& name, const std::string& what) {
  CLI::App* c = app.add_subcommand(name, what);
  c->require_subcommand(1);
  c->footer(kExitCodes);
  return c;
}

// ---- jobs ----

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void OnInterrupt(int) {
  if (g_interrupted) std::signal(SIGINT, SIG_DFL);  // a second Ctrl-C ends the command
  g_interrupted = 1;
}

bool Finished(const std::string& state) {
  return state == "succeeded" || state == "failed" || state == "cancelled";
}

// Polls the job every 0.5 s until it finishes, with progress on stderr when it is a terminal;
// Ctrl-C asks the box to cancel it. Returns the finished job.
json WaitJob(Session& s, const std::string& id) {
  bool tty = ::isatty(STDERR_FILENO) == 1;
  g_interrupted = 0;
  struct sigaction act {
  }, old{};
  act.sa_handler = OnInterrupt;
  sigemptyset(&act.sa_mask);
  ::sigaction(SIGINT, &act, &old);
  bool cancel_sent = false;
  size_t shown = 0;
  auto clear = [&] {
    if (tty && shown > 0) std::fprintf(stderr, "\r%s\r", std::string(shown, ' ').c_str());
    shown = 0;
  };
  json job;
  for (;;) {
    job = s.Get("/api/v1/jobs/" + EscapeSegment(id));
    std::string state = Text(job, "state");
    if (Finished(state)) break;
    if (g_interrupted && !cancel_sent) {
      clear();
      std::fprintf(stderr, "fieldstack: cancelling job %s (Ctrl-C again to stop waiting)\n",
                   id.c_str());
      ApiReply r = s.Raw("POST", "/api/v1/jobs/" + EscapeSegment(id) + "/cancel", nullptr);
      if (!r.ok() && r.status != 409) s.Fail(r);
      cancel_sent = true;
    }
    if (tty) {
      char line[200];
      std::snprintf(line, sizeof line, "[%3d%%] %s: %s",
                    static_cast<int>(Num(job, "progress") * 100), Text(job, "kind").c_str(),
                    Text(job, "message").c_str());
      std::string text = line;
      if (text.size() > 78) text.resize(78);
      std::string pad = shown > text.size() ? std::string(shown - text.size(), ' ') : "";
      std::fprintf(stderr, "\r%s%s", text.c_str(), pad.c_str());
      std::fflush(stderr);
      shown = text.size() + pad.size();
    }
    for (int i = 0; i < 10 && !(g_interrupted && !cancel_sent); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  clear();
  ::sigaction(SIGINT, &old, nullptr);
  return job;
}

// 0 for a succeeded job; prints why and returns 4 otherwise.
int JobExit(const json& job) {
  std::string state = Text(job, "state");
  if (state == "succeeded") return 0;
  std::string what = "job " + Text(job, "id") + " (" + Text(job, "kind") + ")";
  if (state == "cancelled") {
    std::fprintf(stderr, "fieldstack: %s was cancelled\n", what.c_str());
  } else {
    std::fprintf(stderr, "fieldstack: %s failed: %s\n", what.c_str(), Text(job, "error").c_str());
  }
  return 4;
}

void JobFields(Fields& f, const json& j) {
  f.Add("Job", Text(j, "id"));
  f.Add("Kind", Text(j, "kind"));
  f.Add("State", Text(j, "state"));
  f.Add("Progress", std::to_string(static_cast<int>(Num(j, "progress") * 100)) + "%");
  f.Add("Message", Text(j, "message"));
  if (!Text(j, "error").empty() && Text(j, "error") != "-") f.Add("Error", Text(j, "error"));
  f.Add("Created by", Text(j, "created_by"));
  f.Add("Created", Time(j, "created"));
  f.Add("Started", Time(j, "started"));
  f.Add("Finished", Time(j, "finished"));
}

// ---- sign-in ----

void AddSignInCommands(CLI::App& app) {
  {
    struct Opts {
      std::string code, user = "admin", password_file;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(
        app, "setup", "first start: set the admin password with the setup code from the console",
        "fieldstack setup --server https://box:8480 --cacert box.crt --code ABCD-EFGH-... "
        "--user admin",
        [o](Session& s) {
          std::string code = o->code;
          std::string password = ReadPassword(o->password_file, "--password-file",
                                              "FIELDSTACK_PASSWORD", "New admin password: ", true);
          json r = s.Call("POST", "/api/v1/setup",
                          {{"setup_code", code}, {"user", o->user}, {"password", password}});
          // Remember the box (not signed in yet) so that `login` needs no --server.
          SavedLogin saved;
          saved.server = s.server();
          saved.cacert = s.client().options().ca_file;
          saved.insecure = s.client().options().insecure;
          StoreSavedLogin(saved);
          s.Show(r, [&] {
            std::printf("admin '%s' is set up on %s\nsign in with: fieldstack login --user %s\n",
                        o->user.c_str(), s.server().c_str(), o->user.c_str());
          });
          return 0;
        },
        /*login_hint=*/false);
    c->add_option("--code", o->code, "the setup code printed in the daemon's log at first start")
        ->required();
    c->add_option("--user,-u", o->user, "the admin's user name (default admin)");
    c->add_option("--password-file", o->password_file,
                  "file holding the new password (else $FIELDSTACK_PASSWORD, else stdin)")
        ->type_name("FILE");
  }
  {
    struct Opts {
      std::string user, password_file;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(
        app, "login", "sign in and save the session for the next commands",
        "FIELDSTACK_PASSWORD=... fieldstack login --server https://box:8480 --cacert box.crt "
        "--user admin",
        [o](Session& s) {
          std::string password = ReadPassword(o->password_file, "--password-file",
                                              "FIELDSTACK_PASSWORD", "Password: ", false);
          json r = s.Call("POST", "/api/v1/login", {{"user", o->user}, {"password", password}});
          SavedLogin saved;
          saved.server = s.server();
          saved.token = Text(r, "token");
          saved.cacert = s.client().options().ca_file;
          saved.insecure = s.client().options().insecure;
          StoreSavedLogin(saved);
          json shown = r;
          shown.erase("token");  // the token is in the saved login, not on the screen
          shown["server"] = s.server();
          shown["saved_in"] = SavedLoginPath();
          s.Show(shown, [&] {
            std::printf(
                "signed in to %s as %s (%s); the session ends after an hour unused, at "
                "the latest %s UTC\n",
                s.server().c_str(), Text(r, "user").c_str(), Text(r, "role").c_str(),
                Time(r, "expires").c_str());
          });
          return 0;
        },
        /*login_hint=*/false);
    c->add_option("--user,-u", o->user, "user name")->required();
    c->add_option("--password-file", o->password_file,
                  "file holding the password (else $FIELDSTACK_PASSWORD, else stdin)")
        ->type_name("FILE");
  }
  Leaf(app, "logout", "end the saved session and forget its token", "fieldstack logout",
       [](Session& s) {
         SavedLogin saved = LoadSavedLogin();
         bool revoked = false;
         if (!s.client().options().token.empty()) {
           auto r = s.client().Send("POST", "/api/v1/logout");
           revoked = r.ok() && (r->ok() || r->status == 401);
           if (!r.ok()) {
             std::fprintf(stderr,
                          "fieldstack: warning: %s; the session ends by itself after an hour "
                          "unused\n",
                          r.status().message().c_str());
           }
         }
         if (!saved.token.empty() && saved.server == s.server()) {
           saved.token.clear();
           StoreSavedLogin(saved);
         }
         s.Show(json{{"revoked", revoked}},
                [&] { std::printf("signed out of %s\n", s.server().c_str()); });
         return 0;
       });
  Leaf(app, "whoami", "who the token belongs to and its role", "fieldstack whoami", [](Session& s) {
    json r = s.Get("/api/v1/me");
    s.Show(r, [&] {
      std::printf("%s (%s) on %s, %s\n", Text(r, "user").c_str(), Text(r, "role").c_str(),
                  s.server().c_str(),
                  Field(r, "api_token").is_boolean() && r["api_token"].get<bool>() ? "API token"
                                                                                   : "session");
    });
    return 0;
  });
}

// ---- device, status, metrics ----

std::string TargetText(const json& share) {
  const json& t = Field(share, "target");
  if (!t.is_object()) return "-";
  std::string acct = Text(t, "storage_account");
  std::string where = acct != "-" ? acct : Text(t, "type") + ":" + Text(t, "endpoint");
  std::string container = Text(t, "container");
  return container == "-" ? where : where + "/" + container;
}

void PrintShares(const json& list) {
  Table t({"NAME", "KIND", "TARGET", "POLICY", "SMB", "NFS", "USED", "PENDING", "STATE"});
  for (const auto& s : list) {
    const json& st = Field(s, "status");
    const json& target = Field(s, "target");
    t.Add({Text(s, "name"), Text(s, "kind"), TargetText(s), Text(target, "policy"), Text(s, "smb"),
           Text(s, "nfs"), Size(st, "used_bytes"), Text(st, "files_pending"), Text(st, "state")});
  }
  t.Print();
}

void PrintAlerts(const json& list) {
  Table t({"SEQ", "SEVERITY", "ALERT", "SUBJECT", "COUNT", "RAISED", "STATE", "TITLE"});
  for (const auto& a : list) {
    std::string state = Field(a, "cleared").is_null() ? "active" : "cleared";
    if (Field(a, "acknowledged").is_boolean() && a["acknowledged"].get<bool>()) {
      state += ", ack by " + Text(a, "acknowledged_by");
    }
    t.Add({Text(a, "seq"), Text(a, "severity"), Text(a, "id"), Text(a, "subject"), Text(a, "count"),
           Time(a, "raised"), state, Text(a, "title")});
  }
  t.Print();
}

void AddDeviceFields(Fields& f, const json& d) {
  f.Add("Name", Text(d, "name"));
  f.Add("Hostname", Text(d, "hostname"));
  f.Add("Version", Text(d, "version"));
  f.Add("Time", Time(d, "time") + " UTC");
  f.Add("Uptime", HumanDuration(Num(d, "uptime_s")));
  const json& cap = Field(d, "capacity");
  if (cap.is_object() && !cap.empty()) {
    f.Add("Capacity", Size(cap, "used_bytes") + " used, " + Size(cap, "volume_free_bytes") +
                          " free of " + Size(cap, "volume_total_bytes"));
    f.Add("Cache",
          Size(cap, "resident_bytes") + " resident, " + Size(cap, "stub_bytes") + " in stubs");
  }
}

void AddDeviceCommands(CLI::App& app) {
  Leaf(app, "status", "one screen: the device, active alerts, uploads and shares",
       "fieldstack status", [](Session& s) {
         json device = s.Get("/api/v1/device");
         json alerts = s.Get("/api/v1/alerts");
         json metrics = s.Get("/api/v1/metrics/summary");
         json shares = s.Get("/api/v1/shares");
         json all = {{"device", device},
                     {"alerts", Field(alerts, "alerts")},
                     {"metrics", metrics},
                     {"shares", Field(shares, "shares")}};
         s.Show(all, [&] {
           Fields f;
           AddDeviceFields(f, device);
           f.Add("Uploads", Text(metrics, "pending_files") + " files pending, " +
                                Text(metrics, "uploaded_files") + " uploaded (" +
                                Size(metrics, "uploaded_bytes") + "), " +
                                Text(metrics, "upload_failures") + " failures, " +
                                HumanBytes(Num(metrics, "upload_rate_bytes_per_second")) + "/s");
           size_t n = Field(alerts, "alerts").size();
           f.Add("Alerts", n == 0 ? "none active" : std::to_string(n) + " active");
           f.Print();
           if (n > 0) {
             std::printf("\n");
             PrintAlerts(alerts["alerts"]);
           }
           std::printf("\n");
           PrintShares(Field(shares, "shares"));
         });
         return 0;
       });
  auto* device = Noun(app, "device", "the box itself: name, capacity, network, endpoints");
  Leaf(*device, "show", "the device's name, version, capacity, network and endpoints",
       "fieldstack device show", [](Session& s) {
         json d = s.Get("/api/v1/device");
         s.Show(d, [&] {
           Fields f;
           AddDeviceFields(f, d);
           f.Add("Host power", Text(d, "host_power"));
           for (const auto& [k, v] : Field(d, "endpoints").items()) {
             f.Add("Endpoint " + k, Text(v));
           }
           for (const auto& n : Field(d, "network")) {
             f.Add("Interface " + Text(n, "name"),
                   std::string(Field(n, "up").is_boolean() && n["up"].get<bool>() ? "up" : "down") +
                       " " + Text(n, "addresses"));
           }
           f.Print();
         });
         return 0;
       });
  {
    struct Opts {
      std::string name, host_power;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(*device, "set", "rename the device or let it restart/power off the host",
                   "fieldstack device set --name field-box-7 --host-power false", [o](Session& s) {
                     json body = json::object();
                     if (!o->name.empty()) body["name"] = o->name;
                     if (!o->host_power.empty()) body["host_power"] = o->host_power == "true";
                     if (body.empty()) Die(2, "nothing to change: give --name or --host-power");
                     json d = s.Call("PATCH", "/api/v1/device", body);
                     s.Show(d, [&] {
                       Fields f;
                       f.Add("Name", Text(d, "name"));
                       f.Add("Host power", Text(d, "host_power"));
                       f.Print();
                     });
                     return 0;
                   });
    c->add_option("--name", o->name, "the device's name (shown in the UI and support packages)");
    c->add_option("--host-power", o->host_power,
                  "true: `power --host` may reboot or power off the host")
        ->check(CLI::IsMember({"true", "false"}));
  }
  Leaf(app, "metrics", "the metrics summary: uploads, recalls, cache, store", "fieldstack metrics",
       [](Session& s) {
         json m = s.Get("/api/v1/metrics/summary");
         s.Show(m, [&] {
           Fields f;
           f.Add("Uploaded", Text(m, "uploaded_files") + " files, " + Size(m, "uploaded_bytes"));
           f.Add("Upload rate", HumanBytes(Num(m, "upload_rate_bytes_per_second")) + "/s");
           f.Add("Upload failures", Text(m, "upload_failures"));
           f.Add("Pending files", Text(m, "pending_files"));
           f.Add("Recalled", Size(m, "recalled_bytes"));
           f.Add("Evictions", Text(m, "evictions"));
           f.Add("Cache backpressure", Text(m, "cache_backpressure"));
           f.Add("Store written", Size(m, "store_bytes_written"));
           f.Add("Store read", Size(m, "store_bytes_read"));
           f.Print();
         });
         return 0;
       });
}

// ---- shares ----

struct ShareOpts {
  std::string name, kind, account, container, bucket, policy, smb_encrypt, nfs_squash;
  std::vector<std::string> nfs_clients, page_blob_suffixes, pinned;
  bool smb = false, nfs = false, nfs_read_only = false;
  int64_t refresh_ttl_s = 0, max_age_days = 0;
  std::string high, low, hard_cap;
  std::map<std::string, CLI::Option*> given;

  bool Has(const std::string& opt) const {
    auto it = given.find(opt);
    return it != given.end() && it->second->count() > 0;
  }
  json Body() const {
    json b = json::object();
    if (Has("kind")) b["kind"] = kind;
    if (Has("account")) b["storage_account"] = account;
    if (Has("container")) b["container"] = container;
    if (Has("bucket")) b["bucket"] = bucket;
    if (Has("policy")) b["policy"] = policy;
    if (Has("smb")) b["smb"] = smb;
    if (Has("smb-encrypt")) b["smb_encrypt"] = smb_encrypt;
    if (Has("nfs")) b["nfs"] = nfs;
    if (Has("nfs-client")) b["nfs_clients"] = nfs_clients;
    if (Has("nfs-read-only")) b["nfs_read_only"] = nfs_read_only;
    if (Has("nfs-squash")) b["nfs_squash"] = nfs_squash;
    if (Has("refresh-ttl")) b["refresh_ttl_s"] = refresh_ttl_s;
    if (Has("page-blob-suffix")) b["page_blob_suffixes"] = page_blob_suffixes;
    json cache = json::object();
    if (Has("high-watermark")) cache["high_watermark"] = high;
    if (Has("low-watermark")) cache["low_watermark"] = low;
    if (Has("hard-cap")) cache["hard_cap"] = hard_cap;
    if (Has("max-age-days")) cache["max_age_days"] = max_age_days;
    if (Has("pin")) cache["pinned"] = pinned;
    if (!cache.empty()) b["cache"] = cache;
    return b;
  }
};

void AddShareOptions(CLI::App& c, ShareOpts& o, bool create) {
  auto& g = o.given;
  if (create) {
    g["kind"] = c.add_option("--kind", o.kind, "local or cloud (default: cloud with --account)")
                    ->check(CLI::IsMember({"local", "cloud"}));
  }
  g["account"] = c.add_option("--account", o.account,
                              "storage account the share uploads to (\"\" removes the target)");
  g["container"] = c.add_option("--container", o.container, "Azure container");
  g["bucket"] = c.add_option("--bucket", o.bucket, "S3 bucket");
  g["policy"] = c.add_option("--policy", o.policy, "keep (default) or mirror deletes and renames")
                    ->check(CLI::IsMember({"keep", "mirror"}));
  g["page-blob-suffix"] = c.add_option("--page-blob-suffix", o.page_blob_suffixes,
                                       "upload files ending so as Azure page blobs (repeatable)");
  g["smb"] = c.add_flag("--smb,!--no-smb", o.smb, "serve the share over SMB");
  g["smb-encrypt"] = c.add_option("--smb-encrypt", o.smb_encrypt,
                                  "SMB encryption: off, desired, "
                                  "required");
  g["nfs"] = c.add_flag("--nfs,!--no-nfs", o.nfs, "serve the share over NFS");
  g["nfs-client"] = c.add_option("--nfs-client", o.nfs_clients,
                                 "NFS client address or network allowed (repeatable)");
  g["nfs-read-only"] =
      c.add_flag("--nfs-read-only,!--nfs-read-write", o.nfs_read_only, "export read-only over NFS");
  g["nfs-squash"] = c.add_option("--nfs-squash", o.nfs_squash, "NFS squash: root, all or none");
  g["refresh-ttl"] = c.add_option("--refresh-ttl", o.refresh_ttl_s,
                                  "seconds between automatic refreshes from the cloud (0: off)");
  g["high-watermark"] =
      c.add_option("--high-watermark", o.high, "cache: evict above this (\"80%\", \"500G\")");
  g["low-watermark"] = c.add_option("--low-watermark", o.low, "cache: evict down to this");
  g["hard-cap"] = c.add_option("--hard-cap", o.hard_cap, "cache: never hold more than this");
  g["max-age-days"] = c.add_option("--max-age-days", o.max_age_days,
                                   "cache: evict files unread for this many days (0: never)");
  g["pin"] = c.add_option("--pin", o.pinned, "cache: a path kept resident (repeatable)");
}

void PrintShare(const json& s) {
  Fields f;
  f.Add("Name", Text(s, "name"));
  f.Add("Kind", Text(s, "kind"));
  const json& t = Field(s, "target");
  if (t.is_object()) {
    f.Add("Target", TargetText(s));
    f.Add("Target type", Text(t, "type"));
    f.Add("Endpoint", Text(t, "endpoint"));
    f.Add("Policy", Text(t, "policy"));
    f.Add("Page blob suffixes", Text(t, "page_blob_suffixes"));
  } else {
    f.Add("Target", "-");
  }
  f.Add("SMB", Text(s, "smb") +
                   (Text(s, "smb") == "yes" ? " (encrypt: " + Text(s, "smb_encrypt") + ")" : ""));
  f.Add("NFS",
        Text(s, "nfs") + (Text(s, "nfs") == "yes"
                              ? " (clients: " + Text(s, "nfs_clients") +
                                    (Text(s, "nfs_read_only") == "yes" ? ", read-only" : "") +
                                    ", squash: " + Text(s, "nfs_squash") + ")"
                              : ""));
  f.Add("Refresh every",
        Num(s, "refresh_ttl_s") > 0 ? HumanDuration(Num(s, "refresh_ttl_s")) : "off");
  const json& c = Field(s, "cache");
  f.Add("Cache", "high " + Text(c, "high_watermark") + ", low " + Text(c, "low_watermark") +
                     ", cap " + Text(c, "hard_cap") + ", max age " + Text(c, "max_age_days") +
                     " days, pinned " + Text(c, "pinned"));
  const json& st = Field(s, "status");
  f.Add("State", Text(st, "state"));
  f.Add("Used", Size(st, "used_bytes"));
  f.Add("Resident", Size(st, "resident_bytes"));
  f.Add("Stubs", Text(st, "stub_files") + " files, " + Size(st, "stub_bytes"));
  f.Add("Pending uploads", Text(st, "files_pending"));
  if (st.contains("uploads_failed")) f.Add("Failed uploads", Text(st, "uploads_failed"));
  f.Print();
}

void PrintRefreshResult(const json& job) {
  const json& r = Field(job, "result");
  Fields f;
  for (const char* k : {"listed", "added", "changed", "deleted", "kept", "conflicts", "unchanged",
                        "skipped", "failed"}) {
    f.Add(Label(k), Text(r, k));
  }
  f.Add("Duration", std::to_string(static_cast<int64_t>(Num(r, "duration_ms"))) + " ms");
  f.Print();
}

void AddShareCommands(CLI::App& app) {
  auto* share = Noun(app, "share", "file shares and their cloud targets");
  Leaf(*share, "list", "the shares with their target, state and usage", "fieldstack share list",
       [](Session& s) {
         json r = s.Get("/api/v1/shares");
         s.Show(r, [&] { PrintShares(Field(r, "shares")); });
         return 0;
       });
  {
    auto name = std::make_shared<std::string>();
    auto* c = Leaf(*share, "show", "one share's settings and state", "fieldstack share show ingest",
                   [name](Session& s) {
                     json r = s.Get("/api/v1/shares/" + EscapeSegment(*name));
                     s.Show(r, [&] { PrintShare(r); });
                     return 0;
                   });
    c->add_option("name", *name, "the share")->required();
  }
  {
    auto o = std::make_shared<ShareOpts>();
    auto* c = Leaf(*share, "create", "make a share (local, or cloud with --account)",
                   "fieldstack share create ingest --account azure1 --container ingest --smb",
                   [o](Session& s) {
                     json body = o->Body();
                     body["name"] = o->name;
                     json r = s.Call("POST", "/api/v1/shares", body);
                     s.Show(r, [&] { PrintShare(r); });
                     return 0;
                   });
    c->add_option("name", o->name, "the share's name")->required();
    AddShareOptions(*c, *o, true);
  }
  {
    auto o = std::make_shared<ShareOpts>();
    auto* c = Leaf(*share, "update", "change a share's settings (only the options given)",
                   "fieldstack share update ingest --policy mirror --no-smb", [o](Session& s) {
                     json body = o->Body();
                     if (body.empty()) Die(2, "nothing to change: give an option (see --help)");
                     json r = s.Call("PATCH", "/api/v1/shares/" + EscapeSegment(o->name), body);
                     s.Show(r, [&] { PrintShare(r); });
                     return 0;
                   });
    c->add_option("name", o->name, "the share")->required();
    AddShareOptions(*c, *o, false);
  }
  {
    struct Opts {
      std::string name;
      bool force = false;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(*share, "delete",
                   "remove a share from the box's settings (refused while files wait for upload)",
                   "fieldstack share delete old-share", [o](Session& s) {
                     s.Call("DELETE", "/api/v1/shares/" + EscapeSegment(o->name), nullptr,
                            {{"force", o->force ? "true" : ""}});
                     s.Done("deleted share '" + o->name + "'");
                     return 0;
                   });
    c->add_option("name", o->name, "the share")->required();
    c->add_flag("--force", o->force, "delete even when files wait for upload (they are lost)");
  }
  {
    struct Opts {
      std::string name;
      std::vector<std::string> paths;
      bool no_wait = false;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(
        *share, "refresh", "pull what was added, changed or deleted in the cloud into a share",
        "fieldstack share refresh ingest --path news", [o](Session& s) {
          json body = json::object();
          if (!o->paths.empty()) body["paths"] = o->paths;
          json r = s.Call("POST", "/api/v1/shares/" + EscapeSegment(o->name) + "/refresh", body);
          std::string id = Text(r, "job");
          if (o->no_wait) {
            s.Show(r, [&] { std::printf("%s\n", id.c_str()); });
            return 0;
          }
          json job = WaitJob(s, id);
          s.Show(job, [&] {
            if (Text(job, "state") == "succeeded") PrintRefreshResult(job);
          });
          return JobExit(job);
        });
    c->add_option("name", o->name, "the cloud share")->required();
    c->add_option("--path,-p", o->paths, "a folder of the share (repeatable; default: all)");
    c->add_flag("--no-wait", o->no_wait, "print the job id and return (see `fieldstack jobs`)");
  }
  {
    struct Opts {
      std::string name, path;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(
        *share, "file-state", "a file's cache state: resident, stub, pinned, dirty or local",
        "fieldstack share file-state ingest news/report.csv", [o](Session& s) {
          json r = s.Get("/api/v1/shares/" + EscapeSegment(o->name) + "/file", {{"path", o->path}});
          s.Show(r, [&] {
            Table t({"PATH", "STATE", "SIZE"});
            t.Add({Text(r, "path"), Text(r, "state"), Size(r, "size")});
            t.Print();
          });
          return 0;
        });
    c->add_option("share", o->name, "the share")->required();
    c->add_option("path", o->path, "the file's path in the share")->required();
  }
}

// ---- users and tokens ----

void PrintUsers(const json& list) {
  Table t({"NAME", "ROLE", "CREATED", "PASSWORD CHANGED"});
  for (const auto& u : list) {
    t.Add({Text(u, "name"), Text(u, "role"), Time(u, "created"), Time(u, "password_changed")});
  }
  t.Print();
}

void AddUserCommands(CLI::App& app) {
  auto* user = Noun(app, "user", "the box's management users and their roles");
  Leaf(*user, "list", "the users and their roles (admin)", "fieldstack user list", [](Session& s) {
    json r = s.Get("/api/v1/users");
    s.Show(r, [&] { PrintUsers(Field(r, "users")); });
    return 0;
  });
  {
    struct Opts {
      std::string name, role, password_file;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(*user, "add",
                   "add a user (the password from a file, $FIELDSTACK_NEW_PASSWORD "
                   "or stdin)",
                   "FIELDSTACK_NEW_PASSWORD=... fieldstack user add alice --role operator",
                   [o](Session& s) {
                     std::string pw = ReadPassword(o->password_file, "--password-file",
                                                   "FIELDSTACK_NEW_PASSWORD",
                                                   "Password for " + o->name + ": ", true);
                     json r = s.Call("POST", "/api/v1/users",
                                     {{"name", o->name}, {"role", o->role}, {"password", pw}});
                     s.Show(r, [&] { PrintUsers(json::array({r})); });
                     return 0;
                   });
    c->add_option("name", o->name, "user name: 1-32 of a-z 0-9 . _ -")->required();
    c->add_option("--role", o->role, "reader, operator or admin")
        ->required()
        ->check(CLI::IsMember({"reader", "operator", "admin"}));
    c->add_option("--password-file", o->password_file,
                  "file holding the user's password (else $FIELDSTACK_NEW_PASSWORD, else stdin)")
        ->type_name("FILE");
  }
  {
    auto name = std::make_shared<std::string>();
    auto* c = Leaf(*user, "delete", "delete a user (ends the user's sessions and tokens)",
                   "fieldstack user delete alice", [name](Session& s) {
                     s.Call("DELETE", "/api/v1/users/" + EscapeSegment(*name));
                     s.Done("deleted user '" + *name + "'");
                     return 0;
                   });
    c->add_option("name", *name, "the user")->required();
  }
  {
    struct Opts {
      std::string name, role;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(
        *user, "set-role", "change a user's role", "fieldstack user set-role alice admin",
        [o](Session& s) {
          json r = s.Call("PATCH", "/api/v1/users/" + EscapeSegment(o->name), {{"role", o->role}});
          s.Show(r, [&] { PrintUsers(json::array({r})); });
          return 0;
        });
    c->add_option("name", o->name, "the user")->required();
    c->add_option("role", o->role, "reader, operator or admin")
        ->required()
        ->check(CLI::IsMember({"reader", "operator", "admin"}));
  }
  {
    struct Opts {
      std::string name, password_file, new_password_file;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(
        *user, "passwd",
        "change your password (current and new from files, $FIELDSTACK_PASSWORD and "
        "$FIELDSTACK_NEW_PASSWORD, or stdin), or as admin set user NAME's",
        "fieldstack user passwd --password-file old.txt --new-password-file new.txt",
        [o](Session& s) {
          if (!o->name.empty()) {
            std::string pw =
                ReadPassword(o->new_password_file, "--new-password-file", "FIELDSTACK_NEW_PASSWORD",
                             "New password for " + o->name + ": ", true);
            s.Call("PATCH", "/api/v1/users/" + EscapeSegment(o->name), {{"password", pw}});
            s.Done("password of '" + o->name + "' set; the user's sessions ended");
            return 0;
          }
          json me = s.Get("/api/v1/me");
          std::string old_pw = ReadPassword(o->password_file, "--password-file",
                                            "FIELDSTACK_PASSWORD", "Current password: ", false);
          std::string new_pw = ReadPassword(o->new_password_file, "--new-password-file",
                                            "FIELDSTACK_NEW_PASSWORD", "New password: ", true);
          s.Call("PUT", "/api/v1/me/password",
                 {{"old_password", old_pw}, {"new_password", new_pw}});
          // The change ends the user's sessions: sign the saved login in again.
          SavedLogin saved = s.saved();
          bool resigned = false;
          if (saved.server == s.server() && saved.token == s.client().options().token &&
              !(Field(me, "api_token").is_boolean() && me["api_token"].get<bool>())) {
            ApiReply r =
                s.Raw("POST", "/api/v1/login", {{"user", Text(me, "user")}, {"password", new_pw}});
            if (r.ok()) {
              saved.token = Text(r.body, "token");
              StoreSavedLogin(saved);
              resigned = true;
            }
          }
          s.Done(resigned ? "password changed; signed in again"
                          : "password changed; your sessions ended: sign in again");
          return 0;
        });
    c->add_option("name", o->name, "another user (admin): set their password");
    c->add_option("--password-file", o->password_file,
                  "file holding your current password (else $FIELDSTACK_PASSWORD, else stdin)")
        ->type_name("FILE");
    c->add_option("--new-password-file", o->new_password_file,
                  "file holding the new password (else $FIELDSTACK_NEW_PASSWORD, else stdin)")
        ->type_name("FILE");
  }

  auto* token = Noun(app, "token", "API tokens for scripts (FIELDSTACK_TOKEN)");
  Leaf(*token, "list", "your API tokens (an admin sees all)", "fieldstack token list",
       [](Session& s) {
         json r = s.Get("/api/v1/tokens");
         s.Show(r, [&] {
           Table t({"ID", "NAME", "USER", "ROLE", "CREATED", "EXPIRES"});
           for (const auto& k : Field(r, "tokens")) {
             t.Add({Text(k, "id"), Text(k, "name"), Text(k, "user"), Text(k, "role"),
                    Time(k, "created"),
                    Field(k, "expires").is_null() ? "never" : Time(k, "expires")});
           }
           t.Print();
         });
         return 0;
       });
  {
    struct Opts {
      std::string name, role, expires_in;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(*token, "create", "make an API token (shown once) with your role or a lower one",
                   "fieldstack token create --name backup-script --role reader --expires-in 90d",
                   [o](Session& s) {
                     json body = {{"name", o->name}};
                     if (!o->role.empty()) body["role"] = o->role;
                     if (!o->expires_in.empty()) {
                       auto secs = ParseDurationSeconds(o->expires_in);
                       if (!secs) {
                         Die(2, "--expires-in: '" + o->expires_in +
                                    "' is not a duration like 3600, 90m, 12h or 30d");
                       }
                       body["expires_in_s"] = *secs;
                     }
                     json r = s.Call("POST", "/api/v1/tokens", body);
                     s.Show(r, [&] {
                       std::printf("%s\n", Text(r, "token").c_str());
                       std::fprintf(
                           stderr,
                           "token %s (%s, role %s, expires %s): shown once; use it "
                           "with FIELDSTACK_TOKEN=<token>\n",
                           Text(r, "id").c_str(), Text(r, "name").c_str(), Text(r, "role").c_str(),
                           Field(r, "expires").is_null() ? "never" : Time(r, "expires").c_str());
                     });
                     return 0;
                   });
    c->add_option("--name", o->name, "what the token is for")->required();
    c->add_option("--role", o->role, "reader, operator or admin (default: yours)")
        ->check(CLI::IsMember({"reader", "operator", "admin"}));
    c->add_option("--expires-in", o->expires_in, "lifetime: 3600, 90m, 12h, 30d (default: never)")
        ->type_name("DURATION");
  }
  {
    auto id = std::make_shared<std::string>();
    auto* c = Leaf(*token, "revoke", "revoke an API token",
                   "fieldstack token revoke 0123abcd4567ef89", [id](Session& s) {
                     s.Call("DELETE", "/api/v1/tokens/" + EscapeSegment(*id));
                     s.Done("revoked token " + *id);
                     return 0;
                   });
    c->add_option("id", *id, "the token's id (fieldstack token list)")->required();
  }
}

// ---- access keys and storage accounts ----

std::vector<std::string> NonEmpty(const std::vector<std::string>& v) {
  std::vector<std::string> out;
  for (const auto& s : v) {
    if (!s.empty()) out.push_back(s);
  }
  return out;
}

void PrintKeys(const json& list) {
  Table t({"ID", "USER", "READ", "WRITE"});
  for (const auto& k : list) {
    t.Add({Text(k, "id"), Text(k, "user"), Text(k, "read"), Text(k, "write")});
  }
  t.Print();
}

void AddKeyCommands(CLI::App& app) {
  auto* key = Noun(app, "key", "access keys for the box's S3 and Blob endpoints");
  Leaf(*key, "list", "the access keys and their rights (admin)", "fieldstack key list",
       [](Session& s) {
         json r = s.Get("/api/v1/access-keys");
         s.Show(r, [&] { PrintKeys(Field(r, "access_keys")); });
         return 0;
       });
  {
    struct Opts {
      std::string user;
      std::vector<std::string> read, write;
    };
    auto o = std::make_shared<Opts>();
    auto* c =
        Leaf(*key, "create", "make an access key; its secret is shown once",
             "fieldstack key create --user camera-7 --write ingest --read ingest", [o](Session& s) {
               json r = s.Call(
                   "POST", "/api/v1/access-keys",
                   {{"user", o->user}, {"read", NonEmpty(o->read)}, {"write", NonEmpty(o->write)}});
               s.Show(r, [&] {
                 Fields f;
                 f.Add("Access key id", Text(r, "id"));
                 f.Add("Secret", Text(r, "secret"));
                 f.Add("User", Text(r, "user"));
                 f.Add("Read", Text(r, "read"));
                 f.Add("Write", Text(r, "write"));
                 f.Print();
                 std::fprintf(stderr, "the secret is shown once: keep it now\n");
               });
               return 0;
             });
    c->add_option("--user", o->user, "who uses the key (a name for the logs)")->required();
    c->add_option("--read", o->read, "share or bucket it may read, * for all (repeatable)")
        ->delimiter(',');
    c->add_option("--write", o->write, "share or bucket it may write, * for all (repeatable)")
        ->delimiter(',');
  }
  {
    struct Opts {
      std::string id;
      std::vector<std::string> read, write;
      CLI::Option* read_opt = nullptr;
      CLI::Option* write_opt = nullptr;
    };
    auto o = std::make_shared<Opts>();
    auto* c =
        Leaf(*key, "update", "replace an access key's read or write rights",
             "fieldstack key update FSABC... --read ingest,archive --write ''", [o](Session& s) {
               json body = json::object();
               if (o->read_opt->count() > 0) body["read"] = NonEmpty(o->read);
               if (o->write_opt->count() > 0) body["write"] = NonEmpty(o->write);
               if (body.empty()) Die(2, "nothing to change: give --read or --write");
               json r = s.Call("PATCH", "/api/v1/access-keys/" + EscapeSegment(o->id), body);
               s.Show(r, [&] { PrintKeys(json::array({r})); });
               return 0;
             });
    c->add_option("id", o->id, "the access key id")->required();
    o->read_opt =
        c->add_option("--read", o->read, "shares it may read ('' for none)")->delimiter(',');
    o->write_opt =
        c->add_option("--write", o->write, "shares it may write ('' for none)")->delimiter(',');
  }
  {
    auto id = std::make_shared<std::string>();
    auto* c = Leaf(*key, "delete", "delete an access key", "fieldstack key delete FSABC...",
                   [id](Session& s) {
                     s.Call("DELETE", "/api/v1/access-keys/" + EscapeSegment(*id));
                     s.Done("deleted access key " + *id);
                     return 0;
                   });
    c->add_option("id", *id, "the access key id")->required();
  }
}

struct AccountOpts {
  std::string name, type, endpoint, account, region, addressing, path;
  std::string key_file, sas_file, access_key_id, secret_file, session_token_file;
  std::map<std::string, CLI::Option*> given;
  bool Has(const std::string& k) const {
    auto it = given.find(k);
    return it != given.end() && it->second->count() > 0;
  }
  json Body() const {
    json b = json::object();
    std::string p = path;
    bool path_given = Has("path");
    // A localfs account's "endpoint" is its directory.
    if (type == "localfs" && !path_given && Has("endpoint") && !endpoint.starts_with("http")) {
      p = endpoint;
      path_given = true;
    } else if (Has("endpoint")) {
      b["endpoint"] = endpoint;
    }
    if (path_given) b["path"] = p;
    if (Has("account")) b["account"] = account;
    if (Has("region")) b["region"] = region;
    if (Has("addressing")) b["addressing"] = addressing;
    if (Has("key-file")) b["key"] = Trimmed(ReadFileOrDie(key_file, "--key-file"));
    if (Has("sas-file")) b["sas"] = Trimmed(ReadFileOrDie(sas_file, "--sas-file"));
    if (Has("access-key-id")) b["access_key_id"] = access_key_id;
    if (Has("secret-file")) b["secret_access_key"] = ReadSecretFile(secret_file, "--secret-file");
    if (Has("session-token-file")) {
      b["session_token"] = ReadSecretFile(session_token_file, "--session-token-file");
    }
    return b;
  }
};

void AddAccountOptions(CLI::App& c, AccountOpts& o) {
  auto& g = o.given;
  g["endpoint"] =
      c.add_option("--endpoint", o.endpoint, "https:// URL of the Blob service or S3 endpoint");
  g["account"] = c.add_option("--account", o.account, "Azure storage account name");
  g["path"] = c.add_option("--path", o.path, "localfs: the directory objects are written to");
  g["region"] = c.add_option("--region", o.region, "S3 region");
  g["addressing"] = c.add_option("--addressing", o.addressing, "S3: path or virtual")
                        ->check(CLI::IsMember({"path", "virtual"}));
  g["key-file"] = c.add_option("--key-file", o.key_file, "file holding the Azure account key")
                      ->type_name("FILE");
  g["sas-file"] =
      c.add_option("--sas-file", o.sas_file, "file holding an Azure SAS token")->type_name("FILE");
  g["access-key-id"] = c.add_option("--access-key-id", o.access_key_id, "S3 access key id");
  g["secret-file"] =
      c.add_option("--secret-file", o.secret_file, "file holding the S3 secret access key")
          ->type_name("FILE");
  g["session-token-file"] =
      c.add_option("--session-token-file", o.session_token_file, "file holding an S3 session token")
          ->type_name("FILE");
}

void PrintAccounts(const json& list) {
  Table t({"NAME", "TYPE", "ENDPOINT", "ACCOUNT", "CREDENTIALS", "REACHABLE"});
  for (const auto& a : list) {
    std::string where = Text(a, "type") == "localfs" ? Text(a, "path") : Text(a, "endpoint");
    std::string creds;
    for (auto [k, label] :
         {std::pair{"has_key", "key"}, {"has_sas", "sas"}, {"has_credentials", "s3 keys"}}) {
      if (Field(a, k).is_boolean() && a[k].get<bool>())
        creds += (creds.empty() ? "" : ", ") + std::string(label);
    }
    t.Add({Text(a, "name"), Text(a, "type"), where, Text(a, "account"), creds.empty() ? "-" : creds,
           Field(a, "reachable").is_null() ? "-" : Text(a, "reachable")});
  }
  t.Print();
}

void AddAccountCommands(CLI::App& app) {
  auto* account = Noun(app, "account", "storage accounts that cloud shares upload to");
  Leaf(*account, "list", "the storage accounts", "fieldstack account list", [](Session& s) {
    json r = s.Get("/api/v1/storage-accounts");
    s.Show(r, [&] { PrintAccounts(Field(r, "storage_accounts")); });
    return 0;
  });
  {
    auto name = std::make_shared<std::string>();
    auto* c = Leaf(*account, "show", "one storage account (secrets are never shown)",
                   "fieldstack account show azure1", [name](Session& s) {
                     json r = s.Get("/api/v1/storage-accounts/" + EscapeSegment(*name));
                     s.Show(r, [&] {
                       Fields f;
                       AddObject(f, r);
                       f.Print();
                     });
                     return 0;
                   });
    c->add_option("name", *name, "the account")->required();
  }
  {
    auto o = std::make_shared<AccountOpts>();
    auto* c = Leaf(*account, "add", "add a storage account (secrets are read from files)",
                   "fieldstack account add azure1 --type azure --endpoint "
                   "https://acct.blob.core.windows.net --account acct --key-file key.txt",
                   [o](Session& s) {
                     json body = o->Body();
                     body["name"] = o->name;
                     body["type"] = o->type;
                     json r = s.Call("POST", "/api/v1/storage-accounts", body);
                     s.Show(r, [&] { PrintAccounts(json::array({r})); });
                     return 0;
                   });
    c->add_option("name", o->name, "the account's name on the box")->required();
    c->add_option("--type", o->type, "azure, s3 or localfs")
        ->required()
        ->check(CLI::IsMember({"azure", "s3", "localfs"}));
    AddAccountOptions(*c, *o);
  }
  {
    auto o = std::make_shared<AccountOpts>();
    auto* c =
        Leaf(*account, "update", "change a storage account (e.g. a rotated key)",
             "fieldstack account update azure1 --key-file new-key.txt", [o](Session& s) {
               json body = o->Body();
               if (body.empty()) Die(2, "nothing to change: give an option (see --help)");
               json r = s.Call("PATCH", "/api/v1/storage-accounts/" + EscapeSegment(o->name), body);
               s.Show(r, [&] { PrintAccounts(json::array({r})); });
               return 0;
             });
    c->add_option("name", o->name, "the account")->required();
    AddAccountOptions(*c, *o);
  }
  {
    auto name = std::make_shared<std::string>();
    auto* c = Leaf(*account, "delete", "delete a storage account no share uses",
                   "fieldstack account delete azure1", [name](Session& s) {
                     s.Call("DELETE", "/api/v1/storage-accounts/" + EscapeSegment(*name));
                     s.Done("deleted storage account '" + *name + "'");
                     return 0;
                   });
    c->add_option("name", *name, "the account")->required();
  }
}

// ---- schedule and cache ----

void PrintSchedule(const json& b) {
  Fields f;
  f.Add("Timetable", Text(b, "timetable") == "-" ? "unlimited" : Text(b, "timetable"));
  f.Add("Daily budget",
        Field(b, "daily_budget_bytes").is_null() ? "none" : Size(b, "daily_budget_bytes"));
  f.Add("Monthly budget",
        Field(b, "monthly_budget_bytes").is_null() ? "none" : Size(b, "monthly_budget_bytes"));
  f.Add("Transfers", Text(b, "transfers"));
  f.Print();
}

void AddScheduleCommands(CLI::App& app) {
  auto* schedule = Noun(app, "schedule", "upload bandwidth timetable and data budgets");
  Leaf(*schedule, "show", "the bandwidth timetable, data budgets and parallel transfers",
       "fieldstack schedule show", [](Session& s) {
         json r = s.Get("/api/v1/bandwidth");
         s.Show(r, [&] { PrintSchedule(r); });
         return 0;
       });
  {
    struct Opts {
      std::string timetable, daily, monthly;
      int64_t transfers = 0;
      CLI::Option *timetable_opt, *daily_opt, *monthly_opt, *transfers_opt;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(*schedule, "set", "change the timetable, budgets or transfers (\"\" clears)",
                   "fieldstack schedule set --timetable \"08:00,512k 18:00,off\" --daily-budget 5G",
                   [o](Session& s) {
                     json body = json::object();
                     if (o->timetable_opt->count()) body["timetable"] = o->timetable;
                     if (o->daily_opt->count()) body["daily_budget"] = o->daily;
                     if (o->monthly_opt->count()) body["monthly_budget"] = o->monthly;
                     if (o->transfers_opt->count()) body["transfers"] = o->transfers;
                     if (body.empty()) Die(2, "nothing to change: give an option (see --help)");
                     json r = s.Call("PUT", "/api/v1/bandwidth", body);
                     s.Show(r, [&] { PrintSchedule(r); });
                     return 0;
                   });
    o->timetable_opt = c->add_option("--timetable", o->timetable,
                                     "rclone-style timetable: \"08:00,512k 18:00,off\" (\"\": "
                                     "no limit)");
    o->daily_opt = c->add_option("--daily-budget", o->daily, "bytes a day, like 5G (\"\": none)");
    o->monthly_opt =
        c->add_option("--monthly-budget", o->monthly, "bytes a month, like 100G (\"\": none)");
    o->transfers_opt = c->add_option("--transfers", o->transfers, "parallel uploads (1-64)");
  }
  auto* cache = Noun(app, "cache", "the box-wide cache policy (eviction watermarks)");
  Leaf(*cache, "show", "the cache policy", "fieldstack cache show", [](Session& s) {
    json r = s.Get("/api/v1/cache");
    s.Show(r, [&] {
      Fields f;
      AddObject(f, r);
      f.Print();
    });
    return 0;
  });
  {
    struct Opts {
      std::string high, low, cap;
      std::vector<std::string> pinned;
      int64_t max_age = 0, interval = 0, backpressure = 0, recall = 0;
      std::map<std::string, CLI::Option*> given;
    };
    auto o = std::make_shared<Opts>();
    auto* c =
        Leaf(*cache, "set", "change the cache policy (only the options given)",
             "fieldstack cache set --high-watermark 85% --low-watermark 70%", [o](Session& s) {
               json body = json::object();
               auto has = [&](const char* k) { return o->given[k]->count() > 0; };
               if (has("high_watermark")) body["high_watermark"] = o->high;
               if (has("low_watermark")) body["low_watermark"] = o->low;
               if (has("hard_cap")) body["hard_cap"] = o->cap;
               if (has("max_age_days")) body["max_age_days"] = o->max_age;
               if (has("pinned")) body["pinned"] = NonEmpty(o->pinned);
               if (has("interval_s")) body["interval_s"] = o->interval;
               if (has("backpressure_timeout_s")) {
                 body["backpressure_timeout_s"] = o->backpressure;
               }
               if (has("recall_timeout_s")) body["recall_timeout_s"] = o->recall;
               if (body.empty()) Die(2, "nothing to change: give an option (see --help)");
               json r = s.Call("PUT", "/api/v1/cache", body);
               s.Show(r, [&] {
                 Fields f;
                 AddObject(f, r);
                 f.Print();
               });
               return 0;
             });
    o->given["high_watermark"] = c->add_option("--high-watermark", o->high,
                                               "evict above this: \"80%\" or a size (\"500G\")");
    o->given["low_watermark"] = c->add_option("--low-watermark", o->low, "evict down to this");
    o->given["hard_cap"] = c->add_option("--hard-cap", o->cap, "never cache more than this");
    o->given["max_age_days"] =
        c->add_option("--max-age-days", o->max_age, "evict files unread this long (0: never)");
    o->given["pinned"] = c->add_option("--pin", o->pinned, "a path kept resident (repeatable)");
    o->given["interval_s"] =
        c->add_option("--interval", o->interval, "seconds between eviction passes");
    o->given["backpressure_timeout_s"] = c->add_option("--backpressure-timeout", o->backpressure,
                                                       "seconds a writer waits for cache space");
    o->given["recall_timeout_s"] =
        c->add_option("--recall-timeout", o->recall, "seconds a reader waits for a recall");
  }
}

// ---- alerts and logs ----

void AddAlertCommands(CLI::App& app) {
  auto* alerts = Noun(app, "alerts", "what needs attention on the box");
  {
    struct Opts {
      bool all = false;
      int64_t limit = 100;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(*alerts, "list", "active alerts (--all: the history, newest first)",
                   "fieldstack alerts list --all", [o](Session& s) {
                     json r = s.Get("/api/v1/alerts", {{"state", o->all ? "all" : "active"},
                                                       {"limit", std::to_string(o->limit)}});
                     s.Show(r, [&] { PrintAlerts(Field(r, "alerts")); });
                     return 0;
                   });
    c->add_flag("--all", o->all, "cleared alerts too");
    c->add_option("--limit", o->limit, "at most this many (1-1000, default 100)");
  }
  {
    auto seq = std::make_shared<std::string>();
    auto* c = Leaf(*alerts, "ack", "acknowledge an alert (it stays until its cause is gone)",
                   "fieldstack alerts ack 12", [seq](Session& s) {
                     s.Call("POST", "/api/v1/alerts/" + EscapeSegment(*seq) + "/ack");
                     s.Done("acknowledged alert " + *seq);
                     return 0;
                   });
    c->add_option("seq", *seq, "the alert's number (SEQ in `alerts list`)")->required();
  }
  Leaf(*alerts, "catalogue", "every alert the box can raise, with what to do",
       "fieldstack alerts catalogue", [](Session& s) {
         json r = s.Get("/api/v1/alerts/catalogue");
         s.Show(r, [&] {
           Table t({"ALERT", "CATEGORY", "SEVERITY", "TITLE", "ACTION"});
           for (const auto& a : Field(r, "alerts")) {
             t.Add({Text(a, "id"), Text(a, "category"), Text(a, "severity"), Text(a, "title"),
                    Text(a, "action")});
           }
           t.Print();
         });
         return 0;
       });
}

void PrintLog(const std::string& kind, const json& entries) {
  if (kind == "audit") {
    Table t({"TIME", "OP", "SHARE", "PATH", "USER", "VIA"});
    for (const auto& e : entries) {
      std::string path = Text(e, "path");
      if (Field(e, "old_path").is_string()) path = Text(e, "old_path") + " -> " + path;
      t.Add({Time(e, "time"), Text(e, "op"), Text(e, "share"), path, Text(e, "user"),
             Text(e, "via")});
    }
    t.Print();
    return;
  }
  if (kind == "api") {
    Table t({"TIME", "USER", "METHOD", "PATH", "STATUS", "PEER"});
    for (const auto& e : entries) {
      t.Add({Time(e, "time"), Text(e, "user"), Text(e, "method"), Text(e, "path"),
             Text(e, "status"), Text(e, "peer")});
    }
    t.Print();
    return;
  }
  Table t({"TIME", "RESULT", "PATH", "SIZE", "DURATION", "CODE", "MESSAGE"});
  for (const auto& e : entries) {
    std::string result = Text(e, "result");
    if (Field(e, "log").is_string()) result = Text(e, "log") + " " + result;
    t.Add({Time(e, "time"), result, Text(e, "path"), Size(e, "size"),
           Text(e, "duration_ms") + " ms", Text(e, "code"), Text(e, "message")});
  }
  t.Print();
}

void AddLogCommands(CLI::App& app) {
  auto* logs = Noun(app, "logs", "the box's logs, newest first");
  struct Kind {
    const char* name;
    const char* what;
    const char* example;
  };
  for (const Kind& k : {
           Kind{"copy", "each upload of each file (per share)",
                "fieldstack logs copy --share ingest --result failed"},
           Kind{"refresh", "what each refresh from the cloud did to each file",
                "fieldstack logs refresh --share ingest"},
           Kind{"errors", "failed uploads and refreshes with their error codes",
                "fieldstack logs errors --share ingest --limit 20"},
           Kind{"audit", "file changes on the shares: who, what, when, via SMB/NFS",
                "fieldstack logs audit --share ingest --path reports/"},
           Kind{"api", "management API calls that changed something (admin)",
                "fieldstack logs api --limit 50"},
       }) {
    struct Opts {
      std::string share, result, path;
      bool errors = false;
      int64_t limit = 100, offset = 0;
    };
    auto o = std::make_shared<Opts>();
    std::string kind = k.name;
    auto* c = Leaf(*logs, k.name, k.what, k.example, [o, kind](Session& s) {
      std::string which = o->errors ? "errors" : kind;
      json r = s.Get("/api/v1/logs/" + which, {{"share", o->share},
                                               {"result", o->result},
                                               {"path", o->path},
                                               {"limit", std::to_string(o->limit)},
                                               {"offset", std::to_string(o->offset)}});
      s.Show(r, [&] {
        PrintLog(which, Field(r, "entries"));
        if (!Field(r, "next_offset").is_null()) {
          std::fprintf(stderr, "more: --offset %s\n", Text(r, "next_offset").c_str());
        }
      });
      return 0;
    });
    c->add_option("--share", o->share, "only this share");
    if (kind == "copy" || kind == "refresh") {
      c->add_flag("--errors", o->errors, "the errors log instead (failures only)");
    }
    c->add_option("--result", o->result, "only entries with this result (uploaded, failed, ...)");
    c->add_option("--path", o->path, "only paths starting with this");
    c->add_option("--limit", o->limit, "at most this many entries (1-1000, default 100)");
    c->add_option("--offset", o->offset, "skip this many matching entries (paging)");
  }
}

// ---- diagnostics, support, jobs ----

void PrintJobs(const json& list) {
  Table t({"ID", "KIND", "STATE", "PROGRESS", "BY", "CREATED", "MESSAGE"});
  for (const auto& j : list) {
    std::string msg = Text(j, "state") == "failed" ? Text(j, "error") : Text(j, "message");
    t.Add({Text(j, "id"), Text(j, "kind"), Text(j, "state"),
           std::to_string(static_cast<int>(Num(j, "progress") * 100)) + "%", Text(j, "created_by"),
           Time(j, "created"), msg});
  }
  t.Print();
}

void AddJobCommands(CLI::App& app) {
  Leaf(app, "diagnostics", "run the box's checks (disk, memory, certificate, cloud, services)",
       "fieldstack diagnostics", [](Session& s) {
         json r = s.Call("POST", "/api/v1/diagnostics");
         json job = WaitJob(s, Text(r, "job"));
         bool failed = false;
         const json& checks = Field(Field(job, "result"), "checks");
         for (const auto& c : checks) failed |= Text(c, "status") == "fail";
         s.Show(job, [&] {
           Table t({"CHECK", "STATUS", "DETAIL"});
           for (const auto& c : checks) {
             t.Add({Text(c, "id"), Text(c, "status"), Text(c, "detail")});
           }
           t.Print();
           bool header = false;
           for (const auto& c : checks) {
             if (Text(c, "status") == "pass" || Text(c, "advice") == "-") continue;
             if (!header) std::printf("\nAdvice:\n");
             header = true;
             std::printf("  %s: %s\n", Text(c, "id").c_str(), Text(c, "advice").c_str());
           }
         });
         int rc = JobExit(job);
         if (rc != 0) return rc;
         if (failed) {
           std::fprintf(stderr, "fieldstack: some checks failed\n");
           return 1;
         }
         return 0;
       });
  {
    auto out = std::make_shared<std::string>();
    auto* c = Leaf(
        app, "support-package",
        "make a support package (logs, settings, diagnostics; secrets removed) and "
        "download it",
        "fieldstack support-package --out support.tar.zst", [out](Session& s) {
          json r = s.Call("POST", "/api/v1/support-package");
          json job = WaitJob(s, Text(r, "job"));
          if (int rc = JobExit(job); rc != 0) return rc;
          std::string dest = *out;
          if (dest.empty()) dest = Text(Field(job, "result"), "file");
          if (dest.empty() || dest == "-") dest = "fieldstack-support.tar.zst";
          auto d = s.client().Download(
              "/api/v1/jobs/" + EscapeSegment(Text(job, "id")) + "/download", dest);
          if (!d.ok()) Die(ExitCodeOfStatus(d.status()), d.status().message());
          if (!d->ok()) s.Fail(*d);
          s.Show(json{{"job", job}, {"path", dest}, {"size_bytes", d->body["size_bytes"]}}, [&] {
            std::printf("%s (%s)\n", dest.c_str(), Size(d->body, "size_bytes").c_str());
          });
          return 0;
        });
    c->add_option("--out", *out, "where to save it (default: its name, in this directory)")
        ->type_name("FILE");
  }
  auto* uploads = Noun(app, "uploads", "the upload queue of the running box");
  {
    auto no_wait = std::make_shared<bool>(false);
    auto* c = Leaf(*uploads, "drain",
                   "wait until every file waiting for upload is uploaded (the daemon keeps "
                   "running; `fieldstack drain` is the offline one)",
                   "fieldstack uploads drain", [no_wait](Session& s) {
                     json r = s.Call("POST", "/api/v1/drain");
                     if (*no_wait) {
                       s.Show(r, [&] { std::printf("%s\n", Text(r, "job").c_str()); });
                       return 0;
                     }
                     json job = WaitJob(s, Text(r, "job"));
                     s.Show(job, [&] {
                       if (Text(job, "state") == "succeeded") {
                         std::printf("uploaded %s files; none wait\n",
                                     Text(Field(job, "result"), "uploaded").c_str());
                       }
                     });
                     return JobExit(job);
                   });
    c->add_flag("--no-wait", *no_wait, "print the job id and return");
  }
  auto* jobs = Noun(app, "jobs", "long operations: refreshes, diagnostics, support packages");
  Leaf(*jobs, "list", "recent jobs, newest first", "fieldstack jobs list", [](Session& s) {
    json r = s.Get("/api/v1/jobs");
    s.Show(r, [&] { PrintJobs(Field(r, "jobs")); });
    return 0;
  });
  {
    auto id = std::make_shared<std::string>();
    auto* c = Leaf(*jobs, "show", "one job's state, progress and result",
                   "fieldstack jobs show job-0123456789ab", [id](Session& s) {
                     json j = s.Get("/api/v1/jobs/" + EscapeSegment(*id));
                     s.Show(j, [&] {
                       Fields f;
                       JobFields(f, j);
                       f.Print();
                       if (!Field(j, "result").is_null()) {
                         std::printf("\n%s\n", j["result"].dump(2).c_str());
                       }
                     });
                     return 0;
                   });
    c->add_option("id", *id, "the job id")->required();
  }
  {
    auto id = std::make_shared<std::string>();
    auto* c = Leaf(*jobs, "cancel", "ask a running job to stop",
                   "fieldstack jobs cancel job-0123456789ab", [id](Session& s) {
                     json r = s.Call("POST", "/api/v1/jobs/" + EscapeSegment(*id) + "/cancel");
                     s.Show(r, [&] { std::printf("cancelling %s\n", id->c_str()); });
                     return 0;
                   });
    c->add_option("id", *id, "the job id")->required();
  }
  {
    auto id = std::make_shared<std::string>();
    auto* c = Leaf(*jobs, "wait", "wait for a job to finish (exit 4 if it failed or was cancelled)",
                   "fieldstack jobs wait job-0123456789ab", [id](Session& s) {
                     json j = WaitJob(s, *id);
                     s.Show(j, [&] {
                       Fields f;
                       JobFields(f, j);
                       f.Print();
                     });
                     return JobExit(j);
                   });
    c->add_option("id", *id, "the job id")->required();
  }
}

// ---- certificate, encryption, power ----

void PrintCertificate(const json& c) {
  Fields f;
  f.Add("Subject", Text(c, "subject"));
  f.Add("Issuer", Text(c, "issuer"));
  f.Add("Names", Text(c, "names"));
  f.Add("Valid from", Time(c, "not_before") + " UTC");
  f.Add("Valid until", Time(c, "not_after") + " UTC");
  f.Add("SHA-256", Text(c, "sha256_fingerprint"));
  f.Add("Self-signed", Text(c, "self_signed"));
  f.Add("Key", Text(c, "key_type"));
  f.Add("Used by", Text(c, "in_use_by"));
  f.Print();
}

void AddAdminCommands(CLI::App& app) {
  auto* cert = Noun(app, "cert", "the box's TLS certificate (API, UI, S3, Blob)");
  Leaf(*cert, "show", "the certificate in use", "fieldstack cert show", [](Session& s) {
    json r = s.Get("/api/v1/certificates");
    s.Show(r, [&] { PrintCertificate(r); });
    return 0;
  });
  {
    struct Opts {
      std::string cert, key, chain, pfx, pfx_password_file;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(
        *cert, "upload", "install a certificate: PEM files, or a PFX (PKCS#12)",
        "fieldstack cert upload --cert box.pem --key box.key --chain ca.pem", [o](Session& s) {
          json body = json::object();
          if (!o->pfx.empty()) {
            if (!o->cert.empty() || !o->key.empty()) {
              Die(2, "give --cert and --key, or --pfx, not both");
            }
            body["pfx_base64"] = Base64(ReadFileOrDie(o->pfx, "--pfx"));
            if (!o->pfx_password_file.empty()) {
              body["pfx_password"] = ReadSecretFile(o->pfx_password_file, "--pfx-password-file");
            }
          } else {
            if (o->cert.empty() || o->key.empty()) {
              Die(2, "give --cert and --key (PEM), or --pfx");
            }
            body["cert_pem"] = ReadFileOrDie(o->cert, "--cert");
            body["key_pem"] = ReadFileOrDie(o->key, "--key");
            if (!o->chain.empty()) body["chain_pem"] = ReadFileOrDie(o->chain, "--chain");
          }
          json r = s.Call("PUT", "/api/v1/certificates", body);
          s.Show(r, [&] { PrintCertificate(r); });
          return 0;
        });
    c->add_option("--cert", o->cert, "PEM certificate")->type_name("FILE");
    c->add_option("--key", o->key, "PEM private key")->type_name("FILE");
    c->add_option("--chain", o->chain, "PEM intermediate certificates")->type_name("FILE");
    c->add_option("--pfx", o->pfx, "PFX / PKCS#12 file with the key and chain")->type_name("FILE");
    c->add_option("--pfx-password-file", o->pfx_password_file, "file holding the PFX password")
        ->type_name("FILE");
  }
  Leaf(*cert, "regenerate", "replace the certificate with a new self-signed one",
       "fieldstack cert regenerate", [](Session& s) {
         json r = s.Call("POST", "/api/v1/certificates/regenerate");
         s.Show(r, [&] { PrintCertificate(r); });
         return 0;
       });

  auto* enc = Noun(app, "encryption", "encryption at rest and the master key");
  Leaf(*enc, "show", "whether data is encrypted and the master key's id",
       "fieldstack encryption show", [](Session& s) {
         json r = s.Get("/api/v1/encryption");
         s.Show(r, [&] {
           Fields f;
           f.Add("Encryption", Text(r, "enabled") == "yes" ? "on" : "off");
           f.Add("Master key id", Text(r, "master_key_id"));
           f.Add("From a passphrase", Text(r, "passphrase"));
           f.Print();
         });
         return 0;
       });
  Leaf(*enc, "rotate", "make a new master key and re-wrap every file key",
       "fieldstack encryption rotate", [](Session& s) {
         json r = s.Call("POST", "/api/v1/encryption/rotate");
         s.Show(r, [&] {
           std::printf(
               "master key rotated; new key id %s\nsave the new recovery key: "
               "fieldstack encryption recovery-key --out FILE\n",
               Text(r, "master_key_id").c_str());
         });
         return 0;
       });
  {
    auto out = std::make_shared<std::string>();
    auto* c =
        Leaf(*enc, "recovery-key",
             "download the master key file (keep it offline: it decrypts the box's data)",
             "fieldstack encryption recovery-key --out /media/usb/box.key", [out](Session& s) {
               auto d = s.client().Download("/api/v1/encryption/recovery-key", *out);
               if (!d.ok()) Die(ExitCodeOfStatus(d.status()), d.status().message());
               if (!d->ok()) s.Fail(*d);
               s.Show(d->body,
                      [&] { std::printf("recovery key saved to %s (mode 0600)\n", out->c_str()); });
               return 0;
             });
    c->add_option("--out", *out, "where to save it")->required()->type_name("FILE");
  }

  auto* power = Noun(app, "power", "restart or shut down the daemon or the host");
  for (const char* action : {"restart", "shutdown"}) {
    struct Opts {
      bool host = false, yes = false;
    };
    auto o = std::make_shared<Opts>();
    std::string act = action;
    auto* c =
        Leaf(*power, action,
             act == "restart" ? "restart the daemon (--host: reboot the machine)"
                              : "stop the daemon (--host: power off the machine)",
             "fieldstack power " + act + " --yes", [o, act](Session& s) {
               if (!o->yes) {
                 Die(2, act + " interrupts every share and upload: add --yes to confirm");
               }
               json r = s.Call("POST", "/api/v1/power",
                               {{"action", act}, {"scope", o->host ? "host" : "daemon"}});
               s.Show(r, [&] {
                 std::printf("%s of the %s asked\n", act.c_str(), o->host ? "host" : "daemon");
               });
               return 0;
             });
    c->add_flag("--host", o->host, "the whole machine ([device] host_power must allow it)");
    c->add_flag("--yes,-y", o->yes, "confirm");
  }
}

// ---- compute: pipelines, modules and models ----

// A TOML node as JSON, as the daemon reads [[pipelines]] tables (daemon/config.cc): dates and
// times become their TOML text.
json TomlToJson(const toml::node& n) {
  if (const toml::table* t = n.as_table()) {
    json o = json::object();
    for (auto& [k, v] : *t) o[std::string(k.str())] = TomlToJson(v);
    return o;
  }
  if (const toml::array* a = n.as_array()) {
    json arr = json::array();
    for (const toml::node& e : *a) arr.push_back(TomlToJson(e));
    return arr;
  }
  if (n.is_string()) return n.as_string()->get();
  if (n.is_integer()) return n.as_integer()->get();
  if (n.is_floating_point()) return n.as_floating_point()->get();
  if (n.is_boolean()) return n.as_boolean()->get();
  std::ostringstream out;
  n.visit([&](auto&& v) { out << v; });
  return out.str();
}

// A pipeline declaration from `path`: JSON (an object), or TOML (*.toml) in the form of the
// config file, either the table's fields at the top or one [[pipelines]] table.
json ReadDeclaration(const std::string& path) {
  std::string text = ReadFileOrDie(path, "--file");
  if (path.ends_with(".toml")) {
    toml::table root;
    try {
      root = toml::parse(text, path);
    } catch (const toml::parse_error& e) {
      Die(2, path + ": line " + std::to_string(e.source().begin.line) + ": " +
                 std::string(e.description()));
    }
    if (const toml::array* list = root["pipelines"].as_array()) {
      if (root.size() != 1 || list->size() != 1 || !list->front().is_table()) {
        Die(2, path + ": give one [[pipelines]] table, or the declaration's fields at the top");
      }
      return TomlToJson(list->front());
    }
    return TomlToJson(root);
  }
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded() || !doc.is_object()) {
    Die(2, path + ": not a JSON object (a .toml file is read as TOML)");
  }
  return doc;
}

// Nanoseconds since the Unix epoch as "2024-05-01 10:00:00" (UTC); 0 as "-".
std::string NsTime(const json& j, const char* key) {
  const json& v = Field(j, key);
  if (!v.is_number() || v.get<double>() <= 0) return "-";
  auto secs = static_cast<time_t>(v.get<double>() / 1e9);
  std::tm tm{};
  ::gmtime_r(&secs, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d %H:%M:%S", &tm);
  return buf;
}

void PrintPipelines(const json& list) {
  Table t({"NAME", "TRIGGER", "ENABLED", "PENDING", "DEAD", "RUNS OK", "FAILED", "LAST RUN",
           "LAST ERROR"});
  for (const auto& p : list) {
    const json& st = Field(p, "status");
    t.Add({Text(p, "name"), Text(p, "trigger"), Text(p, "enabled"), Text(st, "pending"),
           Text(st, "dead_letters"), Text(st, "runs_ok"), Text(st, "runs_failed"),
           NsTime(st, "last_run_ns"), Text(st, "last_error")});
  }
  t.Print();
}

void PrintPipeline(const json& p) {
  Fields f;
  f.Add("Name", Text(p, "name"));
  f.Add("Enabled", Text(p, "enabled"));
  f.Add("Trigger", Text(p, "trigger"));
  const json& st = Field(p, "status");
  if (st.is_object()) {
    f.Add("Pending", Text(st, "pending"));
    f.Add("Dead letters", Text(st, "dead_letters"));
    f.Add("Buffered messages", Text(st, "buffered_messages"));
    f.Add("Runs ok", Text(st, "runs_ok"));
    f.Add("Runs failed", Text(st, "runs_failed"));
    f.Add("Rows in", Text(st, "rows_in"));
    f.Add("Rows out", Text(st, "rows_out"));
    f.Add("Last run", NsTime(st, "last_run_ns"));
    f.Add("Last error", Text(st, "last_error"));
  }
  f.Print();
  std::printf("Declaration:\n%s\n",
              Field(p, "declaration").dump(2, ' ', false, json::error_handler_t::replace).c_str());
}

std::string PipelinePath(const std::string& name) {
  return "/api/v1/pipelines/" + EscapeSegment(name);
}

// A model's inputs or outputs as "name:type[d0,d1]", comma-separated; a dynamic dimension
// (-1) shows as "?".
std::string TensorsText(const json& list) {
  std::string out;
  if (!list.is_array()) return "-";
  for (const auto& t : list) {
    std::string dims;
    for (const auto& d : Field(t, "shape")) {
      bool dynamic = d.is_number() && d.get<double>() < 0;
      dims += (dims.empty() ? "" : ",") + (dynamic ? std::string("?") : Text(d));
    }
    out += (out.empty() ? "" : ", ") + Text(t, "name") + ":" + Text(t, "type") + "[" + dims + "]";
  }
  return out.empty() ? "-" : out;
}

void PrintModels(const json& list) {
  Table t({"NAME", "VERSION", "SIZE", "CREATED", "INPUTS", "OUTPUTS", "SHA256"});
  for (const auto& m : list) {
    t.Add({Text(m, "name"), Text(m, "version"), Size(m, "size_bytes"), NsTime(m, "created_ns"),
           TensorsText(Field(m, "inputs")), TensorsText(Field(m, "outputs")), Text(m, "sha256")});
  }
  t.Print();
}

void PrintModelVersion(const json& m) {
  Fields f;
  f.Add("Name", Text(m, "name"));
  f.Add("Version", Text(m, "version"));
  f.Add("Size", Size(m, "size_bytes"));
  f.Add("Created", NsTime(m, "created_ns"));
  f.Add("SHA256", Text(m, "sha256"));
  f.Add("Inputs", TensorsText(Field(m, "inputs")));
  f.Add("Outputs", TensorsText(Field(m, "outputs")));
  f.Print();
}

std::string ModelPath(const std::string& name) { return "/api/v1/models/" + EscapeSegment(name); }

// The most a model file sent in the body can have: its base64 and the JSON around it must fit
// the API's 1 MiB body limit (management/api.h).
constexpr size_t kMaxUploadBodyBytes = 1 << 20;
constexpr size_t kUploadEnvelopeBytes = sizeof(R"({"content_base64":""})") - 1;

void AddComputeCommands(CLI::App& app) {
  auto* compute =
      Noun(app, "compute", "edge compute: the module sandbox, the inference runtime and MQTT");
  Leaf(*compute, "status",
       "the module sandbox, the inference runtime, the MQTT broker and client, the pipelines",
       "fieldstack compute status", [](Session& s) {
         json r = s.Get("/api/v1/compute");
         s.Show(r, [&] {
           const json& m = Field(r, "mqtt");
           Fields f;
           f.Add("Sandbox", Text(r, "sandbox"));
           f.Add("Inference", Text(r, "inference"));
           f.Add("Pipelines", Text(r, "pipelines"));
           f.Add("MQTT broker", Text(m, "broker"));
           if (Field(m, "running").is_boolean()) {
             f.Add("Broker running", Text(m, "running"));
             f.Add("Broker port", Text(m, "port"));
             f.Add("Broker TLS port", Num(m, "tls_port") > 0 ? Text(m, "tls_port") : "-");
             f.Add("Broker restarts", Text(m, "restarts"));
             if (Field(m, "last_error").is_string()) f.Add("Broker error", Text(m, "last_error"));
           }
           if (Field(m, "client_connected").is_boolean()) {
             f.Add("Client connected", Text(m, "client_connected"));
             f.Add("Messages received", Text(m, "messages_received"));
             f.Add("Messages published", Text(m, "messages_published"));
             f.Add("Topics", Text(m, "topics"));
           }
           f.Print();
         });
         return 0;
       });

  auto* pipeline = Noun(app, "pipeline", "edge compute pipelines, their runs and dead letters");
  Leaf(*pipeline, "list", "the pipelines with their trigger and counters",
       "fieldstack pipeline list", [](Session& s) {
         json r = s.Get("/api/v1/pipelines");
         s.Show(r, [&] { PrintPipelines(Field(r, "pipelines")); });
         return 0;
       });
  {
    auto name = std::make_shared<std::string>();
    auto* c = Leaf(*pipeline, "show", "one pipeline's counters and declaration",
                   "fieldstack pipeline show sensors", [name](Session& s) {
                     json r = s.Get(PipelinePath(*name));
                     s.Show(r, [&] { PrintPipeline(r); });
                     return 0;
                   });
    c->add_option("name", *name, "the pipeline")->required();
  }
  {
    auto file = std::make_shared<std::string>();
    auto* c = Leaf(*pipeline, "create", "make a pipeline from a declaration (JSON or TOML)",
                   "fieldstack pipeline create --file sensors.toml", [file](Session& s) {
                     json r = s.Call("POST", "/api/v1/pipelines", ReadDeclaration(*file));
                     s.Show(r, [&] {
                       std::printf("created pipeline '%s' (%s trigger)\n", Text(r, "name").c_str(),
                                   Text(r, "trigger").c_str());
                     });
                     return 0;
                   });
    c->add_option("--file,-f", *file,
                  "the declaration: a JSON object, or TOML (*.toml) like a [[pipelines]] table "
                  "of the config file")
        ->required()
        ->type_name("FILE");
  }
  {
    struct Opts {
      std::string name, file;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(*pipeline, "update", "replace a pipeline's declaration (JSON or TOML)",
                   "fieldstack pipeline update sensors --file sensors.toml", [o](Session& s) {
                     json r = s.Call("PUT", PipelinePath(o->name), ReadDeclaration(o->file));
                     s.Show(r, [&] { std::printf("replaced pipeline '%s'\n", o->name.c_str()); });
                     return 0;
                   });
    c->add_option("name", o->name, "the pipeline")->required();
    c->add_option("--file,-f", o->file, "the new declaration (its name, if any, must match)")
        ->required()
        ->type_name("FILE");
  }
  {
    auto name = std::make_shared<std::string>();
    auto* c = Leaf(*pipeline, "delete", "delete a pipeline (its runs and dead letters are kept)",
                   "fieldstack pipeline delete sensors", [name](Session& s) {
                     s.Call("DELETE", PipelinePath(*name));
                     s.Done("deleted pipeline '" + *name + "'");
                     return 0;
                   });
    c->add_option("name", *name, "the pipeline")->required();
  }
  {
    auto name = std::make_shared<std::string>();
    auto* c = Leaf(*pipeline, "run",
                   "run a schedule pipeline now (a file pipeline: queue its dead letters again)",
                   "fieldstack pipeline run nightly-report", [name](Session& s) {
                     json r = s.Call("POST", PipelinePath(*name) + "/run");
                     s.Show(r, [&] { std::printf("queued a run of '%s'\n", name->c_str()); });
                     return 0;
                   });
    c->add_option("name", *name, "the pipeline")->required();
  }
  {
    struct Opts {
      std::string name;
      int64_t limit = 50, before = 0;
    };
    auto o = std::make_shared<Opts>();
    auto* c =
        Leaf(*pipeline, "runs", "a pipeline's runs, newest first",
             "fieldstack pipeline runs sensors", [o](Session& s) {
               json r = s.Get(PipelinePath(o->name) + "/runs",
                              {{"limit", std::to_string(o->limit)},
                               {"before", o->before > 0 ? std::to_string(o->before) : ""}});
               s.Show(r, [&] {
                 Table t({"ID", "STARTED", "RESULT", "ITEM", "DURATION", "ROWS IN", "ROWS OUT",
                          "ERROR"});
                 const json& runs = Field(r, "runs");
                 for (const auto& x : runs) {
                   t.Add({Text(x, "id"), NsTime(x, "started_ns"), Text(x, "result"),
                          Text(x, "item"), Text(x, "duration_ms") + " ms", Text(x, "rows_in"),
                          Text(x, "rows_out"), Text(x, "error")});
                 }
                 t.Print();
                 if (runs.is_array() && static_cast<int64_t>(runs.size()) == o->limit) {
                   std::fprintf(stderr, "more: --before %s\n", Text(runs.back(), "id").c_str());
                 }
               });
               return 0;
             });
    c->add_option("name", o->name, "the pipeline")->required();
    c->add_option("--limit", o->limit, "at most this many runs (1-1000, default 50)");
    c->add_option("--before", o->before, "only runs older than this id (paging)");
  }
  {
    struct Opts {
      std::string name;
      int64_t limit = 100;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(*pipeline, "dead-letters", "work that failed every attempt, oldest first",
                   "fieldstack pipeline dead-letters sensors", [o](Session& s) {
                     json r = s.Get(PipelinePath(o->name) + "/dead-letters",
                                    {{"limit", std::to_string(o->limit)}});
                     s.Show(r, [&] {
                       Table t({"ID", "FAILED", "ATTEMPTS", "ITEM", "ERROR"});
                       for (const auto& d : Field(r, "dead_letters")) {
                         t.Add({Text(d, "id"), NsTime(d, "failed_ns"), Text(d, "attempts"),
                                Text(d, "item"), Text(d, "error")});
                       }
                       t.Print();
                     });
                     return 0;
                   });
    c->add_option("name", o->name, "the pipeline")->required();
    c->add_option("--limit", o->limit, "at most this many (1-1000, default 100)");
  }
  for (bool retry : {true, false}) {
    struct Opts {
      std::string name, id;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(
        *pipeline, retry ? "retry" : "discard",
        retry ? "queue a dead letter's work again" : "drop a dead letter (its work is not done)",
        std::string("fieldstack pipeline ") + (retry ? "retry" : "discard") + " sensors 17",
        [o, retry](Session& s) {
          std::string path = PipelinePath(o->name) + "/dead-letters/" + EscapeSegment(o->id);
          if (retry) {
            json r = s.Call("POST", path + "/retry");
            s.Show(r, [&] { std::printf("queued dead letter %s again\n", o->id.c_str()); });
          } else {
            s.Call("DELETE", path);
            s.Done("discarded dead letter " + o->id);
          }
          return 0;
        });
    c->add_option("name", o->name, "the pipeline")->required();
    c->add_option("id", o->id, "the dead letter (ID in `pipeline dead-letters`)")->required();
  }

  auto* module = Noun(app, "module", "programs that pipelines' module steps run in the sandbox");
  Leaf(*module, "list", "the stored modules", "fieldstack module list", [](Session& s) {
    json r = s.Get("/api/v1/modules");
    s.Show(r, [&] {
      Table t({"NAME", "SIZE", "MODIFIED", "SHA256"});
      for (const auto& m : Field(r, "modules")) {
        t.Add(
            {Text(m, "name"), Size(m, "size_bytes"), NsTime(m, "modified_ns"), Text(m, "sha256")});
      }
      t.Print();
    });
    return 0;
  });
  {
    struct Opts {
      std::string name, file;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(*module, "upload", "store a module (an executable; replaces one of that name)",
                   "fieldstack module upload clean.py --file ./clean.py", [o](Session& s) {
                     std::string content = ReadFileOrDie(o->file, "--file");
                     if (content.empty()) Die(2, "--file: " + o->file + " is empty");
                     json r = s.Call("PUT", "/api/v1/modules/" + EscapeSegment(o->name),
                                     {{"content_base64", Base64(content)}});
                     s.Show(r, [&] {
                       std::printf("stored module '%s' (%s, sha256 %s)\n", o->name.c_str(),
                                   Size(r, "size_bytes").c_str(), Text(r, "sha256").c_str());
                     });
                     return 0;
                   });
    c->add_option("name", o->name, "the module's name (what module steps name)")->required();
    c->add_option("--file,-f", o->file, "the program (at most about 768 KiB)")
        ->required()
        ->type_name("FILE");
  }
  {
    auto name = std::make_shared<std::string>();
    auto* c = Leaf(*module, "delete", "delete a module no pipeline uses",
                   "fieldstack module delete clean.py", [name](Session& s) {
                     s.Call("DELETE", "/api/v1/modules/" + EscapeSegment(*name));
                     s.Done("deleted module '" + *name + "'");
                     return 0;
                   });
    c->add_option("name", *name, "the module")->required();
  }

  auto* model = Noun(app, "model", "ONNX models that pipelines' infer and anonymize steps run");
  Leaf(*model, "list", "every version of every registered model, with its inputs and outputs",
       "fieldstack model list", [](Session& s) {
         json r = s.Get("/api/v1/models");
         s.Show(r, [&] { PrintModels(Field(r, "models")); });
         return 0;
       });
  {
    auto name = std::make_shared<std::string>();
    auto* c = Leaf(*model, "show", "one model's versions, oldest first",
                   "fieldstack model show blazeface", [name](Session& s) {
                     json r = s.Get(ModelPath(*name));
                     s.Show(r, [&] {
                       bool first = true;
                       for (const auto& v : Field(r, "versions")) {
                         if (!first) std::printf("\n");
                         first = false;
                         PrintModelVersion(v);
                       }
                     });
                     return 0;
                   });
    c->add_option("name", *name, "the model")->required();
  }
  // upload: the file from this machine, in the body; register: a file already on the box.
  for (bool upload : {true, false}) {
    struct Opts {
      std::string name, file;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(
        *model, upload ? "upload" : "register",
        upload ? "register the next version of a model from an .onnx file here (at most about "
                 "768 KiB)"
               : "register the next version of a model from an .onnx file on the box",
        upload ? "fieldstack model upload blazeface --file ./face_detection_front.onnx"
               : "fieldstack model register blazeface --path /srv/models/face_detection_front.onnx",
        [o, upload](Session& s) {
          json body;
          if (upload) {
            std::string content = ReadFileOrDie(o->file, "--file");
            if (content.empty()) Die(2, "--file: " + o->file + " is empty");
            size_t b64 = (content.size() + 2) / 3 * 4;
            if (b64 + kUploadEnvelopeBytes > kMaxUploadBodyBytes) {
              Die(2, "--file: " + o->file + " is " + std::to_string(content.size()) +
                         " bytes, more than an upload can carry (about 768 KiB); copy it to the "
                         "box and use `fieldstack model register " +
                         o->name + " --path PATH_ON_BOX`");
            }
            body = {{"content_base64", Base64(content)}};
          } else {
            body = {{"path", o->file}};
          }
          json r = s.Call("POST", ModelPath(o->name), body);
          s.Show(r, [&] {
            std::printf("registered model '%s' version %s (%s, sha256 %s)\n",
                        Text(r, "name").c_str(), Text(r, "version").c_str(),
                        Size(r, "size_bytes").c_str(), Text(r, "sha256").c_str());
            std::printf("inputs:  %s\noutputs: %s\n", TensorsText(Field(r, "inputs")).c_str(),
                        TensorsText(Field(r, "outputs")).c_str());
          });
          return 0;
        });
    c->add_option("name", o->name,
                  "the model's name (what steps name): 1 to 63 of a-z, 0-9, '.', '_', '-'")
        ->required();
    if (upload) {
      c->add_option("--file,-f", o->file, "the .onnx file on this machine")
          ->required()
          ->type_name("FILE");
    } else {
      c->add_option("--path", o->file, "the .onnx file's absolute path on the box (copied in)")
          ->required()
          ->type_name("PATH");
    }
  }
  {
    struct Opts {
      std::string name, version;
    };
    auto o = std::make_shared<Opts>();
    auto* c = Leaf(*model, "delete", "delete one version of a model no pipeline uses",
                   "fieldstack model delete blazeface 1", [o](Session& s) {
                     s.Call("DELETE", ModelPath(o->name) + "/" + EscapeSegment(o->version));
                     s.Done("deleted model '" + o->name + "' version " + o->version);
                     return 0;
                   });
    c->add_option("name", o->name, "the model")->required();
    c->add_option("version", o->version, "the version (VERSION in `model list`)")->required();
  }
}

}  // namespace

void AddClientCommands(CLI::App& app) {
  std::string footer = app.get_footer();
  app.footer((footer.empty() ? "" : footer + "\n\n") +
             "Client commands talk to a box's REST API: sign in once with `fieldstack login`.\n" +
             kExitCodes);
  AddSignInCommands(app);
  AddDeviceCommands(app);
  AddShareCommands(app);
  AddUserCommands(app);
  AddKeyCommands(app);
  AddAccountCommands(app);
  AddScheduleCommands(app);
  AddAlertCommands(app);
  AddLogCommands(app);
  AddJobCommands(app);
  AddAdminCommands(app);
  AddComputeCommands(app);
}

std::optional<int> RunClientCommand() {
  const Command* cmd = nullptr;
  for (const auto& c : Commands()) {
    if (c.app->parsed()) cmd = &c;
  }
  if (cmd == nullptr) return std::nullopt;
  try {
    SavedLogin saved = LoadSavedLogin();
    auto env = [](const char* name) {
      const char* v = std::getenv(name);
      return std::string(v == nullptr ? "" : v);
    };
    ClientOptions o;
    o.server = g_options.server;
    if (o.server.empty()) o.server = saved.server;
    if (o.server.empty()) o.server = env("FIELDSTACK_SERVER");
    if (o.server.empty()) o.server = kDefaultServer;
    while (o.server.ends_with("/")) o.server.pop_back();
    // What was saved belongs to the saved server only.
    bool same_box = !saved.server.empty() && saved.server == o.server;
    o.ca_file = g_options.cacert;
    if (o.ca_file.empty()) o.ca_file = env("FIELDSTACK_CACERT");
    if (o.ca_file.empty() && same_box) o.ca_file = saved.cacert;
    if (!o.ca_file.empty()) {
      std::error_code ec;
      auto abs = std::filesystem::absolute(o.ca_file, ec);
      if (!ec) o.ca_file = abs.string();
      if (!platform::PathExists(o.ca_file)) Die(2, "--cacert: no file " + o.ca_file);
    }
    o.insecure = g_options.insecure || (same_box && saved.insecure && g_options.cacert.empty() &&
                                        env("FIELDSTACK_CACERT").empty());
    o.token = g_options.token;
    if (o.token.empty()) o.token = env("FIELDSTACK_TOKEN");
    if (o.token.empty() && same_box) o.token = saved.token;
    Session session(std::move(o), std::move(saved), g_options.output == "json");
    session.login_hint = cmd->login_hint;
    return cmd->run(session);
  } catch (const ExitCode& e) {
    return e.code;
  }
}

}  // namespace fieldstack::cli
