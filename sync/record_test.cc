// The local record (sqlite_record.cc) over real SQLite files in a temp folder, and what a sync does with it
// (Session over FakeS3): which files are read, what goes up, what is recorded.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <ctime>
#include <fstream>
#include <thread>

#include "sync/fake_s3_test.h"
#include "sync/s3_client.h"
#include "sync/sync.h"

namespace sitesync::sync {
namespace {

using testing::FakeS3;
using testing::TempSiteTest;

RecordEntry Entry(std::string md5, std::string etag, std::uint64_t size = 3) {
  return RecordEntry{size, 1'700'000'000'123'456'789, 42, size, std::move(md5), std::move(etag), "digest"};
}

class RecordFileTest : public TempSiteTest {
 protected:
  std::filesystem::path File() const { return root_ / "cache" / "sitesync" / "site.sqlite"; }
};

TEST_F(RecordFileTest, OpenCreatesTheFolderAndAnEmptyRecord) {
  auto record = Record::Open(File());
  ASSERT_TRUE(record) << record.error().message;
  EXPECT_TRUE(std::filesystem::exists(File()));
  auto entries = (*record)->Load();
  ASSERT_TRUE(entries);
  EXPECT_TRUE(entries->empty());
}

TEST_F(RecordFileTest, UpdateUpsertsAndErasesAndSurvivesReopening) {
  {
    auto record = Record::Open(File());
    ASSERT_TRUE(record);
    const std::vector<std::pair<std::string, RecordEntry>> first = {
        {"a.css", Entry("aaa", "e1")}, {"dir/b c+%.html", Entry("bbb", "e2-3", 20)}, {"gone.js", Entry("ccc", "e3")}};
    ASSERT_TRUE((*record)->Update(first, {}));
    const std::vector<std::pair<std::string, RecordEntry>> second = {{"a.css", Entry("ddd", "e4")}};
    const std::vector<std::string> erased = {"gone.js", "never-there"};
    ASSERT_TRUE((*record)->Update(second, erased));
  }
  auto record = Record::Open(File());
  ASSERT_TRUE(record);
  auto entries = (*record)->Load();
  ASSERT_TRUE(entries);
  ASSERT_EQ(entries->size(), 2u);
  EXPECT_EQ(entries->at("a.css"), Entry("ddd", "e4"));
  EXPECT_EQ(entries->at("dir/b c+%.html"), Entry("bbb", "e2-3", 20));
}

TEST_F(RecordFileTest, LargeValuesRoundTrip) {
  auto record = Record::Open(File());
  ASSERT_TRUE(record);
  RecordEntry e{~0ull, -5, ~0ull - 7, 1ull << 40, "m", "t", std::string(64, 'f')};
  const std::vector<std::pair<std::string, RecordEntry>> up = {{"k", e}};
  ASSERT_TRUE((*record)->Update(up, {}));
  EXPECT_EQ((*record)->Load()->at("k"), e);
}

TEST_F(RecordFileTest, TwoWritersAtOnceBothLand) {
  // A watch and a sync with the same record: each Update is one transaction, the other waits (busy timeout).
  auto a = Record::Open(File());
  auto b = Record::Open(File());
  ASSERT_TRUE(a && b);
  std::vector<std::jthread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] {
      Record& r = w == 0 ? **a : **b;
      for (int i = 0; i < 50; ++i) {
        const std::vector<std::pair<std::string, RecordEntry>> up = {
            {"w" + std::to_string(w) + "/" + std::to_string(i), Entry("m", "e")}};
        EXPECT_TRUE(r.Update(up, {}));
      }
    });
  }
  writers.clear();
  EXPECT_EQ((*a)->Load()->size(), 100u);
}

TEST_F(RecordFileTest, AFileThatIsNoDatabaseIsRecreatedEmpty) {
  std::filesystem::create_directories(File().parent_path());
  std::ofstream(File(), std::ios::binary) << std::string(8192, 'x');
  auto record = Record::Open(File());
  ASSERT_TRUE(record) << record.error().message;
  auto entries = (*record)->Load();
  ASSERT_TRUE(entries);
  EXPECT_TRUE(entries->empty());
}

