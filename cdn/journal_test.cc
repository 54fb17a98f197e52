#include <gtest/gtest.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <optional>
#include <regex>
#include <set>
#include <string>
#include <string_view>
#include <system_error>
#include <vector>

#include "cdn/cdn.h"

namespace sitesync::cdn {
namespace fs = std::filesystem;
namespace {

using Paths = std::vector<std::string>;

class JournalTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string tmpl = (fs::temp_directory_path() / "sitesync-journal-XXXXXX").string();
    ASSERT_NE(::mkdtemp(tmpl.data()), nullptr);
    root_ = tmpl;
    dir_ = root_ / "state" / "sitesync";
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(root_, ec);
  }

  static void WriteFile(const fs::path& file, std::string_view text) {
    fs::create_directories(file.parent_path());
    std::ofstream(file, std::ios::binary) << text;
  }
  std::vector<std::string> Entries() const {
    std::vector<std::string> names;
    std::error_code ec;
    for (const fs::directory_entry& e : fs::directory_iterator(dir_, ec)) names.push_back(e.path().filename());
    std::sort(names.begin(), names.end());
    return names;
  }

  fs::path root_;
  fs::path dir_;
};

TEST_F(JournalTest, MissingFileIsNothingOwed) {
  const Journal journal(dir_);
  const aws::Result<Owed> owed = journal.Load("E2QWRUHAPOMQZL");
  ASSERT_TRUE(owed.has_value()) << owed.error().message;
  EXPECT_EQ(owed->distribution_id, "E2QWRUHAPOMQZL");
  EXPECT_EQ(owed->caller_reference, "");
  EXPECT_TRUE(owed->paths.empty());
  EXPECT_FALSE(fs::exists(dir_)) << "Load must not create the state dir";
}

TEST_F(JournalTest, RoundTrip) {
  const Journal journal(dir_);
  const Owed owed{"E2QWRUHAPOMQZL", "sitesync-20240101T000000Z-0123456789abcdef",
                  {"/", "/a%20b/", "/blog/*", "/caf%C3%A9", "/index.html"}};
  ASSERT_TRUE(journal.Save(owed).has_value());
  EXPECT_TRUE(fs::exists(dir_ / "E2QWRUHAPOMQZL.json"));
  const aws::Result<Owed> loaded = journal.Load("E2QWRUHAPOMQZL");
  ASSERT_TRUE(loaded.has_value()) << loaded.error().message;
  EXPECT_EQ(loaded->distribution_id, owed.distribution_id);
  EXPECT_EQ(loaded->caller_reference, owed.caller_reference);
  EXPECT_EQ(loaded->paths, owed.paths);
  // Another distribution has its own file.
  const aws::Result<Owed> other = journal.Load("EOTHER");
  ASSERT_TRUE(other.has_value());
  EXPECT_TRUE(other->paths.empty());
}

TEST_F(JournalTest, FileFormat) {
  const Journal journal(dir_);
  ASSERT_TRUE(journal.Save(Owed{"E1", "ref", {"/a", "/b"}}).has_value());
  std::ifstream in(dir_ / "E1.json");
  const std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  EXPECT_NE(text.find("\"version\": 1"), std::string::npos) << text;
  EXPECT_NE(text.find("\"distribution\": \"E1\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"caller_reference\": \"ref\""), std::string::npos) << text;
  EXPECT_NE(text.find("\"paths\""), std::string::npos) << text;
}

TEST_F(JournalTest, SaveReplacesAtomicallyAndLeavesNoTempFiles) {
  const Journal journal(dir_);
  ASSERT_TRUE(journal.Save(Owed{"E1", "r1", {"/a"}}).has_value());
  ASSERT_TRUE(journal.Save(Owed{"E1", "r2", {"/a", "/b"}}).has_value());
  ASSERT_TRUE(journal.Save(Owed{"E2", "r3", {"/c"}}).has_value());
  EXPECT_EQ(Entries(), (std::vector<std::string>{"E1.json", "E2.json"}));
  const aws::Result<Owed> loaded = journal.Load("E1");
  ASSERT_TRUE(loaded.has_value());
  EXPECT_EQ(loaded->caller_reference, "r2");
  EXPECT_EQ(loaded->paths, (Paths{"/a", "/b"}));
}

