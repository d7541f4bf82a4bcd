// Tests of io.h: CSV and JSON lines readers/writers, compression, sources and sinks.

#include "compute/io.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>

namespace fieldstack::compute {
namespace {

// "name=type:text" for every field, joined with '|'.
std::string Dump(const Record& rec) {
  std::string out;
  for (size_t i = 0; i < rec.values.size(); ++i) {
    if (i > 0) out += "|";
    const Value& v = rec.values[i];
    out += rec.schema->names()[i] + "=";
    switch (v.type()) {
      case Value::Type::kNull:
        out += "null";
        break;
      case Value::Type::kBool:
        out += "bool:" + FormatValue(v);
        break;
      case Value::Type::kInt:
        out += "int:" + FormatValue(v);
        break;
      case Value::Type::kFloat:
        out += "float:" + FormatValue(v);
        break;
      case Value::Type::kString:
        out += "str:" + v.text();
        break;
    }
  }
  return out;
}

std::vector<std::string> ReadAll(RecordReader& r) {
  std::vector<std::string> rows;
  Record rec;
  for (;;) {
    Result<bool> got = r.Next(rec);
    if (!got.ok()) {
      rows.push_back("ERROR " + got.status().message());
      break;
    }
    if (!*got) break;
    rows.push_back(Dump(rec));
  }
  return rows;
}

std::vector<std::string> ReadCsv(std::string text, CsvOptions o = {}) {
  auto r = MakeCsvReader(StringSource(std::move(text)), o);
  return ReadAll(*r);
}

std::vector<std::string> ReadJsonl(std::string text) {
  auto r = MakeJsonlReader(StringSource(std::move(text)));
  return ReadAll(*r);
}

// A source that hands out its data a few bytes at a time (exercises buffer boundaries).
class TrickleSource final : public ByteSource {
 public:
  TrickleSource(std::string data, size_t max_chunk) : data_(std::move(data)), max_(max_chunk) {}
  Result<size_t> Read(std::span<uint8_t> out) override {
    size_t n = std::min({out.size(), data_.size() - pos_, 1 + (pos_ * 7919) % max_});
    std::memcpy(out.data(), data_.data() + pos_, n);
    pos_ += n;
    return n;
  }

 private:
  std::string data_;
  size_t max_;
  size_t pos_ = 0;
};

// Rewrites CSV through reader and writer.
std::string CsvToCsv(std::string text) {
  auto r = MakeCsvReader(StringSource(std::move(text)));
  StringSink sink;
  auto w = MakeCsvWriter(&sink);
  Record rec;
  for (;;) {
    auto got = r->Next(rec);
    EXPECT_TRUE(got.ok()) << got.status().ToString();
    if (!got.ok() || !*got) break;
    EXPECT_TRUE(w->Write(rec).ok());
  }
  EXPECT_TRUE(w->Finish().ok());
  return sink.data();
}

TEST(CsvReaderTest, InfersTypesAndKeepsOriginalText) {
  auto rows = ReadCsv("a,b,c,d,e,f,g,h\n1,2.50,TRUE,,hello,-7,1e3,99999999999999999999\n");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0],
            "a=int:1|b=float:2.50|c=bool:TRUE|d=null|e=str:hello|f=int:-7|g=float:1e3|"
            "h=float:99999999999999999999");
}

TEST(CsvReaderTest, NonNumbersStayStrings) {
  auto rows = ReadCsv("a,b,c,d,e,f\n1.2.3,inf,nan,-,+,0x10\n");
  EXPECT_EQ(rows[0], "a=str:1.2.3|b=str:inf|c=str:nan|d=str:-|e=str:+|f=str:0x10");
}

TEST(CsvReaderTest, InferenceOffGivesStrings) {
  auto rows = ReadCsv("a,b\n1,\n", CsvOptions{',', false});
  EXPECT_EQ(rows[0], "a=str:1|b=null");
}