TEST_F(RecordFileTest, AnUnopenableFileFailsNamingIt) {
  // A folder where the file should be: neither openable nor removable as a file.
  std::filesystem::create_directories(File() / "inside");
  auto record = Record::Open(File());
  ASSERT_FALSE(record);
  EXPECT_EQ(record.error().code, aws::ErrorCode::kIo);
  EXPECT_NE(record.error().message.find(File().string()), std::string::npos);
}

TEST_F(RecordFileTest, AnotherSchemaVersionStartsAfresh) {
  {
    auto record = Record::Open(File());
    ASSERT_TRUE(record);
    const std::vector<std::pair<std::string, RecordEntry>> up = {{"a", Entry("m", "e")}};
    ASSERT_TRUE((*record)->Update(up, {}));
  }
  // A later sitesync's layout: this one does not read it, it starts a cache of its own.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open(File().c_str(), &db), SQLITE_OK);
  EXPECT_EQ(sqlite3_exec(db, "UPDATE schema_version SET version = 99", nullptr, nullptr, nullptr), SQLITE_OK);
  sqlite3_close(db);
  auto record = Record::Open(File());
  ASSERT_TRUE(record);
  EXPECT_TRUE((*record)->Load()->empty());
}

TEST(RecordFileFor, ReadableAndDistinctPerEndpointBucketAndPrefix) {
  const std::filesystem::path cache = "/c/sitesync";
  const auto a = Record::FileFor(cache, {"my-site", "blog/"}, "https://s3.example.com");
  EXPECT_EQ(a.parent_path(), cache);
  EXPECT_TRUE(a.filename().string().starts_with("my-site_blog-")) << a;
  EXPECT_TRUE(a.filename().string().ends_with(".sqlite")) << a;
  EXPECT_EQ(a, Record::FileFor(cache, {"my-site", "blog/"}, "https://s3.example.com"));
  EXPECT_NE(a, Record::FileFor(cache, {"my-site", "blog/"}, "aws:aws"));
  EXPECT_NE(a, Record::FileFor(cache, {"my-site", ""}, "https://s3.example.com"));
  EXPECT_NE(a, Record::FileFor(cache, {"my-sitf", "blog/"}, "https://s3.example.com"));
  // Odd prefixes stay one file name.
  const auto odd = Record::FileFor(cache, {"b", "../x/ y/"}, "e");
  EXPECT_EQ(odd.parent_path(), cache);
  EXPECT_EQ(odd.filename().string().find('/'), std::string::npos);
}


// ---- What a sync does with the record (Session over FakeS3) -------------------------------------------------

class Recorder final : public Reporter {
 public:
  void OnWarning(std::string_view message) override { warnings.emplace_back(message); }
  void OnPlan(const Plan& plan, bool) override {
    for (const PlannedUpload& up : plan.uploads) reasons[std::string(up.file.Key())] = up.reason;
  }
  void OnUploaded(std::string_view, std::uint64_t, bool, UploadReason) override {}
  void OnDeleted(std::string_view, bool) override {}
  void OnError(std::string_view, std::string_view message) override { errors.emplace_back(message); }
  void OnProgress(std::uint64_t, std::uint64_t) override {}
  std::vector<std::string> warnings;
  std::vector<std::string> errors;
  std::map<std::string, UploadReason> reasons;
};

class RecordSyncTest : public TempSiteTest {
 protected:
  void SetUp() override {
    TempSiteTest::SetUp();
    site_ = root_ / "site";
    std::filesystem::create_directories(site_);
  }

  // Writes SOURCE/rel (dated a while ago, a fresh mtime each time: as a generator's rebuild).
  void Put(const std::string& rel, const std::string& content) {
    std::filesystem::create_directories((site_ / rel).parent_path());
    std::ofstream(site_ / rel, std::ios::binary | std::ios::trunc) << content;
    Touch(rel);
  }
  // A new mtime, content untouched.
  void Touch(const std::string& rel) {
    ++tick_;
    std::filesystem::last_write_time(site_ / rel, std::filesystem::file_time_type::clock::now() -
                                                      std::chrono::seconds(100) + std::chrono::milliseconds(tick_));
  }

