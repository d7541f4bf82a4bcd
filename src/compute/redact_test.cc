#include "compute/redact.h"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include "compute/io.h"
#include "compute/step.h"
#include "compute/step_test_records.h"
#include "crypto/hash.h"

namespace fieldstack::compute {
namespace {

using json = nlohmann::json;

Value IntText(int64_t i, std::string text) {
  Value v;
  v.SetIntWithText(i, text);
  return v;
}

std::unique_ptr<Step> Make(const json& decl, std::string key = "") {
  StepContext ctx;
  ctx.hash_key = std::move(key);
  auto s = MakeRedactStep(decl, ctx);
  EXPECT_TRUE(s.ok()) << s.status().ToString();
  return s.ok() ? std::move(s).value() : nullptr;
}

// Runs one string through a redact step with `decl` and returns the field's text.
std::string RedactOne(const json& decl, const std::string& text, std::string key = "k") {
  auto step = Make(decl, key);
  Collect c;
  Record r = Rec(MakeSchema({"f"}), {Str(text)});
  EXPECT_TRUE(step->Push(r, c).ok());
  if (c.out.size() != 1) return "<dropped>";
  return FormatValue(c.out[0].values[0]);
}

std::vector<std::string> Texts(std::string_view s, const std::vector<TextSpan>& spans) {
  std::vector<std::string> out;
  for (const TextSpan& t : spans) out.emplace_back(s.substr(t.begin, t.end - t.begin));
  return out;
}

using Finder = void (*)(std::string_view, std::vector<TextSpan>*);
std::vector<std::string> Find(Finder f, std::string_view s) {
  std::vector<TextSpan> spans;
  f(s, &spans);
  return Texts(s, spans);
}

using V = std::vector<std::string>;

bool ValidUtf8(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t n = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
    if (n == 0 || i + n > s.size()) return false;
    for (size_t k = 1; k < n; ++k) {
      if ((static_cast<unsigned char>(s[i + k]) & 0xC0) != 0x80) return false;
    }
    i += n;
  }
  return true;
}

TEST(RedactScannerTest, FindsEmailsInsideText) {
  EXPECT_EQ(Find(FindEmails, "contact bob.smith+x@mail.example.org today"),
            V{"bob.smith+x@mail.example.org"});
  EXPECT_EQ(Find(FindEmails, "<a@b.io>, c.d@e-f.example.com."),
            (V{"a@b.io", "c.d@e-f.example.com"}));
  EXPECT_EQ(Find(FindEmails, "José <jose.ñ@x.io>"), V{"jose.ñ@x.io"});
  EXPECT_EQ(Find(FindEmails, "名前:ann@example.co.uk。"), V{"ann@example.co.uk"});
  EXPECT_EQ(Find(FindEmails, "'quoted@x.org'"), V{"quoted@x.org"});
  EXPECT_EQ(Find(FindEmails, "zoë@exämple.de→"), V{"zoë@exämple.de"});
  EXPECT_EQ(Find(FindEmails, "bob@x.org日本語text"), V{"bob@x.org"});
  EXPECT_EQ(Find(FindEmails, "mailto:o'brien@x.ie"), V{"o'brien@x.ie"});
  // Not emails: no dot, numeric TLD, empty parts, a handle.
  EXPECT_EQ(Find(FindEmails, "user@localhost @handle a@ @b.com x@y.123 x@.com x@y..com"), V{});
  // The domain stops before a bad final label.
  EXPECT_EQ(Find(FindEmails, "bob@mail.example.org.42"), V{"bob@mail.example.org"});
}

TEST(RedactScannerTest, FindsPhones) {
  EXPECT_EQ(Find(FindPhones, "call +1 (555) 123-4567 now"), V{"+1 (555) 123-4567"});
  EXPECT_EQ(Find(FindPhones, "555.123.4567"), V{"555.123.4567"});
  EXPECT_EQ(Find(FindPhones, "+44 20 7946 0958"), V{"+44 20 7946 0958"});
  EXPECT_EQ(Find(FindPhones, "5551234567"), V{"5551234567"});
  EXPECT_EQ(Find(FindPhones, "(555)123-4567"), V{"(555)123-4567"});
  EXPECT_EQ(Find(FindPhones, "tel:555-1234-567,x"), V{"555-1234-567"});
  EXPECT_EQ(Find(FindPhones, "555-123-4567 555-987-6543"), (V{"555-123-4567", "555-987-6543"}));
  EXPECT_EQ(Find(FindPhones, "5551234567 5559876543"), (V{"5551234567", "5559876543"}));
  EXPECT_EQ(Find(FindPhones, "on 2026-11-27 call 555-123-4567"), V{"555-123-4567"});
}

TEST(RedactScannerTest, LeavesDatesDecimalsAndShortNumbersAlone) {
  for (const char* s : {"2026-11-27",
                        "2026-11-27 13:05:00",
                        "2026-11-27T13:05:00Z",
                        "27.11.2026",
                        "13:05:00",
                        "3.14159",
                        "-122.4194155",
                        "37.774929",
                        "1234567",
                        "123456789",
                        "1767225600",
                        "version 1.2.3.4.5",
                        "192.168.100.200",
                        "abc5551234567",
                        "5551234567abc",
                        "id 12 34 56",
                        "4111 1111 1111 1112",
                        "1.5e+10",
                        "12,345,678",
                        "v1.2.3 3.14159",
                        "pi 3.14 2.71 1.41 17.3"}) {
    EXPECT_EQ(Find(FindPhones, s), V{}) << s;
  }
}

TEST(RedactScannerTest, FindsLuhnValidCardsOnly) {
  EXPECT_TRUE(LuhnValid("4111111111111111"));
  EXPECT_FALSE(LuhnValid("4111111111111112"));
  EXPECT_EQ(Find(FindCards, "card 4111 1111 1111 1111."), V{"4111 1111 1111 1111"});
  EXPECT_EQ(Find(FindCards, "5500-0000-0000-0004"), V{"5500-0000-0000-0004"});
  EXPECT_EQ(Find(FindCards, "amex 378282246310005"), V{"378282246310005"});
  EXPECT_EQ(Find(FindCards, "4111111111111112"), V{});
  EXPECT_EQ(Find(FindCards, "4111  1111 1111 1111"), V{});  // double space splits it
  EXPECT_EQ(Find(FindCards, "x4111111111111111"), V{});
  EXPECT_EQ(Find(FindCards, "1767225600000"), V{});  // epoch ms
}

TEST(RedactScannerTest, FindsIpAddresses) {
  EXPECT_EQ(Find(FindIps, "from 10.0.0.1:8080 and 192.168.1.255."),
            (V{"10.0.0.1", "192.168.1.255"}));
  EXPECT_EQ(Find(FindIps, "[2001:db8::8a2e:370:7334]:443"), V{"2001:db8::8a2e:370:7334"});
  EXPECT_EQ(Find(FindIps, "2001:0db8:85a3:0000:0000:8a2e:0370:7334"),
            V{"2001:0db8:85a3:0000:0000:8a2e:0370:7334"});
  EXPECT_EQ(Find(FindIps, "lo ::1 and ::ffff:192.0.2.128"), (V{"::1", "::ffff:192.0.2.128"}));
  EXPECT_EQ(Find(FindIps, "fe80::1ff:fe23:4567:890a%eth0"), V{"fe80::1ff:fe23:4567:890a"});
  for (const char* s : {"1.2.3.4.5", "256.1.1.1", "13:05:00", "00:1a:2b:3c:4d:5e", "std::string",
                        "a1.2.3.4", "1.2.3", "12:30", "2026-11-27T13:05:00Z"}) {
    EXPECT_EQ(Find(FindIps, s), V{}) << s;
  }
}

TEST(RedactStepTest, MasksEveryDetectorByDefault) {
  json d = {{"type", "redact"}};
  EXPECT_EQ(RedactOne(d,
                      "mail bob@x.org, call +1 (555) 123-4567, ip 10.1.2.3, card "
                      "4111-1111-1111-1111"),
            "mail [email], call [phone], ip [ip], card [card]");
  EXPECT_EQ(RedactOne(d, "nothing here 2026-11-27 13:05:00 v1.2.3 3.14159"),
            "nothing here 2026-11-27 13:05:00 v1.2.3 3.14159");
  EXPECT_EQ(RedactOne(d, "→zoë@x.org←"), "[email]←");
}

TEST(RedactStepTest, DetectorsCanBeChosen) {
  json d = {{"type", "redact"}, {"detectors", {"email"}}};
  EXPECT_EQ(RedactOne(d, "bob@x.org 555-123-4567"), "[email] 555-123-4567");
}

TEST(RedactStepTest, ScansTheTextOfNumbers) {
  auto step = Make({{"type", "redact"}});
  auto schema = MakeSchema({"phone", "card", "bad_card", "count", "ts", "temp"});
  Record r =
      Rec(schema, {IntText(5551234567, "5551234567"), IntText(4111111111111111, "4111111111111111"),
                   IntText(4111111111111112, "4111111111111112"), IntText(1234567, "1234567"),
                   IntText(1767225600, "1767225600"), Value::Float(21.5)});
  Collect c;
  ASSERT_TRUE(step->Push(r, c).ok());
  ASSERT_EQ(c.out.size(), 1u);
  const Record& o = c.out[0];
  EXPECT_EQ(o.values[0].type(), Value::Type::kString);
  EXPECT_EQ(o.values[0].text(), "[phone]");
  EXPECT_EQ(o.values[1].text(), "[card]");
  EXPECT_EQ(o.values[2].type(), Value::Type::kInt);  // fails Luhn, > 15 digits: kept
  EXPECT_EQ(o.values[2].as_int(), 4111111111111112);
  EXPECT_EQ(o.values[3].type(), Value::Type::kInt);
  EXPECT_EQ(o.values[4].type(), Value::Type::kInt);
  EXPECT_EQ(o.values[5].as_double(), 21.5);
  // A computed number (no text) is formatted and scanned too.
  Record r2 = Rec(MakeSchema({"n"}), {Value::Int(5551234567)});
  ASSERT_TRUE(step->Push(r2, c).ok());
  EXPECT_EQ(c.out[1].values[0].text(), "[phone]");
}

TEST(RedactStepTest, HashGivesStableKeyedTokens) {
  json d = {{"type", "redact"}, {"action", "hash"}};
  std::string a = RedactOne(d, "from bob@x.org", "key1");
  std::string b = RedactOne(d, "to bob@x.org!", "key1");
  std::string other_key = RedactOne(d, "from bob@x.org", "key2");
  std::string mac = crypto::HmacSha256("key1", "bob@x.org");
  char hex[17];
  for (int i = 0; i < 8; ++i) {
    std::snprintf(hex + 2 * i, 3, "%02x", static_cast<unsigned char>(mac[i]));
  }
  EXPECT_EQ(a, "from h:" + std::string(hex));
  EXPECT_EQ(b, "to h:" + std::string(hex) + "!");
  EXPECT_NE(a, other_key);
  EXPECT_NE(RedactOne(d, "from bob@y.org", "key1"), a);
  // A key longer than SHA-256's block is hashed first, as HMAC specifies.
  std::string long_key(100, 'k');
  std::string mac2 = crypto::HmacSha256(long_key, "bob@x.org");
  for (int i = 0; i < 8; ++i) {
    std::snprintf(hex + 2 * i, 3, "%02x", static_cast<unsigned char>(mac2[i]));
  }
  EXPECT_EQ(RedactOne(d, "bob@x.org", long_key), "h:" + std::string(hex));
}

TEST(RedactStepTest, HashWithoutKeyIsRefused) {
  StepContext ctx;
  auto s = MakeRedactStep({{"type", "redact"}, {"action", "hash"}}, ctx);
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.status().message().find("hash key"), std::string::npos);
  s = MakeRedactStep({{"type", "redact"}, {"columns", {{{"column", "name"}, {"action", "hash"}}}}},
                     ctx);
  EXPECT_FALSE(s.ok());
}