TEST(CsvReaderTest, QuotedFieldsWithDelimitersQuotesAndNewlines) {
  std::string csv =
      "name,note,n\n"
      "\"Smith, J\",\"He said \"\"hi\"\"\nand left\",1\n"
      "plain,\"\",2\n"
      "\"crlf\r\ninside\",x,3\n";
  auto r = MakeCsvReader(StringSource(csv));
  Record rec;
  ASSERT_TRUE(*r->Next(rec));
  EXPECT_EQ(Dump(rec), "name=str:Smith, J|note=str:He said \"hi\"\nand left|n=int:1");
  EXPECT_EQ(r->line(), 2u);
  ASSERT_TRUE(*r->Next(rec));
  EXPECT_EQ(Dump(rec), "name=str:plain|note=null|n=int:2");
  EXPECT_EQ(r->line(), 4u);
  ASSERT_TRUE(*r->Next(rec));
  EXPECT_EQ(Dump(rec), "name=str:crlf\r\ninside|note=str:x|n=int:3");
  EXPECT_EQ(r->line(), 5u);
  EXPECT_FALSE(*r->Next(rec));
}

TEST(CsvReaderTest, BomCrlfUnicodeAndNoFinalNewline) {
  auto rows = ReadCsv("\xEF\xBB\xBFid,city\r\n1,Z\xC3\xBCrich\r\n2,\xE6\x9D\xB1\xE4\xBA\xAC");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], "id=int:1|city=str:Z\xC3\xBCrich");
  EXPECT_EQ(rows[1], "id=int:2|city=str:\xE6\x9D\xB1\xE4\xBA\xAC");
}