  std::filesystem::path RecordFile() const { return root_ / "cache" / "site.sqlite"; }

  SyncOptions Options(Compare compare) const {
    SyncOptions o;
    o.source = site_;
    o.destination = {"bucket", "site/"};
    o.compare = compare;
    o.delete_stale = true;
    o.max_deletes = -1;
    o.max_delete_fraction = 1;
    o.record_file = RecordFile();
    return o;
  }

  SyncResult Run(const SyncOptions& options, Recorder* reporter = nullptr) {
    Recorder own;
    Recorder& r = reporter != nullptr ? *reporter : own;
    r.reasons.clear();
    s3_.log.clear();
    auto result = RunSync(options, endpoint_, s3_, r);
    EXPECT_TRUE(result.has_value());
    EXPECT_TRUE(r.errors.empty()) << r.errors.front();
    return result ? *result : SyncResult{};
  }

  std::unordered_map<std::string, RecordEntry> Entries() {
    auto record = Record::Open(RecordFile());
    EXPECT_TRUE(record);
    auto entries = (*record)->Load();
    EXPECT_TRUE(entries);
    return entries ? *entries : std::unordered_map<std::string, RecordEntry>{};
  }

  static std::string Md5(std::string_view data) {
    aws::Md5 md5;
    md5.Update(data.data(), data.size());
    return aws::HexEncode(md5.Final());
  }

  void FiveFiles() {
    Put("index.html", "<p>home 09</p>");
    Put("a.css", "body{color:red}");
    Put("b/c.js", "let x = 1;");
    Put("b/d.txt", "dddd");
    Put("e.json", "{\"v\": 1}");
  }

  std::filesystem::path site_;
  FakeS3 s3_;
  S3Endpoint endpoint_{"http://fake", true, "us-east-1"};
  int tick_ = 0;
};

TEST_F(RecordSyncTest, SameSizeEditGoesUpUnderChecksumAndOnlyItIsRead) {
  FiveFiles();
  SyncResult first = Run(Options(Compare::kChecksum));
  EXPECT_EQ(first.uploaded, 5u);
  EXPECT_EQ(first.hashed, 0u);  // new files: nothing to compare
  EXPECT_EQ(Entries().size(), 5u);
  EXPECT_EQ(Entries().at("a.css").md5, Md5("body{color:red}"));
  EXPECT_EQ(Entries().at("a.css").etag, s3_.objects.at("site/a.css").second);

  SyncResult again = Run(Options(Compare::kChecksum));
  EXPECT_EQ(again.uploaded, 0u);
  EXPECT_EQ(again.hashed, 0u);  // every stat as recorded: nothing read
  EXPECT_EQ(again.unchanged, 5u);

  Put("index.html", "<p>home 10</p>");  // same size
  Recorder reporter;
  SyncResult edited = Run(Options(Compare::kChecksum), &reporter);
  EXPECT_EQ(edited.uploaded, 1u);
  EXPECT_EQ(edited.hashed, 1u);  // only the file whose stat changed
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"LIST", "PUT site/index.html"}));
  EXPECT_EQ(reporter.reasons.at("index.html"), UploadReason::kContentChanged);
  EXPECT_EQ(Entries().at("index.html").md5, Md5("<p>home 10</p>"));
}

TEST_F(RecordSyncTest, SameSizeEditGoesUpUnderTheDefaultSizeCompare) {
  FiveFiles();
  EXPECT_EQ(Run(Options(Compare::kSize)).uploaded, 5u);
  EXPECT_EQ(Run(Options(Compare::kSize)).hashed, 0u);
  Put("b/d.txt", "eeee");
  SyncResult edited = Run(Options(Compare::kSize));
  EXPECT_EQ(edited.uploaded, 1u);
  EXPECT_EQ(edited.hashed, 1u);
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"LIST", "PUT site/b/d.txt"}));
  // Without a record the same edit would have stayed behind: the size compare alone.
  Put("b/d.txt", "ffff");
  SyncOptions without = Options(Compare::kSize);
  without.record_file.clear();
  EXPECT_EQ(Run(without).uploaded, 0u);
}