TEST(RedactStepTest, DropActionDropsRecordsWithMatches) {
  auto step = Make({{"type", "redact"}, {"action", "drop"}});
  auto schema = MakeSchema({"note"});
  Collect c;
  for (const char* t : {"clean", "bob@x.org", "also clean", "10.0.0.1"}) {
    Record r = Rec(schema, {Str(t)});
    ASSERT_TRUE(step->Push(r, c).ok());
  }
  ASSERT_EQ(c.out.size(), 2u);
  EXPECT_EQ(c.out[0].values[0].text(), "clean");
  EXPECT_EQ(c.out[1].values[0].text(), "also clean");
}

TEST(RedactStepTest, PatternsAreExtraDetectors) {
  json d = {{"type", "redact"}, {"patterns", {{{"name", "badge"}, {"regex", "B-[0-9]{5}"}}}}};
  EXPECT_EQ(RedactOne(d, "badge B-12345 and B-99999, not B-1"),
            "badge [badge] and [badge], not B-1");
  // A catastrophic pattern hits the match limit and fails closed.
  json bad = {{"type", "redact"},
              {"detectors", json::array()},
              {"patterns", {{{"name", "evil"}, {"regex", "(a+)+$"}}}}};
  EXPECT_EQ(RedactOne(bad, std::string(40, 'a') + "!"), "[evil]");
}

