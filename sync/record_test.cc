// The local record (sqlite_record.cc) over real SQLite files in a temp folder, and what a sync does with it
// (Session over FakeS3): which files are read, what goes up, what is recorded.
#include <gtest/gtest.h>

#include <fcntl.h>
#include <sqlite3.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
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

}  // namespace
}  // namespace sitesync::sync