TEST_F(RecordSyncTest, TouchOnlyRebuildUploadsNothingAndIsReadOnce) {
  FiveFiles();
  Run(Options(Compare::kSize));
  for (const char* rel : {"index.html", "a.css", "b/c.js", "b/d.txt", "e.json"}) Touch(rel);
  for (Compare compare : {Compare::kSize, Compare::kChecksum}) {
    SyncResult touched = Run(Options(compare));
    EXPECT_EQ(touched.uploaded, 0u);
    EXPECT_TRUE(s3_.log == std::vector<std::string>{"LIST"}) << s3_.log.size();
    // The new stats were recorded by the first of these runs: the second reads nothing.
    EXPECT_EQ(touched.hashed, compare == Compare::kSize ? 5u : 0u);
  }
}

TEST_F(RecordSyncTest, KmsEtagsReachANoUploadStateAfterOneRun) {
  // Objects already there (put by another tool) whose ETags are no MD5s: checksum cannot compare them without
  // a record, so same-size ones go up once; from then on the record knows them.
  FiveFiles();
  s3_.kms_etags = true;
  for (const char* rel : {"index.html", "a.css"}) {
    const std::string body = rel == std::string("a.css") ? "body{color:red}" : "<p>home 09</p>";
    s3_.objects["site/" + std::string(rel)] = {body.size(), Md5("sse-kms " + body)};
  }
  SyncResult first = Run(Options(Compare::kChecksum));
  EXPECT_EQ(first.uploaded, 5u);
  EXPECT_EQ(first.hashed, 2u);
  for (int run = 0; run < 2; ++run) {
    SyncResult next = Run(Options(Compare::kChecksum));
    EXPECT_EQ(next.uploaded, 0u);
    EXPECT_EQ(next.hashed, 0u);
  }
  // A same-size edit is still seen, by the recorded MD5 (the ETag says nothing).
  Put("a.css", "body{color:tan}");
  SyncResult edited = Run(Options(Compare::kChecksum));
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"LIST", "PUT site/a.css"}));
  EXPECT_EQ(edited.uploaded, 1u);
  EXPECT_EQ(Run(Options(Compare::kChecksum)).uploaded, 0u);
}

TEST_F(RecordSyncTest, MultipartEtagsMadeWithOtherToolsPartSizesAreCompared) {
  // A 12 MiB file another tool uploaded in 5 MiB parts (rclone, hugo deploy): its ETag is the MD5 of three part
  // MD5s. Checksum compares it with the part size that gives three parts, whatever this tool's own part size.
  constexpr std::size_t kMiB = 1 << 20;
  std::string body(12 * kMiB, 'x');
  for (std::size_t i = 0; i < body.size(); i += 4096) body[i] = static_cast<char>('a' + (i / 4096) % 26);
  Put("big.bin", body);
  const auto etag_in_parts = [](std::string_view data, std::size_t part) {
    aws::Md5 all;
    std::size_t parts = 0;
    for (std::size_t at = 0; at < data.size(); at += part, ++parts) {
      aws::Md5 one;
      one.Update(data.data() + at, std::min(part, data.size() - at));
      const auto digest = one.Final();
      all.Update(digest.data(), digest.size());
    }
    return aws::HexEncode(all.Final()) + "-" + std::to_string(parts);
  };
  s3_.objects["site/big.bin"] = {body.size(), etag_in_parts(body, 5 * kMiB)};
  SyncResult same = Run(Options(Compare::kChecksum));
  EXPECT_EQ(same.uploaded, 0u);
  EXPECT_EQ(same.hashed, 1u);
  // Found equal: recorded with the body's MD5 (read in the same pass), so the next run reads nothing.
  EXPECT_EQ(Entries().at("big.bin").md5, Md5(body));
  EXPECT_EQ(Run(Options(Compare::kChecksum)).hashed, 0u);
  // A same-size edit in the second part is seen.
  body[6 * kMiB] = body[6 * kMiB] == 'Q' ? 'R' : 'Q';
  Put("big.bin", body);
  Recorder reporter;
  SyncResult edited = Run(Options(Compare::kChecksum), &reporter);
  EXPECT_EQ(edited.uploaded, 1u);
  EXPECT_EQ(reporter.reasons.at("big.bin"), UploadReason::kContentChanged);
}