TEST(RedactStepTest, ColumnRules) {
  json d = {{"type", "redact"},
            {"columns",
             {{{"column", "name"}, {"action", "drop"}},
              {{"column", "nick"}, {"action", "mask"}},
              {{"column", "user"}, {"action", "hash"}},
              {{"column", "lat"}, {"action", "generalize"}, {"round", 2}},
              {{"column", "age"}, {"action", "generalize"}, {"bucket", 10}},
              {{"column", "ts"}, {"action", "generalize"}, {"truncate", "month"}},
              {{"column", "ts2"}, {"action", "generalize"}, {"truncate", "hour"}},
              {{"column", "ts3"}, {"action", "generalize"}, {"truncate", "year"}}}},
            {"skip", {"id"}}};
  auto step = Make(d, "key");
  auto schema = MakeSchema({"id", "name", "nick", "user", "lat", "age", "ts", "ts2", "ts3"});
  Collect c;
  Record r = Rec(schema, {IntText(5551234567, "5551234567"), Str("Ann"), Str("annie"), Str("ann01"),
                          Value::Float(37.774929), Value::Int(37), Str("2026-11-27T13:05:00Z"),
                          Str("2026-11-27T13:05:07.5Z"), Str("2026-11-27")});
  ASSERT_TRUE(step->Push(r, c).ok());
  Record r2 = Rec(schema, {Value::Int(1), Str("Bob"), Value(), Str("ann01"), Value::Float(-0.005),
                           Value::Int(-3), Str("2024-02-29T23:59:59Z"), Str("1970-01-01T00:30:00Z"),
                           Str("1969-12-31")});
  ASSERT_TRUE(step->Push(r2, c).ok());
  ASSERT_EQ(c.out.size(), 2u);
  const Record& o = c.out[0];
  EXPECT_EQ(o.schema->names(),
            (std::vector<std::string>{"id", "nick", "user", "lat", "age", "ts", "ts2", "ts3"}));
  EXPECT_EQ(o.schema.get(), c.out[1].schema.get());  // cached per input schema
  EXPECT_EQ(o.values[0].type(), Value::Type::kInt);  // skipped: not scanned
  EXPECT_EQ(o.values[1].text(), "[redacted]");
  EXPECT_EQ(o.values[2].text().substr(0, 2), "h:");
  EXPECT_EQ(o.values[2].text(), c.out[1].values[2].text());
  EXPECT_EQ(FormatValue(o.values[3]), "37.77");
  EXPECT_EQ(FormatValue(o.values[4]), "30");
  EXPECT_EQ(o.values[5].text(), "2026-11-01T00:00:00Z");
  EXPECT_EQ(o.values[6].text(), "2026-11-27T13:00:00Z");
  EXPECT_EQ(o.values[7].text(), "2026-01-01T00:00:00Z");
  const Record& o2 = c.out[1];
  EXPECT_TRUE(o2.values[1].is_null());  // null stays null
  EXPECT_EQ(FormatValue(o2.values[3]), "-0.01");
  EXPECT_EQ(FormatValue(o2.values[4]), "-10");
  EXPECT_EQ(o2.values[5].text(), "2024-02-01T00:00:00Z");
  EXPECT_EQ(o2.values[6].text(), "1970-01-01T00:00:00Z");
  EXPECT_EQ(o2.values[7].text(), "1969-01-01T00:00:00Z");
  // A value generalize cannot read fails the record without quoting the value.
  Record r3 = Rec(schema, {Value::Int(1), Str("x"), Str("x"), Str("x"), Str("secret-place"),
                           Value::Int(1), Str("2026-01-01"), Str("2026-01-01"), Str("2026-01-01")});
  Status s = step->Push(r3, c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("redact.columns[3]"), std::string::npos) << s.message();
  EXPECT_EQ(s.message().find("secret-place"), std::string::npos);
}