TEST(CsvReaderTest, SkipsBlankLinesAndPadsShortRows) {
  auto rows = ReadCsv("a,b,c\n\n1\n\r\n2,x,\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], "a=int:1|b=null|c=null");
  EXPECT_EQ(rows[1], "a=int:2|b=str:x|c=null");
}

TEST(CsvReaderTest, SetsSeqAndSharesOneSchema) {
  auto r = MakeCsvReader(StringSource("a\n1\n2\n"));
  Record rec;
  ASSERT_TRUE(*r->Next(rec));
  auto schema = rec.schema;
  EXPECT_EQ(rec.seq, 1u);
  ASSERT_TRUE(*r->Next(rec));
  EXPECT_EQ(rec.seq, 2u);
  EXPECT_EQ(rec.schema.get(), schema.get());
}

TEST(CsvReaderTest, UnterminatedQuoteNamesTheLine) {
  auto rows = ReadCsv("a,b\n1,2\n3,\"open\nstill open\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], "ERROR line 3: unterminated quoted field 2");
}

TEST(CsvReaderTest, TooManyFieldsNamesTheLine) {
  auto rows = ReadCsv("a,b\n1,2\n\"x\ny\",2,3\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], "ERROR line 3: too many fields (3, the header has 2)");
}

TEST(CsvReaderTest, TextAfterClosingQuoteIsAnError) {
  auto rows = ReadCsv("a,b\n\"x\"y,2\n");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0], "ERROR line 2: unexpected character after the closing quote of field 1");
}

TEST(CsvReaderTest, HeaderRules) {
  EXPECT_EQ(ReadCsv("a,b,a\n1,2,3\n")[0], "ERROR line 1: duplicate column name 'a' in the header");
  EXPECT_EQ(ReadCsv("a,,c\n1,2,3\n")[0], "a=int:1|column2=int:2|c=int:3");
  EXPECT_TRUE(ReadCsv("").empty());
  EXPECT_TRUE(ReadCsv("a,b\n").empty());
}

TEST(CsvReaderTest, OtherDelimiter) {
  EXPECT_EQ(ReadCsv("a;b\n1,5;\"x;y\"\n", CsvOptions{';'})[0], "a=str:1,5|b=str:x;y");
}

TEST(CsvWriterTest, QuotesOnlyWhatNeedsIt) {
  Record rec;
  rec.schema = std::make_shared<const Schema>(
      std::vector<std::string>{"s", "comma", "quote", "nl", "lead", "n", "f", "b", "null"});
  rec.values = {Value::String("plain"),  Value::String("a,b"),  Value::String("say \"x\""),
                Value::String("l1\nl2"), Value::String(" pad"), Value::Int(-3),
                Value::Float(0.1 + 0.2), Value::Bool(true),     Value::Null()};
  StringSink sink;
  auto w = MakeCsvWriter(&sink);
  ASSERT_TRUE(w->Write(rec).ok());
  ASSERT_TRUE(w->Finish().ok());
  EXPECT_EQ(sink.data(),
            "s,comma,quote,nl,lead,n,f,b,null\n"
            "plain,\"a,b\",\"say \"\"x\"\"\",\"l1\nl2\",\" pad\",-3,0.30000000000000004,true,\n");
  EXPECT_EQ(w->records(), 1u);
}

TEST(CsvWriterTest, WritesOtherSchemasByNameAndRefusesUnknownFields) {
  StringSink sink;
  auto w = MakeCsvWriter(&sink);
  Record a;
  a.schema = std::make_shared<const Schema>(std::vector<std::string>{"x", "y"});
  a.values = {Value::Int(1), Value::Int(2)};
  ASSERT_TRUE(w->Write(a).ok());
  Record b;
  b.schema = std::make_shared<const Schema>(std::vector<std::string>{"y"});
  b.values = {Value::Int(5)};
  ASSERT_TRUE(w->Write(b).ok());
  Record c;
  c.schema = std::make_shared<const Schema>(std::vector<std::string>{"x", "zz"});
  c.values = {Value::Int(5), Value::Int(6)};
  Status s = w->Write(c);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_NE(s.message().find("'zz'"), std::string::npos) << s.message();
  ASSERT_TRUE(w->Finish().ok());
  EXPECT_EQ(sink.data(), "x,y\n1,2\n,5\n");
}

TEST(CsvRoundTripTest, UnchangedFieldsAreByteExact) {
  std::string csv =
      "id,temp,ok,name,note\n"
      "007,21.50,True,\"Smith, J\",\"a \"\"q\"\"\"\n"
      "-0,1E+03,false,\xC3\xA9t\xC3\xA9,\"multi\nline\"\n"
      "3,,,,\n";
  EXPECT_EQ(CsvToCsv(csv), csv);
}

TEST(CsvReaderTest, TinyReadsGiveTheSameRecordsAsOneRead) {
  // Adversarial rows, many of them, so records straddle every kind of boundary, including
  // the reader's 64 KiB buffer.
  std::mt19937 rng(42);
  const char* pieces[] = {"x",  "\"a,b\"", "\"q\"\"q\"", "\"l1\nl2\"", "\"cr\r\nlf\"",
                          "12", "-3.5",    "",           "\xC3\xA9",   "true"};
  std::string csv = "c1,c2,c3,c4\r\n";
  for (int i = 0; i < 8000; ++i) {
    for (int j = 0; j < 4; ++j) {
      if (j > 0) csv += ",";
      csv += pieces[rng() % std::size(pieces)];
    }
    csv += (i % 3 == 0) ? "\r\n" : "\n";
  }
  auto whole = ReadCsv(csv);
  ASSERT_EQ(whole.size(), 8000u);
  for (size_t chunk : {1, 3, 17, 4096}) {
    auto r = MakeCsvReader(std::make_unique<TrickleSource>(csv, chunk));
    EXPECT_EQ(ReadAll(*r), whole) << "chunk " << chunk;
  }
}

TEST(CsvReaderTest, RecordLongerThanTheBufferIsRead) {
  std::string big(200 * 1024, 'z');
  auto rows = ReadCsv("a,b\n\"" + big + "\"," + big + "\n1,2\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[0], "a=str:" + big + "|b=str:" + big);
}

// Generates a CSV file row by row and records the largest read it was asked for.
class GeneratedCsvSource final : public ByteSource {
 public:
  explicit GeneratedCsvSource(size_t rows) : rows_(rows) { pending_ = "id,site,temp,note\n"; }
  Result<size_t> Read(std::span<uint8_t> out) override {
    peak_request_ = std::max(peak_request_, out.size());
    while (pending_.size() - pos_ < out.size() && row_ < rows_) {
      ++row_;
      pending_ += std::to_string(row_) + (row_ % 2 ? ",north," : ",east,") +
                  std::to_string(row_ % 50) + ".5,\"note, " + std::to_string(row_) + "\"\n";
    }
    size_t n = std::min(out.size(), pending_.size() - pos_);
    std::memcpy(out.data(), pending_.data() + pos_, n);
    pos_ += n;
    produced_ += n;
    if (pos_ > 1 << 20) {
      pending_.erase(0, pos_);
      pos_ = 0;
    }
    peak_pending_ = std::max(peak_pending_, pending_.size());
    return n;
  }
  size_t peak_request() const { return peak_request_; }
  size_t produced() const { return produced_; }

 private:
  size_t rows_;
  size_t row_ = 0;
  std::string pending_;
  size_t pos_ = 0;
  size_t produced_ = 0;
  size_t peak_request_ = 0;
  size_t peak_pending_ = 0;
};

TEST(CsvReaderTest, StreamsTwentyMegabytesInABoundedBuffer) {
  auto src = std::make_unique<GeneratedCsvSource>(700'000);
  GeneratedCsvSource* raw = src.get();
  auto r = MakeCsvReader(std::move(src));
  Record rec;
  uint64_t rows = 0;
  int64_t sum = 0;
  for (;;) {
    auto got = r->Next(rec);
    ASSERT_TRUE(got.ok()) << got.status().ToString();
    if (!*got) break;
    ++rows;
    sum += rec.values[0].as_int();
  }
  EXPECT_EQ(rows, 700'000u);
  EXPECT_EQ(sum, 700'000LL * 700'001 / 2);
  EXPECT_GT(raw->produced(), 20u << 20);
  // The reader never asked for more than its 64 KiB buffer.
  EXPECT_LE(raw->peak_request(), 64u * 1024);
}

TEST(JsonlReaderTest, FlattensObjectsKeepsArraysAndTypes) {
  auto rows = ReadJsonl(
      "{\"id\": 1, \"t\": 2.5, \"ok\": true, \"n\": null, \"s\": \"x\\ny\\u00e9\\ud83d\\ude00\","
      " \"geo\": {\"lat\": 47.1, \"pos\": {\"x\": -1}}, \"tags\": [1, \"a\", {\"b\": []}]}\n");
  ASSERT_EQ(rows.size(), 1u);
  EXPECT_EQ(rows[0],
            "id=int:1|t=float:2.5|ok=bool:true|n=null|s=str:x\ny\xC3\xA9\xF0\x9F\x98\x80|"
            "geo.lat=float:47.1|geo.pos.x=int:-1|tags=str:[1, \"a\", {\"b\": []}]");
}

TEST(JsonlReaderTest, SharesTheSchemaWhileKeysRepeat) {
  auto r = MakeJsonlReader(
      StringSource("{\"a\":1,\"b\":2}\n\n  \n{\"a\":3,\"b\":\"x\"}\n{\"b\":1,\"a\":2}\n"));
  Record rec;
  ASSERT_TRUE(*r->Next(rec));
  const Schema* first = rec.schema.get();
  ASSERT_TRUE(*r->Next(rec));
  EXPECT_EQ(rec.schema.get(), first);
  EXPECT_EQ(r->line(), 4u);
  EXPECT_EQ(Dump(rec), "a=int:3|b=str:x");
  ASSERT_TRUE(*r->Next(rec));
  EXPECT_NE(rec.schema.get(), first);
  EXPECT_EQ(Dump(rec), "b=int:1|a=int:2");
}

TEST(JsonlReaderTest, RepeatedNameKeepsFirstPlaceAndLastValue) {
  EXPECT_EQ(ReadJsonl("{\"a\":1,\"b\":2,\"a\":3}\n")[0], "a=int:3|b=int:2");
  EXPECT_EQ(ReadJsonl("{\"a.b\":1,\"a\":{\"b\":2}}\n")[0], "a.b=int:2");
}

TEST(JsonlReaderTest, BadLinesNameTheLineAndColumn) {
  auto rows = ReadJsonl("{\"a\":1}\n{\"a\":}\n");
  ASSERT_EQ(rows.size(), 2u);
  EXPECT_EQ(rows[1], "ERROR line 2: bad JSON at column 6: invalid value");
  EXPECT_EQ(ReadJsonl("[1,2]\n")[0], "ERROR line 1: bad JSON at column 1: not a JSON object");
  EXPECT_EQ(ReadJsonl("{\"a\":1} x\n")[0],
            "ERROR line 1: bad JSON at column 9: unexpected text after the object");
  EXPECT_EQ(ReadJsonl("{\"a\":\"open\n")[0],
            "ERROR line 1: bad JSON at column 6: unterminated string");
  EXPECT_EQ(ReadJsonl("{\"a\":01}\n")[0], "ERROR line 1: bad JSON at column 6: invalid value");
}

TEST(JsonlWriterTest, WritesTypedJsonAndEscapes) {
  Record rec;
  rec.schema = std::make_shared<const Schema>(
      std::vector<std::string>{"i", "keep", "zero", "plus", "f", "inf", "b", "n", "s", "bad"});
  Value keep, zero, plus;
  keep.SetFloatWithText(2.5, "2.50");
  zero.SetIntWithText(7, "007");
  plus.SetIntWithText(5, "+5");
  rec.values = {Value::Int(-4),
                keep,
                zero,
                plus,
                Value::Float(1e21),
                Value::Float(HUGE_VAL),
                Value::Bool(false),
                Value::Null(),
                Value::String("q\"\\\n\t\x01\xC3\xA9"),
                Value::String("a\xFF"
                              "b\xE2\x82")};
  EXPECT_EQ(RecordToJson(rec),
            "{\"i\":-4,\"keep\":2.50,\"zero\":7,\"plus\":5,\"f\":1e+21,\"inf\":null,\"b\":false,"
            "\"n\":null,\"s\":\"q\\\"\\\\\\n\\t\\u0001\xC3\xA9\",\"bad\":\"a\xEF\xBF\xBD"
            "b\xEF\xBF\xBD\xEF\xBF\xBD\"}");
}

TEST(JsonRecordTest, ParseJsonRecordReusesTheRecordsSchema) {
  Record rec;
  ASSERT_TRUE(ParseJsonRecord("{\"site\":\"n\",\"v\":{\"t\":1}}", rec).ok());
  auto first = rec.schema;
  ASSERT_TRUE(ParseJsonRecord("{\"site\":\"e\",\"v\":{\"t\":2.25}}", rec).ok());
  EXPECT_EQ(rec.schema, first);
  EXPECT_EQ(Dump(rec), "site=str:e|v.t=float:2.25");
  EXPECT_EQ(RecordToJson(rec), "{\"site\":\"e\",\"v.t\":2.25}");
  Status bad = ParseJsonRecord("{\"a\" 1}", rec);
  EXPECT_EQ(bad.message(), "bad JSON at column 6: expected ':'");
  EXPECT_EQ(rec.values.size(), rec.schema->size());
}

TEST(RoundTripTest, CsvToJsonlToCsv) {
  std::string csv =
      "id,temp,ok,name,note\n"
      "1,21.50,true,\"Smith, J\",\"a \"\"q\"\"\nb\"\n"
      "2,-0.5,false,\xC3\xA9t\xC3\xA9,\n";
  auto r = MakeCsvReader(StringSource(csv));
  StringSink jsonl;
  auto w = MakeJsonlWriter(&jsonl);
  Record rec;
  while (*r->Next(rec)) ASSERT_TRUE(w->Write(rec).ok());
  ASSERT_TRUE(w->Finish().ok());
  EXPECT_EQ(jsonl.data(),
            "{\"id\":1,\"temp\":21.50,\"ok\":true,\"name\":\"Smith, J\",\"note\":\"a "
            "\\\"q\\\"\\nb\"}\n"
            "{\"id\":2,\"temp\":-0.5,\"ok\":false,\"name\":\"\xC3\xA9t\xC3\xA9\",\"note\":null}\n");
  auto r2 = MakeJsonlReader(StringSource(jsonl.data()));
  StringSink back;
  auto w2 = MakeCsvWriter(&back);
  while (*r2->Next(rec)) ASSERT_TRUE(w2->Write(rec).ok());
  ASSERT_TRUE(w2->Finish().ok());
  EXPECT_EQ(back.data(), csv);
}

std::string Compressed(const std::string& data, Compression c) {
  auto owned = std::make_unique<StringSink>();
  StringSink* raw = owned.get();
  std::string result;
  {
    auto sink = Compress(std::move(owned), c);
    // Write in pieces to exercise streaming.
    for (size_t i = 0; i < data.size(); i += 10007) {
      EXPECT_TRUE(sink->Write(std::string_view(data).substr(i, 10007)).ok());
    }
    EXPECT_TRUE(sink->Close().ok());
    if (c != Compression::kNone) {
      EXPECT_FALSE(sink->Write("x").ok());
    }
    result = raw->data();
  }
  return result;
}

std::string ReadAllBytes(ByteSource& src, Status* status = nullptr) {
  std::string out;
  uint8_t buf[3000];
  for (;;) {
    auto n = src.Read(buf);
    if (!n.ok()) {
      if (status) *status = n.status();
      return out;
    }
    if (*n == 0) break;
    out.append(reinterpret_cast<char*>(buf), *n);
  }
  return out;
}

std::string TestData() {
  std::string s;
  for (int i = 0; i < 50000; ++i) s += std::to_string(i * 7919 % 1000) + ",row\n";
  return s;
}

TEST(CompressionTest, ZstdAndGzipRoundTrip) {
  const std::string data = TestData();
  for (Compression c : {Compression::kZstd, Compression::kGzip, Compression::kNone}) {
    std::string z = Compressed(data, c);
    if (c != Compression::kNone) {
      EXPECT_LT(z.size(), data.size() / 3);
    }
    auto src = Decompress(std::make_unique<TrickleSource>(z, 5000), c);
    EXPECT_TRUE(ReadAllBytes(*src) == data) << static_cast<int>(c);
  }
}

TEST(CompressionTest, ConcatenatedFramesAndMembersAreRead) {
  for (Compression c : {Compression::kZstd, Compression::kGzip}) {
    std::string z = Compressed("abc\n", c) + Compressed("def\n", c);
    auto src = Decompress(StringSource(z), c);
    EXPECT_EQ(ReadAllBytes(*src), "abc\ndef\n");
  }
}

TEST(CompressionTest, TruncatedAndCorruptInputAreErrors) {
  const std::string data = TestData();
  for (Compression c : {Compression::kZstd, Compression::kGzip}) {
    std::string z = Compressed(data, c);
    Status s;
    auto src = Decompress(StringSource(z.substr(0, z.size() / 2)), c);
    ReadAllBytes(*src, &s);
    EXPECT_EQ(s.code(), StatusCode::kInvalidArgument) << static_cast<int>(c);
    EXPECT_NE(s.message().find("truncated"), std::string::npos) << s.message();
    Status s2;
    auto junk = Decompress(StringSource("this is not compressed at all"), c);
    ReadAllBytes(*junk, &s2);
    EXPECT_EQ(s2.code(), StatusCode::kInvalidArgument);
  }
}

class TempDir {
 public:
  TempDir() {
    char tmpl[] = "/tmp/fs_io_test_XXXXXX";
    path_ = ::mkdtemp(tmpl);
  }
  ~TempDir() { std::filesystem::remove_all(path_); }
  std::string File(const std::string& name) const { return path_ + "/" + name; }

 private:
  std::string path_;
};

TEST(CompressionTest, ReadsWhatTheCommandLineToolsWrite) {
  TempDir dir;
  const std::string data = TestData();
  {
    std::ofstream f(dir.File("data.csv"), std::ios::binary);
    f << data;
  }
  ASSERT_EQ(std::system(("zstd -q -f -k " + dir.File("data.csv")).c_str()), 0);
  ASSERT_EQ(std::system(("gzip -k -f " + dir.File("data.csv")).c_str()), 0);
  for (std::string name : {"data.csv.zst", "data.csv.gz"}) {
    auto f = FileSource(dir.File(name));
    ASSERT_TRUE(f.ok());
    auto src = Decompress(std::move(*f), CompressionOfName(name));
    EXPECT_TRUE(ReadAllBytes(*src) == data) << name;
  }
  // And the tools read what we write.
  for (auto [name, cmd] : {std::pair{"out.zst", "zstd -d -q -c "}, {"out.gz", "gzip -d -c "}}) {
    auto sink = FileSink(dir.File(name));
    ASSERT_TRUE(sink.ok());
    auto z = Compress(std::move(*sink), CompressionOfName(name));
    ASSERT_TRUE(z->Write(data).ok());
    ASSERT_TRUE(z->Close().ok());
    std::string out = dir.File(std::string(name) + ".txt");
    ASSERT_EQ(std::system((cmd + dir.File(name) + " > " + out).c_str()), 0);
    std::ifstream f(out, std::ios::binary);
    std::stringstream ss;
    ss << f.rdbuf();
    EXPECT_TRUE(ss.str() == data) << name;
  }
}

TEST(FileTest, SinkAndSourceRoundTripAndMissingFileIsNotFound) {
  TempDir dir;
  auto sink = FileSink(dir.File("a.txt"));
  ASSERT_TRUE(sink.ok());
  ASSERT_TRUE((*sink)->Write("hello ").ok());
  ASSERT_TRUE((*sink)->Write("world").ok());
  ASSERT_TRUE((*sink)->Close().ok());
  EXPECT_FALSE((*sink)->Write("late").ok());
  auto src = FileSource(dir.File("a.txt"));
  ASSERT_TRUE(src.ok());
  EXPECT_EQ(ReadAllBytes(**src), "hello world");
  EXPECT_EQ(FileSource(dir.File("missing")).status().code(), StatusCode::kNotFound);
}

TEST(NamesTest, FormatsAndCompressions) {
  EXPECT_EQ(*ParseCompression(""), Compression::kNone);
  EXPECT_EQ(*ParseCompression("zstd"), Compression::kZstd);
  EXPECT_EQ(*ParseCompression("gzip"), Compression::kGzip);
  EXPECT_EQ(ParseCompression("lz4").status().code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(CompressionOfName("a.csv.zst"), Compression::kZstd);
  EXPECT_EQ(CompressionOfName("a.jsonl.gz"), Compression::kGzip);
  EXPECT_EQ(CompressionOfName("a.csv"), Compression::kNone);
  EXPECT_EQ(*ParseFormat("ndjson"), Format::kJsonl);
  EXPECT_EQ(*ParseFormat("csv"), Format::kCsv);
  EXPECT_FALSE(ParseFormat("xml").ok());
  EXPECT_EQ(*FormatOfName("x/y.tsv.gz"), Format::kCsv);
  EXPECT_EQ(*FormatOfName("y.json.zst"), Format::kJsonl);
  EXPECT_EQ(FormatOfName("y.parquet").status().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace fieldstack::compute