TEST_F(RecordSyncTest, AnEntryIsTrustedOnlyWhileTheObjectKeepsItsEtag) {
  FiveFiles();
  Run(Options(Compare::kChecksum));
  // Someone else replaced the object with other bytes of the same size.
  s3_.objects["site/e.json"].second = Md5("{\"v\": 2}");
  SyncResult size_run = Run(Options(Compare::kSize));
  EXPECT_EQ(size_run.uploaded, 0u);  // size-only, as without a record: the entry is not used
  SyncResult sum_run = Run(Options(Compare::kChecksum));
  EXPECT_EQ(sum_run.uploaded, 1u);
  EXPECT_EQ(sum_run.hashed, 1u);
  EXPECT_EQ(s3_.objects.at("site/e.json").second, Md5("{\"v\": 1}"));
}

TEST_F(RecordSyncTest, ChecksumWithoutARecordAdoptsWhatItVerified) {
  FiveFiles();
  for (const auto& [rel, body] : std::vector<std::pair<std::string, std::string>>{
           {"index.html", "<p>home 09</p>"}, {"a.css", "body{color:red}"}, {"b/c.js", "let x = 2;"}}) {
    s3_.objects["site/" + rel] = {body.size(), Md5(body)};
  }
  SyncResult first = Run(Options(Compare::kChecksum));
  EXPECT_EQ(first.hashed, 3u);
  EXPECT_EQ(first.uploaded, 3u);  // b/c.js differs; b/d.txt and e.json are new
  EXPECT_EQ(Entries().size(), 5u);
  SyncResult second = Run(Options(Compare::kChecksum));
  EXPECT_EQ(second.hashed, 0u);
  EXPECT_EQ(second.uploaded, 0u);
}

TEST_F(RecordSyncTest, DeletingTheRecordOnlyCostsARehash) {
  FiveFiles();
  Run(Options(Compare::kChecksum));
  std::filesystem::remove(RecordFile());
  SyncResult cold = Run(Options(Compare::kChecksum));
  EXPECT_EQ(cold.uploaded, 0u);
  EXPECT_EQ(cold.hashed, 5u);
  EXPECT_EQ(Run(Options(Compare::kChecksum)).hashed, 0u);
}

TEST_F(RecordSyncTest, WithoutAnEntrySizeOnlyCountsNewerSameSizeFiles) {
  Put("old.html", "same");
  Put("new.html", "same");
  Put("other.html", "longer body");
  s3_.objects["site/old.html"] = {4, Md5("diff")};
  s3_.objects["site/new.html"] = {4, Md5("diff")};
  s3_.objects["site/other.html"] = {3, Md5("abc")};
  // Files are dated ~100 s ago: one object is older than that, one newer.
  const auto iso = [](std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char text[32];
    std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S.000Z", &tm);
    return std::string(text);
  };
  const std::time_t now = std::time(nullptr);
  s3_.last_modified["site/old.html"] = iso(now);
  s3_.last_modified["site/new.html"] = iso(now - 3600);
  SyncOptions options = Options(Compare::kSize);
  options.record_file.clear();
  SyncResult r = Run(options);
  EXPECT_EQ(r.newer_same_size, 1u);
  EXPECT_EQ(r.uploaded, 1u);  // other.html: another size
  EXPECT_EQ(r.hashed, 0u);
  // Under checksum they are compared instead, and none is counted.
  options.compare = Compare::kChecksum;
  SyncResult c = Run(options);
  EXPECT_EQ(c.newer_same_size, 0u);
  EXPECT_EQ(c.hashed, 3u);  // other.html too, now that its object has its size
  EXPECT_EQ(c.uploaded, 2u);
}