// Planted personal values inside adversarial text; none may survive anywhere in the output.
TEST(RedactStepTest, NoPlantedValueSurvives) {
  struct Plant {
    std::string text;              // the field's text
    std::vector<std::string> pii;  // values that must not appear in the output
  };
  std::vector<Plant> plants = {
      {"contact bob.smith+x@mail.example.org today", {"bob.smith", "mail.example.org"}},
      {"José <jose.ñ@x.io>", {"jose.ñ", "@x.io"}},
      {"→zoë@x.org←", {"zoë", "x.org"}},
      {"名前: ann@example.co.uk, 電話 +44 20 7946 0958", {"ann@", "7946 0958", "20 7946"}},
      {"line1,\n\"quoted\", call 555.123.4567\nend", {"555.123.4567", "123.4567"}},
      {"a,\"b\"\r\n+1 (555) 123-4567,", {"(555) 123-4567", "123-4567"}},
      {"server 10.0.0.1:8080 and [2001:db8::8a2e:370:7334]:443",
       {"10.0.0.1", "2001:db8", "8a2e:370:7334"}},
      {"pay 4111 1111 1111 1111 or 5500-0000-0000-0004 or 378282246310005",
       {"4111 1111", "5500-0000", "378282246310005"}},
      {"Ünïcödé→192.168.7.8←日本", {"192.168.7.8"}},
      {"phones: 555-123-4567 555-987-6543; cell:5559876543",
       {"123-4567", "987-6543", "5559876543"}},
      {"fe80::1ff:fe23:4567:890a", {"fe80", "890a"}},
  };
  auto step = Make({{"type", "redact"}});
  auto schema = MakeSchema({"text", "phone_int", "card_int"});
  Collect c;
  for (const Plant& p : plants) {
    Record r = Rec(schema, {Str(p.text), IntText(15551234567, "15551234567"),
                            IntText(5500000000000004, "5500000000000004")});
    ASSERT_TRUE(step->Push(r, c).ok());
  }
  ASSERT_EQ(c.out.size(), plants.size());
  std::string all;
  for (const Record& r : c.out) {
    for (const Value& v : r.values) {
      std::string s = FormatValue(v);
      EXPECT_TRUE(ValidUtf8(s)) << s;
      all += s;
      all += '\x1f';
    }
  }
  for (const Plant& p : plants) {
    for (const std::string& pii : p.pii) {
      EXPECT_EQ(all.find(pii), std::string::npos) << "'" << pii << "' survived in: " << all;
    }
  }
  EXPECT_EQ(all.find("15551234567"), std::string::npos);
  EXPECT_EQ(all.find("5500000000000004"), std::string::npos);
  // And the text around the values is kept.
  EXPECT_EQ(FormatValue(c.out[1].values[0]), "José <[email]>");
  EXPECT_EQ(FormatValue(c.out[4].values[0]), "line1,\n\"quoted\", call [phone]\nend");
}

