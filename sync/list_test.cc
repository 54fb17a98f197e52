// ListObjects' parallel walk against an in-memory ListObjectsV2 with tiny pages, versus the plain key set.
#include <gtest/gtest.h>

#include <random>
#include <set>

#include <fmt/format.h>

#include "sync/s3_client.h"

namespace sitesync::sync {
namespace {

std::string Escape(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else out += c;
  }
  return out;
}

// ListObjectsV2 semantics: byte order, prefix, delimiter (CommonPrefixes), start-after, continuation tokens
// (opaque: here the last key or prefix returned), pages of `page_size` entries (keys and prefixes together).
class FakeList final : public aws::HttpClient {
 public:
  std::set<std::string> keys;
  std::size_t page_size = 5;
  int requests = 0;
  bool ignore_start_after = false;
  bool drop_containing_prefix = false;  ///< moto's way: no CommonPrefix for the folder holding StartAfter.

  void Submit(aws::HttpRequest request, Callback done) override { queue_.emplace_back(std::move(request), std::move(done)); }
  void Run() override {
    while (!queue_.empty()) {
      auto [r, done] = std::move(queue_.front());
      queue_.erase(queue_.begin());
      done(Answer(r));
    }
  }
  aws::ClientStats Stats() const override { return {}; }

 private:
  aws::Result<aws::HttpResponse> Answer(const aws::HttpRequest& r) {
    ++requests;
    std::map<std::string, std::string> q(r.query.begin(), r.query.end());
    const std::string prefix = q["prefix"];
    const bool delimited = q.contains("delimiter");
    std::string from = q.contains("continuation-token") ? tokens_.at(q["continuation-token"])
                       : ignore_start_after            ? ""
                                                       : q["start-after"];
    std::vector<std::pair<std::string, bool>> entries;  // (key or common prefix, is_prefix)
    std::string last_prefix;
    for (auto it = keys.upper_bound(from); it != keys.end(); ++it) {
      const std::string& k = *it;
      if (!k.starts_with(prefix)) continue;
      if (delimited) {
        const auto slash = k.find('/', prefix.size());
        if (slash != std::string::npos) {
          const std::string cp = k.substr(0, slash + 1);
          // A folder holding keys after `from` is listed even when `from` lies inside it (S3 rolls up the keys
          // after StartAfter).
          if (cp == last_prefix || (drop_containing_prefix && cp <= from)) continue;
          last_prefix = cp;
          entries.emplace_back(cp, true);
          continue;
        }
      }
      entries.emplace_back(k, false);
    }
    aws::HttpResponse res;
    res.status = 200;
    const bool truncated = entries.size() > page_size;
    if (truncated) entries.resize(page_size);
    res.body = "<ListBucketResult>";
    for (const auto& [e, is_prefix] : entries) {
      res.body += is_prefix ? fmt::format("<CommonPrefixes><Prefix>{}</Prefix></CommonPrefixes>", Escape(e))
                            : fmt::format("<Contents><Key>{}</Key><Size>1</Size><ETag>\"e\"</ETag></Contents>", Escape(e));
    }
    res.body += fmt::format("<IsTruncated>{}</IsTruncated>", truncated ? "true" : "false");
    if (truncated) {
      // Continue after the last entry; for a common prefix, after every key under it.
      std::string next = entries.back().first;
      if (entries.back().second) next += "\xff";
      const std::string token = fmt::format("t{}", tokens_.size());
      tokens_[token] = next;
      res.body += fmt::format("<NextContinuationToken>{}</NextContinuationToken>", token);
    }
    res.body += "</ListBucketResult>";
    return res;
  }

  std::vector<std::pair<aws::HttpRequest, Callback>> queue_;
  std::map<std::string, std::string> tokens_;
};

std::vector<std::string> Keys(const std::vector<RemoteObject>& objects) {
  std::vector<std::string> out;
  for (const auto& o : objects) out.push_back(o.key);
  return out;
}

TEST(ListObjects, ParallelWalkFindsExactlyTheKeysOnRandomTrees) {
  std::mt19937 rng(11);
  const S3Endpoint endpoint{"http://fake", true, "us-east-1"};
  for (int round = 0; round < 200; ++round) {
    FakeList s3;
    s3.page_size = 1 + rng() % 9;
    s3.ignore_start_after = round % 7 == 0;
    s3.drop_containing_prefix = round % 2 == 0;
    const std::string prefix = round % 3 == 0 ? "" : "site/";
    const int n = static_cast<int>(rng() % 120);
    const char* names[] = {"a", "b", "docs", "x y", "a//b", "z", "p+q", ""};
    for (int i = 0; i < n; ++i) {
      std::string key = (rng() % 4 == 0 ? std::string("other/") : prefix);
      const int depth = static_cast<int>(rng() % 5);
      for (int d = 0; d < depth; ++d) key += std::string(names[rng() % 8]) + "/";
      key += fmt::format("f{}", rng() % 50);
      s3.keys.insert(key);
    }
    std::vector<std::string> expected;
    for (const auto& k : s3.keys) {
      if (k.starts_with(prefix)) expected.push_back(k);
    }
    auto listed = ListObjects(s3, endpoint, "bucket", prefix);
    ASSERT_TRUE(listed.has_value()) << listed.error().message;
    EXPECT_EQ(Keys(*listed), expected) << "round " << round << " page size " << s3.page_size;
  }
}

TEST(ListObjects, SmallCase) {
  FakeList s3;
  s3.page_size = 2;
  for (const char* k : {"/x", "a//b/f2", "a/f1", "a/z/q", "b/c", "b/d/e", "c", "d/x/y/z", "e/f", "f/g", "g/h", "h/i", "i/j"}) s3.keys.insert(k);
  auto listed = ListObjects(s3, {"http://fake", true, "us-east-1"}, "bucket", "");
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(Keys(*listed), std::vector<std::string>(s3.keys.begin(), s3.keys.end()));
}

TEST(ListObjects, OnePageIsOneRequest) {
  FakeList s3;
  s3.page_size = 1000;
  for (int i = 0; i < 999; ++i) s3.keys.insert(fmt::format("d{}/f{}", i % 10, i));
  auto listed = ListObjects(s3, {"http://fake", true, "us-east-1"}, "bucket", "");
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->size(), 999u);
  EXPECT_EQ(s3.requests, 1);
}

TEST(ListObjects, LargeFoldersAreWalkedSideBySide) {
  // 50 folders of 200 keys under docs/: the folders are found two levels down and walked in parallel, so the
  // deepest chain of pages is far shorter than the 10,000 keys / 100 a page of a plain walk.
  FakeList s3;
  s3.page_size = 100;
  for (int f = 0; f < 50; ++f) {
    for (int i = 0; i < 200; ++i) s3.keys.insert(fmt::format("docs/s{:02}/p{:03}/index.html", f, i));
  }
  auto listed = ListObjects(s3, {"http://fake", true, "us-east-1"}, "bucket", "");
  ASSERT_TRUE(listed.has_value());
  EXPECT_EQ(listed->size(), 10000u);
}

}  // namespace
}  // namespace sitesync::sync
