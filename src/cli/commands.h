#pragma once

// The `fieldstack <noun> <verb>` client commands: each one is a call (or a few) of a box's
// management REST API (/api/v1, src/daemon/api_routes.cc) through ApiClient, printed as an
// aligned table or, with --output json, as the API's JSON. docs/cli.md lists them.
//
// Where a command connects and with what token: --server, else the saved login's server
// (`fieldstack login` saves {server, token, cacert, insecure} in $FIELDSTACK_CLI_CONFIG or
// ~/.config/fieldstack/cli.json, mode 0600), else $FIELDSTACK_SERVER, else
// https://127.0.0.1:8480. The saved token and certificate are used only for the saved server;
// --token and $FIELDSTACK_TOKEN override the token. Passwords never come from the command line:
// --password-file, $FIELDSTACK_PASSWORD, or stdin (no echo on a terminal).
//
// Exit codes: 0 success; 1 the box failed or cannot be reached (5xx, network, TLS); 2 bad usage
// or input refused (400, 404, 409, 413, 422); 3 not signed in or not allowed (401, 403, 429);
// 4 a job finished failed or cancelled.
//
// Thread safety: call from main() only; the commands keep their parsed options in statics.

#include <CLI/CLI.hpp>
#include <optional>

namespace fieldstack::cli {

// Registers the client subcommands (setup, login, share, user, ...) on `app`, and the exit
// codes in its footer. REQUIRES: called once, before app.parse().
void AddClientCommands(CLI::App& app);

// After app.parse(): runs the client command that was parsed and returns its exit code, or
// nullopt when the parsed subcommand is not a client command.
std::optional<int> RunClientCommand();

}  // namespace fieldstack::cli