TEST_F(RecordSyncTest, DeletedKeysLeaveTheRecordAndFailedUploadsAreSentAgain) {
  FiveFiles();
  Run(Options(Compare::kSize));
  std::filesystem::remove(site_ / "e.json");
  Put("a.css", "body{color:tan}");
  s3_.put_faults["site/a.css"] = testing::Fault::kFail;
  Recorder reporter;
  s3_.log.clear();
  auto r = RunSync(Options(Compare::kSize), endpoint_, s3_, reporter);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->failed, 1u);
  auto entries = Entries();
  // A failed upload leaves the entry of the object still there: the next run reads the file and sends it.
  EXPECT_EQ(entries.at("a.css").md5, Md5("body{color:red}"));
  // Not deleted: nothing is deleted after a failed upload; e.json's object and entry stay.
  EXPECT_TRUE(entries.contains("e.json"));
  s3_.put_faults.clear();
  SyncResult retry = Run(Options(Compare::kSize));
  EXPECT_EQ(retry.uploaded, 1u);
  EXPECT_EQ(retry.deleted, 1u);
  entries = Entries();
  EXPECT_FALSE(entries.contains("e.json"));
  EXPECT_EQ(entries.at("a.css").md5, Md5("body{color:tan}"));
}

TEST_F(RecordSyncTest, DryRunsReadTheRecordButNeverWriteIt) {
  FiveFiles();
  SyncOptions dry = Options(Compare::kChecksum);
  dry.dry_run = true;
  Run(dry);
  EXPECT_FALSE(std::filesystem::exists(RecordFile()));
  Run(Options(Compare::kChecksum));
  const auto before = Entries();
  Touch("a.css");                        // would refresh the entry's stat
  Put("b/d.txt", "eeee");                // would be uploaded and recorded
  SyncResult planned = Run(dry);
  EXPECT_EQ(planned.uploaded, 1u);
  EXPECT_EQ(planned.hashed, 2u);
  EXPECT_EQ(Entries(), before);
}

TEST_F(RecordSyncTest, ChangedHeadersAreUpdatedByCopyWithoutSendingBodies) {
  FiveFiles();
  Run(Options(Compare::kSize));
  const auto before = Entries();
  SyncOptions options = Options(Compare::kSize);
  sitemap::HeaderRule rule;
  rule.match = "*.css";
  rule.cache_control = "max-age=60";
  options.filters.headers.push_back(rule);
  Recorder reporter;
  SyncResult r = Run(options, &reporter);
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"LIST", "COPY site/a.css"}));
  EXPECT_EQ(r.uploaded, 1u);
  EXPECT_EQ(r.headers_updated, 1u);
  EXPECT_EQ(r.bytes_uploaded, 0u);
  EXPECT_EQ(r.hashed, 1u);  // the body is checked before only its headers are changed
  EXPECT_EQ(reporter.reasons.at("a.css"), UploadReason::kHeadersChanged);
  const auto after = Entries();
  EXPECT_NE(after.at("a.css").headers_digest, before.at("a.css").headers_digest);
  EXPECT_EQ(after.at("b/c.js"), before.at("b/c.js"));
  EXPECT_EQ(Run(options).uploaded, 0u);
  // A header change together with a same-size edit sends the body.
  options.filters.headers.back().cache_control = "max-age=120";
  Put("a.css", "body{color:tan}");
  SyncResult both = Run(options);
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"LIST", "PUT site/a.css"}));
  EXPECT_EQ(both.headers_updated, 0u);
}