// End to end through the CSV reader and writer: quoted fields with delimiters and newlines,
// numbers inferred as ints, a dropped column.
TEST(RedactStepTest, CsvRoundTripLeavesNoPersonalData) {
  std::string csv =
      "id,name,contact,phone,card,note\n"
      "1,Ann Lee,ann.lee@example.com,5551234567,4111111111111111,\"hi, I'm at 10.0.0.7\n"
      "call +1 (555) 987-6543\"\n"
      "2,\"Bob, Jr.\",\"bob@x.io, alt: bob2@y.org\",+44 20 7946 0958,5500 0000 0000 0004,"
      "\"said \"\"mail zoë@exämple.de or zoë@example.de\"\"\"\n"
      "3,Cy,none,n/a,4111111111111112,\"fe80::1ff:fe23:4567:890a, 2026-11-27 13:05:00\"\n";
  auto reader = MakeCsvReader(StringSource(csv));
  StringSink sink;
  auto writer = MakeCsvWriter(&sink);
  auto step = Make({{"type", "redact"},
                    {"columns", {{{"column", "name"}, {"action", "drop"}}}},
                    {"skip", {"id"}}},
                   "key");
  class Write : public Emitter {
   public:
    explicit Write(RecordWriter* w) : w_(w) {}
    Status Emit(Record& rec) override { return w_->Write(rec); }

   private:
    RecordWriter* w_;
  } write(writer.get());
  Record rec;
  for (;;) {
    auto next = reader->Next(rec);
    ASSERT_TRUE(next.ok()) << next.status().ToString();
    if (!*next) break;
    ASSERT_TRUE(step->Push(rec, write).ok());
  }
  ASSERT_TRUE(writer->Finish().ok());
  const std::string& out = sink.data();
  EXPECT_EQ(writer->records(), 3u);
  for (const char* pii :
       {"Ann", "Bob", "ann.lee", "bob@", "bob2", "5551234567", "4111111111111111", "10.0.0.7",
        "987-6543", "7946 0958", "5500 0000", "zoë@example.de", "zoë@exämple", "fe80", "890a"}) {
    EXPECT_EQ(out.find(pii), std::string::npos) << "'" << pii << "' survived in:\n" << out;
  }
  // Not personal data, kept: the Luhn-failing number, the date, the header without "name".
  EXPECT_NE(out.find("4111111111111112"), std::string::npos) << out;
  EXPECT_NE(out.find("2026-11-27 13:05:00"), std::string::npos) << out;
  EXPECT_EQ(out.substr(0, out.find('\n')), "id,contact,phone,card,note");
  EXPECT_TRUE(ValidUtf8(out));
}

