#pragma once

// redact: removes personal data from records (docs/compute.md, step "redact").
//
// Two kinds of rules:
//  - Whole-column rules ("columns"): drop the field, mask it ("[redacted]"), replace it with a
//    keyed hash token, or generalize it (round/bucket a number, truncate a time). Null values
//    stay null under mask/hash/generalize. A column a record lacks is ignored.
//  - Detectors scan the text of every other field (strings, and the original text of numbers
//    and bools, so that a phone number a CSV reader inferred as an int is found; such a value
//    becomes a string when something in it is replaced). "skip" names fields not scanned.
//    Matches are masked ("[email]", "[phone]", "[ip]", "[card]", "[<pattern name>]"), hashed
//    ("h:" + 16 hex digits of HMAC-SHA256(hash key, match): the same value gives the same
//    token, so joins still work) or make the record be dropped.
//
// Detectors are hand-written byte scanners, not regular expressions: a field is first
// prescanned once (counting digits, '@', ':' and '.'), and only the detectors that can match
// run, so the common field costs one pass over its bytes. Matches are collected over the
// original text in priority order card, phone, email, ip, patterns; a match that overlaps one
// of a higher-priority detector is ignored; the text is rebuilt once.
//
// What the detectors find (and what they deliberately do not):
//  - email: local@domain.tld. Local part: ASCII letters, digits and .!#$%&'*+/=?^_`{|}~- and
//    any non-ASCII byte (internationalized addresses such as jose.ñ@x.io are found; the cost is
//    that non-ASCII text glued to an address with no space or ASCII punctuation, e.g.
//    "→bob@x.org", is masked with it). Leading '.' and '\'' are not part of it. Domain: labels
//    of letters, digits, '-' and UTF-8 (internationalized domains such as exämple.de), at least
//    one dot, a final label of 2+ ASCII letters (so IDN top-level domains are found only in
//    their punycode form); when non-ASCII text glued after the domain spoils that, the
//    ASCII-only domain is tried ("bob@x.org日本" finds bob@x.org).
//  - phone: a run of digit groups, the groups separated by one space, '.' or '-' (a group may
//    be in parentheses, the run may start with '+'), with 7-15 digits in all; a bare run of
//    digits with no separators and no '+' needs 10-15 digits (so counts and IDs below 10^9 are
//    left alone). Not a phone: a run inside a longer alphanumeric token; a run with a date in
//    it (YYYY-MM-DD, DD.MM.YYYY, MM-DD-YYYY: the date splits the run); a decimal (two groups
//    separated by '.'); four dot-separated groups of at most 3 digits (an IPv4 address); a bare
//    10-digit run starting with 1 (epoch seconds 2001-2033); times (':' is not a separator).
//    A run of more than 15 digits is split at spaces into phones when it has '+', parentheses
//    or mixed separators, or when each space-separated part has 7+ digits ("555-123-4567
//    555-987-6543"); otherwise it is one long number (an account, a Luhn-failing card) and not
//    a phone.
//  - card: 13-19 digits, optionally separated by single spaces or hyphens, passing the Luhn
//    check, not inside a longer alphanumeric token; a bare run of 13, 16 or 19 digits starting
//    with 1 is taken as an epoch timestamp (ms, us, ns), not a card.
//  - ip: IPv4 dotted quads (octets 0-255, 1-3 digits) not inside a longer run of digits and
//    dots ("1.2.3.4.5" is not an address); IPv6 in full or "::"-compressed form, optionally
//    with a trailing dotted quad, at least 2 colons (times such as 13:05:00 and MAC addresses
//    are not valid IPv6).
//  - patterns: user regular expressions (PCRE2, JIT where available) with match and depth
//    limits; a field whose match runs into a limit is treated as matching as a whole (fails
//    closed).
//
// Thread safety: none (a step is used by one run at a time).

#include <memory>
#include <nlohmann/json.hpp>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "compute/step.h"

namespace fieldstack::compute {

// A match of a detector: bytes [begin, end) of the scanned text.
struct TextSpan {
  size_t begin = 0;
  size_t end = 0;
  bool operator==(const TextSpan&) const = default;
};

// The detector scanners, exposed for tests: each appends every match in `text`, in order.
void FindEmails(std::string_view text, std::vector<TextSpan>* out);
void FindPhones(std::string_view text, std::vector<TextSpan>* out);
void FindCards(std::string_view text, std::vector<TextSpan>* out);
void FindIps(std::string_view text, std::vector<TextSpan>* out);
// The Luhn check over the digits of `text` (other bytes are skipped).
bool LuhnValid(std::string_view text);

// Makes the redact step from its declaration; InvalidArgument naming the field ("redact.
// columns[1].action: ...") on any error, including "hash" with an empty ctx.hash_key.
Result<std::unique_ptr<Step>> MakeRedactStep(const nlohmann::json& decl, const StepContext& ctx);

}  // namespace fieldstack::compute