TEST_F(RecordSyncTest, AWatchKeepsTheSizeOfAnObjectItCopied) {
  // A copy sends no body: the session's listing must keep the object's size, or the next batch would take the
  // file for changed and send it.
  FiveFiles();
  Run(Options(Compare::kSize));
  SyncOptions options = Options(Compare::kSize);
  sitemap::HeaderRule rule;
  rule.match = "*.css";
  rule.cache_control = "max-age=60";
  options.filters.headers.push_back(rule);
  Session watch(options, endpoint_, s3_);
  Recorder reporter;
  auto initial = watch.Initial(reporter);
  ASSERT_TRUE(initial);
  EXPECT_EQ(initial->headers_updated, 1u);
  for (const RemoteObject& o : watch.Remote()) {
    if (o.key == "site/a.css") {
      EXPECT_EQ(o.size, std::string("body{color:red}").size());
    }
  }
  s3_.log.clear();
  Touch("a.css");
  auto batch = watch.Batch({"a.css"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(batch);
  EXPECT_EQ(batch->result.uploaded, 0u);
  EXPECT_EQ(s3_.log, std::vector<std::string>{});
}

TEST_F(RecordSyncTest, AnUnreadableRecordIsAWarningAndTheRunGoesOn) {
  FiveFiles();
  std::filesystem::create_directories(RecordFile() / "x");  // a folder where the file should be
  Recorder reporter;
  SyncResult r = Run(Options(Compare::kChecksum), &reporter);
  EXPECT_EQ(r.uploaded, 5u);
  ASSERT_EQ(reporter.warnings.size(), 1u);
  EXPECT_NE(reporter.warnings[0].find(RecordFile().string()), std::string::npos);
  EXPECT_NE(reporter.warnings[0].find("without it"), std::string::npos);
}

TEST_F(RecordSyncTest, ADamagedRecordIsRecreated) {
  FiveFiles();
  Run(Options(Compare::kChecksum));
  std::ofstream(RecordFile(), std::ios::binary | std::ios::trunc) << std::string(10000, '\x7f');
  std::filesystem::remove(RecordFile().string() + "-wal");
  SyncResult r = Run(Options(Compare::kChecksum));
  EXPECT_EQ(r.uploaded, 0u);
  EXPECT_EQ(r.hashed, 5u);
  EXPECT_EQ(Entries().size(), 5u);
}

TEST_F(RecordSyncTest, WatchBatchesUseAndUpdateTheSameRecord) {
  FiveFiles();
  Run(Options(Compare::kSize));
  Session watch(Options(Compare::kSize), endpoint_, s3_);
  Recorder reporter;
  ASSERT_TRUE(watch.Initial(reporter));
  // An event for a file whose stat is as recorded: nothing read, nothing sent.
  s3_.log.clear();
  auto quiet = watch.Batch({"a.css"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(quiet);
  EXPECT_EQ(quiet->result.hashed, 0u);
  EXPECT_EQ(quiet->result.uploaded, 0u);
  // A same-size edit under watch, then a one-shot sync sharing the record reads nothing.
  Put("index.html", "<p>home 10</p>");
  auto edited = watch.Batch({"index.html"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(edited);
  EXPECT_EQ(edited->result.uploaded, 1u);
  EXPECT_EQ(edited->result.hashed, 1u);
  SyncResult sync = Run(Options(Compare::kChecksum));
  EXPECT_EQ(sync.uploaded, 0u);
  EXPECT_EQ(sync.hashed, 0u);
  // And what the sync records, the watch uses: a touch seen by the sync is not read again by the watch.
  Touch("b/c.js");
  EXPECT_EQ(Run(Options(Compare::kSize)).hashed, 1u);
  auto touched = watch.Batch({"b/c.js"}, false, BatchDeletes::kWith, reporter);
  ASSERT_TRUE(touched);
  EXPECT_EQ(touched->result.hashed, 0u);
  EXPECT_EQ(touched->result.uploaded, 0u);
}

TEST_F(RecordSyncTest, ForceUploadsEverythingAndRecordsIt) {
  FiveFiles();
  Run(Options(Compare::kChecksum));
  SyncOptions force = Options(Compare::kChecksum);
  force.force = true;
  SyncResult r = Run(force);
  EXPECT_EQ(r.uploaded, 5u);
  EXPECT_EQ(r.hashed, 0u);
  EXPECT_EQ(Run(Options(Compare::kChecksum)).hashed, 0u);
}


TEST_F(RecordSyncTest, EncodedFilesTrustedByTheirEntryAreNotEncodedAgain) {
  FiveFiles();
  SyncOptions options = Options(Compare::kSize);
  options.filters.compress.push_back({"*.html", sitemap::Encoding::kGzip});
  SyncResult first = Run(options);
  EXPECT_EQ(first.uploaded, 5u);
  // New objects are uploaded whatever their content: nothing is read to compare (index.html is encoded once, by
  // its upload, which also gives the record the encoded body's MD5).
  EXPECT_EQ(first.hashed, 0u);
  const RecordEntry entry = Entries().at("index.html");
  EXPECT_EQ(entry.body_size, s3_.objects.at("site/index.html").first);
  EXPECT_NE(entry.body_size, entry.file_size);
  // Its stat as recorded: the recorded encoded size, no encoding.
  SyncResult again = Run(options);
  EXPECT_EQ(again.uploaded, 0u);
  EXPECT_EQ(again.hashed, 0u);
  // Touched: encoded (read) and found the same.
  Touch("index.html");
  SyncResult touched = Run(options);
  EXPECT_EQ(touched.uploaded, 0u);
  EXPECT_EQ(touched.hashed, 1u);
  // Edited: the encoded body differs.
  Put("index.html", "<p>home 10</p>");
  SyncResult edited = Run(options);
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"LIST", "PUT site/index.html"}));
  EXPECT_EQ(edited.uploaded, 1u);
  // Compression turned on for a file recorded as sent plain: its body changes, so it is uploaded, not copied.
  options.filters.compress.push_back({"*.css", sitemap::Encoding::kGzip});
  Recorder reporter;
  SyncResult css = Run(options, &reporter);
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"LIST", "PUT site/a.css"}));
  EXPECT_NE(reporter.reasons.at("a.css"), UploadReason::kHeadersChanged);
  EXPECT_EQ(css.headers_updated, 0u);
  // And turned off again: the plain body goes up again.
  options.filters.compress.pop_back();
  Run(options);
  EXPECT_EQ(s3_.log, (std::vector<std::string>{"LIST", "PUT site/a.css"}));
  EXPECT_EQ(Run(options).uploaded, 0u);
}