TEST_F(JournalTest, StateDirIsCreatedPrivate) {
  const Journal journal(dir_);
  ASSERT_TRUE(journal.Save(Owed{"E1", "r", {"/a"}}).has_value());
  struct stat st {};
  ASSERT_EQ(::stat(dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((root_ / "state").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
}

TEST_F(JournalTest, SaveFailsWhenTheStateDirIsAFile) {
  WriteFile(root_ / "state", "not a folder");
  const Journal journal(dir_);
  const aws::Result<void> saved = journal.Save(Owed{"E1", "r", {"/a"}});
  ASSERT_FALSE(saved.has_value());
  EXPECT_EQ(saved.error().code, aws::ErrorCode::kIo);
  EXPECT_NE(saved.error().message.find((root_ / "state").string()), std::string::npos) << saved.error().message;
}

TEST_F(JournalTest, CorruptFilesNameTheFileAndTheWayOut) {
  const Journal journal(dir_);
  const fs::path file = dir_ / "E1.json";
  const std::string_view bad[] = {
      "{\"version\":1,\"distribution\":\"E1\",",                                       // Torn.
      "",                                                                              // Empty.
      "[1, 2]",                                                                        // Not an object.
      "{\"version\":1,\"distribution\":\"E1\",\"caller_reference\":\"r\"}",            // No paths.
      "{\"version\":1,\"distribution\":\"E1\",\"caller_reference\":\"r\",\"paths\":[1]}",  // Not a string.
      "{\"version\":1,\"distribution\":\"E1\",\"caller_reference\":7,\"paths\":[]}",  // Wrong type.
      "{\"version\":3,\"distribution\":\"E1\",\"caller_reference\":\"r\",\"paths\":[]}",  // Future version.
      "{\"distribution\":\"E1\",\"caller_reference\":\"r\",\"paths\":[]}",               // No version.
      "{\"version\":1,\"distribution\":\"E9\",\"caller_reference\":\"r\",\"paths\":[]}",  // Someone else's.
  };
  for (std::string_view text : bad) {
    WriteFile(file, text);
    const aws::Result<Owed> owed = journal.Load("E1");
    ASSERT_FALSE(owed.has_value()) << text;
    EXPECT_EQ(owed.error().code, aws::ErrorCode::kParse) << text;
    EXPECT_NE(owed.error().message.find(file.string()), std::string::npos) << owed.error().message;
    EXPECT_NE(owed.error().message.find("delete it"), std::string::npos) << owed.error().message;
    EXPECT_NE(owed.error().message.find("fix it"), std::string::npos) << owed.error().message;
  }
}

TEST_F(JournalTest, UnreadableFileIsAnIoError) {
  fs::create_directories(dir_ / "E1.json");  // A folder where the file should be: read fails with EISDIR.
  const aws::Result<Owed> owed = Journal(dir_).Load("E1");
  ASSERT_FALSE(owed.has_value());
  EXPECT_EQ(owed.error().code, aws::ErrorCode::kIo);
  EXPECT_NE(owed.error().message.find("E1.json"), std::string::npos) << owed.error().message;
}

TEST_F(JournalTest, Clear) {
  const Journal journal(dir_);
  ASSERT_TRUE(journal.Save(Owed{"E1", "r", {"/a"}}).has_value());
  ASSERT_TRUE(journal.Save(Owed{"E2", "r", {"/b"}}).has_value());
  ASSERT_TRUE(journal.Clear("E1").has_value());
  EXPECT_EQ(Entries(), std::vector<std::string>{"E2.json"});
  const aws::Result<Owed> owed = journal.Load("E1");
  ASSERT_TRUE(owed.has_value());
  EXPECT_TRUE(owed->paths.empty());
  // Clearing what is not there is fine, also when the state dir does not exist.
  EXPECT_TRUE(journal.Clear("E1").has_value());
  EXPECT_TRUE(Journal(root_ / "nowhere").Clear("E1").has_value());
}

TEST(JournalFileFor, SafeIdsAreUsedAsIsOthersAreHexEncoded) {
  const Journal journal("/state");
  EXPECT_EQ(journal.FileFor("E2QWRUHAPOMQZL"), fs::path("/state/E2QWRUHAPOMQZL.json"));
  EXPECT_EQ(journal.FileFor("a_b-C9"), fs::path("/state/a_b-C9.json"));
  EXPECT_EQ(journal.FileFor("../x"), fs::path("/state/x.2e2e2f78.json"));
  EXPECT_EQ(journal.FileFor("a/b"), fs::path("/state/x.612f62.json"));
  EXPECT_EQ(journal.FileFor(""), fs::path("/state/x..json"));
  EXPECT_EQ(journal.FileFor("\xc3\xa9"), fs::path("/state/x.c3a9.json"));
  // No unsafe id can land on a safe id's file, or outside the folder.
  for (const std::string id : {"..", "x.61", "/etc/passwd", "a b", "a.json"}) {
    const fs::path file = journal.FileFor(id);
    EXPECT_EQ(file.parent_path(), fs::path("/state")) << id;
    EXPECT_TRUE(file.filename().string().starts_with("x.")) << id;
  }
}

// ---------------------------------------------------------------------------------------------------- AddOwed

TEST(AddOwed, FirstPathsMakeAReference) {
  Owed owed{"E1", "", {}};
  EXPECT_TRUE(AddOwed(owed, Paths{"/b", "/a", "/b"}, /*new_batch=*/false));
  EXPECT_EQ(owed.paths, (Paths{"/a", "/b"}));
  EXPECT_TRUE(owed.caller_reference.starts_with("sitesync-")) << owed.caller_reference;
}

TEST(AddOwed, RetryOfTheSamePathsKeepsTheReference) {
  Owed owed{"E1", "ref-1", {"/a", "/b"}};
  EXPECT_FALSE(AddOwed(owed, Paths{"/b", "/a"}, /*new_batch=*/false));
  EXPECT_EQ(owed.caller_reference, "ref-1");
  EXPECT_EQ(owed.paths, (Paths{"/a", "/b"}));
  EXPECT_FALSE(AddOwed(owed, Paths{}, /*new_batch=*/false));
  EXPECT_EQ(owed.caller_reference, "ref-1");
}

TEST(AddOwed, NewBatchChangesTheReference) {
  Owed owed{"E1", "ref-1", {"/a", "/b"}};
  EXPECT_TRUE(AddOwed(owed, Paths{"/a"}, /*new_batch=*/true));
  EXPECT_NE(owed.caller_reference, "ref-1");
  EXPECT_EQ(owed.paths, (Paths{"/a", "/b"}));
  const std::string second = owed.caller_reference;
  EXPECT_TRUE(AddOwed(owed, Paths{"/c"}, /*new_batch=*/true));
  EXPECT_NE(owed.caller_reference, second);
  EXPECT_EQ(owed.paths, (Paths{"/a", "/b", "/c"}));
}

TEST(AddOwed, GrownSetGetsANewReference) {
  // CloudFront answers InvalidationBatchAlreadyExists to a known reference with other paths.
  Owed owed{"E1", "ref-1", {"/a"}};
  EXPECT_TRUE(AddOwed(owed, Paths{"/c", "/a"}, /*new_batch=*/false));
  EXPECT_NE(owed.caller_reference, "ref-1");
  EXPECT_EQ(owed.paths, (Paths{"/a", "/c"}));
}

TEST(AddOwed, NothingOwedStaysEmpty) {
  Owed owed{"E1", "", {}};
  EXPECT_FALSE(AddOwed(owed, Paths{}, /*new_batch=*/true));
  EXPECT_EQ(owed.caller_reference, "");
  EXPECT_TRUE(owed.paths.empty());
}

TEST(NewCallerReference, FormatAndUniqueness) {
  const std::regex format("sitesync-[0-9]{8}T[0-9]{6}Z-[0-9a-f]{16}");
  std::set<std::string> seen;
  for (int i = 0; i < 200; ++i) {
    const std::string ref = NewCallerReference();
    EXPECT_TRUE(std::regex_match(ref, format)) << ref;
    seen.insert(ref);
  }
  EXPECT_EQ(seen.size(), 200u);
}

// --------------------------------------------------------------------------------------------------- StateDir

aws::EnvLookup Env(std::map<std::string, std::string> vars) {
  return [vars = std::move(vars)](std::string_view name) -> std::optional<std::string> {
    const auto it = vars.find(std::string(name));
    if (it == vars.end()) return std::nullopt;
    return it->second;
  };
}

TEST(StateDir, Precedence) {
  struct Case {
    std::map<std::string, std::string> vars;
    std::string want;
  };
  const Case cases[] = {
      {{{"XDG_STATE_HOME", "/xdg"}, {"HOME", "/home/u"}}, "/xdg/sitesync"},
      {{{"XDG_STATE_HOME", "/xdg"}}, "/xdg/sitesync"},
      {{{"HOME", "/home/u"}}, "/home/u/.local/state/sitesync"},
      {{{"XDG_STATE_HOME", ""}, {"HOME", "/home/u"}}, "/home/u/.local/state/sitesync"},
      // XDG Base Directory: relative values are invalid and ignored.
      {{{"XDG_STATE_HOME", "rel/state"}, {"HOME", "/home/u"}}, "/home/u/.local/state/sitesync"},
  };
  for (const Case& c : cases) {
    const aws::Result<fs::path> dir = StateDir(Env(c.vars));
    ASSERT_TRUE(dir.has_value()) << c.want;
    EXPECT_EQ(*dir, fs::path(c.want));
  }
}

TEST(StateDir, NeitherIsAConfigError) {
  for (const std::map<std::string, std::string>& vars : std::vector<std::map<std::string, std::string>>{
           {}, {{"HOME", ""}}, {{"XDG_STATE_HOME", ""}, {"HOME", ""}}, {{"XDG_STATE_HOME", "x"}, {"HOME", "y"}}}) {
    const aws::Result<fs::path> dir = StateDir(Env(vars));
    ASSERT_FALSE(dir.has_value());
    EXPECT_EQ(dir.error().code, aws::ErrorCode::kConfig);
    EXPECT_NE(dir.error().message.find("XDG_STATE_HOME"), std::string::npos);
    EXPECT_NE(dir.error().message.find("HOME"), std::string::npos);
  }
}

}  // namespace
}  // namespace sitesync::cdn