TEST(RedactStepTest, BadDeclarationsNameTheField) {
  StepContext ctx;
  ctx.hash_key = "k";
  auto err = [&](const json& d) {
    auto s = MakeRedactStep(d, ctx);
    EXPECT_FALSE(s.ok());
    return s.ok() ? std::string() : s.status().message();
  };
  auto starts = [](const std::string& msg, const std::string& prefix) {
    return msg.compare(0, prefix.size(), prefix) == 0;
  };
  EXPECT_TRUE(starts(err({{"type", "redact"}, {"colums", json::array()}}), "redact.colums:"));
  EXPECT_TRUE(
      starts(err({{"type", "redact"}, {"detectors", {"email", "ssn"}}}), "redact.detectors[1]:"));
  EXPECT_TRUE(starts(err({{"type", "redact"}, {"action", "erase"}}), "redact.action:"));
  EXPECT_TRUE(starts(err({{"type", "redact"}, {"action", 3}}), "redact.action:"));
  EXPECT_TRUE(
      starts(err({{"type", "redact"},
                  {"columns",
                   {{{"column", "a"}, {"action", "mask"}}, {{"column", "b"}, {"action", "x"}}}}}),
             "redact.columns[1].action:"));
  EXPECT_TRUE(
      starts(err({{"type", "redact"}, {"columns", {{{"column", "a"}, {"action", "generalize"}}}}}),
             "redact.columns[0]:"));
  EXPECT_TRUE(starts(
      err({{"type", "redact"},
           {"columns", {{{"column", "a"}, {"action", "generalize"}, {"truncate", "week"}}}}}),
      "redact.columns[0].truncate:"));
  EXPECT_TRUE(starts(
      err({{"type", "redact"}, {"columns", {{{"column", "a"}, {"action", "mask"}, {"round", 2}}}}}),
      "redact.columns[0]:"));
  EXPECT_TRUE(starts(err({{"type", "redact"}, {"patterns", {{{"name", "x"}, {"regex", "(a"}}}}}),
                     "redact.patterns[0].regex:"));
  EXPECT_TRUE(starts(err({{"type", "redact"}, {"patterns", {{{"regex", "a"}}}}}),
                     "redact.patterns[0].name:"));
  EXPECT_TRUE(starts(err({{"type", "redact"}, {"skip", "id"}}), "redact.skip:"));
}

// Throughput of the common case (no personal data) and a mixed case, printed for the record.
TEST(RedactStepTest, ThroughputSmoke) {
  auto step = Make({{"type", "redact"}});
  auto schema = MakeSchema({"ts", "site", "temp", "note"});
  class Count : public Emitter {
   public:
    Status Emit(Record&) override {
      ++n;
      return Status::Ok();
    }
    uint64_t n = 0;
  } count;
  // FS_REDACT_BENCH_RECORDS=5000000 for a longer run.
  const char* env = std::getenv("FS_REDACT_BENCH_RECORDS");
  const int kRecords = env != nullptr ? std::atoi(env) : 200000;
  Record r = Rec(schema, {Str("2026-11-27T13:05:00Z"), Str("north-field-7"), Value(), Value()});
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < kRecords; ++i) {
    r.values[2].SetFloatWithText(21.5, "21.5");
    r.values[3].SetString(i % 100 == 0 ? "mail bob@x.org" : "all quiet on sensor 12");
    ASSERT_TRUE(step->Push(r, count).ok());
  }
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  EXPECT_EQ(count.n, static_cast<uint64_t>(kRecords));
  std::printf("redact: %.0f records/s (4 fields, 1%% with an email)\n", kRecords / s);
}

}  // namespace
}  // namespace fieldstack::compute