TEST_F(RecordSyncTest, AFileRewrittenBetweenTheDiffAndItsUploadIsRecordedWithWhatWasSent) {
  // The MD5 a single PutObject records comes from the read that sends the body: a file a generator rewrites after
  // the diff is recorded with the bytes S3 got, whichever they are, and a later run compares with those.
  FiveFiles();
  SyncOptions options = Options(Compare::kSize);
  options.before_changes = [&](const Plan&) -> aws::Result<void> {
    std::ofstream(site_ / "b/d.txt", std::ios::binary | std::ios::trunc) << "DDDD";  // same size, after the diff
    return {};
  };
  EXPECT_EQ(Run(options).uploaded, 5u);
  EXPECT_EQ(s3_.objects.at("site/b/d.txt").second, Md5("DDDD"));
  EXPECT_EQ(Entries().at("b/d.txt").md5, Md5("DDDD"));
  // The stat recorded is the walk's, older than the rewrite: the next run reads the file, finds the bytes S3
  // has, and sends nothing.
  SyncResult next = Run(Options(Compare::kSize));
  EXPECT_EQ(next.uploaded, 0u);
}

TEST_F(RecordSyncTest, AnUploadIsRecordedWithTheMd5OfWhatWasSent) {
  FiveFiles();
  Run(Options(Compare::kSize));
  // Another size: uploaded without being read to compare; the record must get the new body's MD5, not the old.
  Put("a.css", "body{color:rebeccapurple}");
  EXPECT_EQ(Run(Options(Compare::kSize)).uploaded, 1u);
  EXPECT_EQ(Entries().at("a.css").md5, Md5("body{color:rebeccapurple}"));
  EXPECT_EQ(Entries().at("a.css").etag, s3_.objects.at("site/a.css").second);
  // Back to the first content at the first size: uploaded again, not taken for the recorded body.
  Put("a.css", "body{color:red}");
  EXPECT_EQ(Run(Options(Compare::kSize)).uploaded, 1u);
  Put("a.css", "body{color:rebeccapurple}");
  EXPECT_EQ(Run(Options(Compare::kSize)).uploaded, 1u);
  EXPECT_EQ(s3_.objects.at("site/a.css").second, Md5("body{color:rebeccapurple}"));
}

}  // namespace
}  // namespace sitesync::sync
