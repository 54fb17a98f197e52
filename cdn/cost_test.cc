#include <map>

#include <gtest/gtest.h>

#include "cdn/cdn.h"

namespace sitesync::cdn {
namespace {

using namespace std::chrono;

// Shaped like CloudFront's answers (API 2020-05-31): ListInvalidations and GetInvalidation.
constexpr std::string_view kListPage1 = R"(<?xml version="1.0" encoding="UTF-8"?>
<InvalidationList xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">
  <Marker></Marker>
  <NextMarker>I2NEWER0000002</NextMarker>
  <MaxItems>2</MaxItems>
  <IsTruncated>true</IsTruncated>
  <Quantity>2</Quantity>
  <Items>
    <InvalidationSummary><Id>I3NEWEST000003</Id><CreateTime>2026-12-05T21:14:09.512Z</CreateTime><Status>InProgress</Status></InvalidationSummary>
    <InvalidationSummary><Id>I2NEWER0000002</Id><CreateTime>2026-12-01T00:00:00Z</CreateTime><Status>Completed</Status></InvalidationSummary>
  </Items>
</InvalidationList>)";

constexpr std::string_view kListPage2 = R"(<?xml version="1.0" encoding="UTF-8"?>
<InvalidationList xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/">
  <Marker>I2NEWER0000002</Marker>
  <NextMarker>I0OLDEST000000</NextMarker>
  <MaxItems>2</MaxItems>
  <IsTruncated>true</IsTruncated>
  <Quantity>2</Quantity>
  <Items>
    <InvalidationSummary><Id>I1OLDER0000001</Id><CreateTime>2026-12-01T01:30:00+02:00</CreateTime><Status>Completed</Status></InvalidationSummary>
    <InvalidationSummary><Id>I0OLDEST000000</Id><CreateTime>2026-11-30T23:59:59.999Z</CreateTime><Status>Completed</Status></InvalidationSummary>
  </Items>
</InvalidationList>)";

std::string DetailXml(std::string_view id, std::string_view created, std::initializer_list<std::string_view> paths) {
  std::string items;
  for (auto p : paths) items += "<Path>" + std::string(p) + "</Path>";
  return R"(<?xml version="1.0" encoding="UTF-8"?>
<Invalidation xmlns="http://cloudfront.amazonaws.com/doc/2020-05-31/"><Id>)" +
         std::string(id) + "</Id><Status>Completed</Status><CreateTime>" + std::string(created) +
         "</CreateTime><InvalidationBatch><Paths><Quantity>" + std::to_string(paths.size()) + "</Quantity><Items>" +
         items + "</Items></Paths><CallerReference>ref</CallerReference></InvalidationBatch></Invalidation>";
}

/// Answers from XML fixtures through the real parsers, and records what was asked.
class FakeHistory final : public InvalidationHistory {
 public:
  aws::Result<InvalidationPage> ListInvalidations(const std::string& distribution_id,
                                                  const std::string& marker) override {
    markers.push_back(marker);
    if (fail_list) return std::unexpected(*fail_list);
    EXPECT_EQ(distribution_id, "E123");
    auto it = pages.find(marker);
    if (it == pages.end()) return aws::Fail(aws::ErrorCode::kUsage, "unknown marker " + marker);
    return ParseInvalidationList(it->second);
  }
  aws::Result<InvalidationDetail> GetInvalidation(const std::string& distribution_id,
                                                  const std::string& invalidation_id) override {
    EXPECT_EQ(distribution_id, "E123");
    got.push_back(invalidation_id);
    return ParseInvalidationDetail(details.at(invalidation_id));
  }
  std::map<std::string, std::string> pages;
  std::map<std::string, std::string> details;
  std::optional<aws::Error> fail_list;
  std::vector<std::string> markers;
  std::vector<std::string> got;
};

FakeHistory TwoPages() {
  FakeHistory h;
  h.pages[""] = std::string(kListPage1);
  h.pages["I2NEWER0000002"] = std::string(kListPage2);
  h.pages["I0OLDEST000000"] = "<InvalidationList><IsTruncated>false</IsTruncated><Quantity>0</Quantity></InvalidationList>";
  h.details["I3NEWEST000003"] = DetailXml("I3NEWEST000003", "2026-12-05T21:14:09.512Z", {"/a", "/b", "/c"});
  h.details["I2NEWER0000002"] = DetailXml("I2NEWER0000002", "2026-12-01T00:00:00Z", {"/*"});
  h.details["I1OLDER0000001"] = DetailXml("I1OLDER0000001", "2026-12-01T01:30:00+02:00", {"/x", "/y"});
  h.details["I0OLDEST000000"] = DetailXml("I0OLDEST000000", "2026-11-30T23:59:59.999Z", {"/old"});
  return h;
}

system_clock::time_point Utc(int y, unsigned m, unsigned d, int h = 0, int min = 0) {
  return sys_days(year(y) / month(m) / day(d)) + hours(h) + minutes(min);
}

TEST(ParseIsoTime, FormsCloudFrontAndEmulatorsUse) {
  EXPECT_EQ(ParseIsoTime("2026-12-05T21:14:09.512Z"), floor<seconds>(Utc(2026, 12, 5, 21, 14) + seconds(9)));
  EXPECT_EQ(ParseIsoTime("2026-12-05T21:14:09Z"), floor<seconds>(Utc(2026, 12, 5, 21, 14) + seconds(9)));
  EXPECT_EQ(ParseIsoTime("2026-12-01T01:30:00+02:00"), floor<seconds>(Utc(2026, 11, 30, 23, 30)));
  EXPECT_EQ(ParseIsoTime("2026-11-30T22:30:00-01:30"), floor<seconds>(Utc(2026, 12, 1, 0, 0)));
  EXPECT_EQ(ParseIsoTime("2026-12-05T21:14:09.512000+00:00"), floor<seconds>(Utc(2026, 12, 5, 21, 14) + seconds(9)));
  for (std::string_view bad : {"", "2026-12-05", "2026-12-05T21:14:09", "2026-13-01T00:00:00Z", "2026-02-30T00:00:00Z",
                               "2026-12-05T25:00:00Z", "2026-12-05T21:14:09.Z", "2026-12-05T21:14:09Zjunk",
                               "Sat, 05 Dec 2026 21:14:09 GMT"}) {
    EXPECT_FALSE(ParseIsoTime(bad)) << bad;
  }
}

TEST(ParseInvalidationList, ItemsAndNextMarker) {
  auto page = ParseInvalidationList(kListPage1);
  ASSERT_TRUE(page) << page.error().message;
  ASSERT_EQ(page->items.size(), 2u);
  EXPECT_EQ(page->items[0].id, "I3NEWEST000003");
  EXPECT_EQ(page->items[0].create_time, "2026-12-05T21:14:09.512Z");
  EXPECT_EQ(page->items[0].status, "InProgress");
  EXPECT_EQ(page->next_marker, "I2NEWER0000002");
  auto last = ParseInvalidationList("<InvalidationList><Marker/><MaxItems>100</MaxItems><IsTruncated>false"
                                    "</IsTruncated><Quantity>0</Quantity></InvalidationList>");
  ASSERT_TRUE(last);
  EXPECT_TRUE(last->items.empty());
  EXPECT_EQ(last->next_marker, "");
  EXPECT_FALSE(ParseInvalidationList("<DistributionList/>"));
  EXPECT_FALSE(ParseInvalidationList("not xml"));
}

TEST(ParseInvalidationDetail, PathsOfTheBatch) {
  auto d = ParseInvalidationDetail(DetailXml("I1", "2026-12-01T00:00:00Z", {"/a%20b", "/docs/*"}));
  ASSERT_TRUE(d) << d.error().message;
  EXPECT_EQ(d->id, "I1");
  EXPECT_EQ(d->paths, (std::vector<std::string>{"/a%20b", "/docs/*"}));
  EXPECT_FALSE(ParseInvalidationDetail("<Invalidation><Id>I1</Id></Invalidation>")) << "no batch: not an answer";
  EXPECT_FALSE(ParseInvalidationDetail("<InvalidationList/>"));
}

TEST(CountMonth, CountsThePathsOfThisUtcMonthAcrossPagesAndStopsAtOlderOnes) {
  FakeHistory h = TwoPages();
  auto cost = CountMonth(h, "E123", Utc(2026, 12, 6, 8, 31), 40);
  ASSERT_TRUE(cost) << cost.error().message;
  EXPECT_EQ(cost->month, "2026-12");
  EXPECT_EQ(cost->distribution_id, "E123");
  // I3 (3 paths) and I2 (1 wildcard: one path) are December; I1 was made at 23:30 UTC on November 30; I0 too.
  EXPECT_EQ(cost->invalidations, 2u);
  EXPECT_EQ(cost->submitted, 4u);
  EXPECT_EQ(cost->planned, 40u);
  EXPECT_EQ(cost->total, 44u);
  EXPECT_EQ(cost->above_free, 0u);
  EXPECT_EQ(cost->price_milli_usd, 0u);
  EXPECT_EQ(h.markers, (std::vector<std::string>{"", "I2NEWER0000002"})) << "page 2 reaches November: no page 3";
  EXPECT_EQ(h.got, (std::vector<std::string>{"I3NEWEST000003", "I2NEWER0000002"})) << "only this month's are read";
}

TEST(CountMonth, TheMonthIsTheUtcMonthOfTheInjectedTime) {
  FakeHistory h = TwoPages();
  auto november = CountMonth(h, "E123", Utc(2026, 11, 30, 23, 59), 0);
  ASSERT_TRUE(november) << november.error().message;
  EXPECT_EQ(november->month, "2026-11");
  EXPECT_EQ(november->invalidations, 2u);  // I1 (+02:00, so November in UTC) and I0
  EXPECT_EQ(november->submitted, 3u);
  FakeHistory h2 = TwoPages();
  auto january = CountMonth(h2, "E123", Utc(2027, 1, 1), 7);
  ASSERT_TRUE(january);
  EXPECT_EQ(january->month, "2027-01");
  EXPECT_EQ(january->submitted, 0u);
  EXPECT_EQ(january->total, 7u);
  EXPECT_TRUE(h2.got.empty());
  EXPECT_EQ(h2.markers.size(), 1u) << "the first page is already older than January";
}

TEST(CountMonth, AFailedListIsTheCallersError) {
  FakeHistory h = TwoPages();
  h.fail_list = aws::Error{aws::ErrorCode::kHttp, "AccessDenied: not allowed", false, 403, "AccessDenied"};
  auto cost = CountMonth(h, "E123", Utc(2026, 12, 6), 1);
  ASSERT_FALSE(cost);
  EXPECT_EQ(cost.error().service_code, "AccessDenied");
}

TEST(CountMonth, AnUnreadableCreateTimeIsAParseError) {
  FakeHistory h;
  h.pages[""] = "<InvalidationList><IsTruncated>false</IsTruncated><Items><InvalidationSummary><Id>I9</Id>"
                "<CreateTime>yesterday</CreateTime><Status>Completed</Status></InvalidationSummary></Items>"
                "</InvalidationList>";
  auto cost = CountMonth(h, "E123", Utc(2026, 12, 6), 1);
  ASSERT_FALSE(cost);
  EXPECT_EQ(cost.error().code, aws::ErrorCode::kParse);
  EXPECT_NE(cost.error().message.find("I9"), std::string::npos);
}

TEST(PriceMonth, FreePathsThenHalfACentEach) {
  struct Case {
    std::uint64_t submitted, planned, above, milli, planned_above;
  } cases[] = {
      {0, 0, 0, 0, 0},       {970, 30, 0, 0, 0},        {970, 40, 10, 50, 10},   {1000, 1, 1, 5, 1},
      {1500, 40, 540, 2700, 40}, {0, 3000, 2000, 10000, 2000}, {999, 0, 0, 0, 0},
  };
  for (const auto& c : cases) {
    const MonthCost m = PriceMonth(c.submitted, c.planned);
    EXPECT_EQ(m.total, c.submitted + c.planned);
    EXPECT_EQ(m.above_free, c.above) << c.submitted << "+" << c.planned;
    EXPECT_EQ(m.price_milli_usd, c.milli) << c.submitted << "+" << c.planned;
    EXPECT_EQ(m.planned_above_free, c.planned_above) << c.submitted << "+" << c.planned;
  }
}

TEST(FormatUsd, CentsWhenTheySuffice) {
  EXPECT_EQ(FormatUsd(0), "$0.00");
  EXPECT_EQ(FormatUsd(5), "$0.005");
  EXPECT_EQ(FormatUsd(50), "$0.05");
  EXPECT_EQ(FormatUsd(2700), "$2.70");
  EXPECT_EQ(FormatUsd(12345), "$12.345");
  EXPECT_EQ(FormatUsd(1234560), "$1,234.56");
  EXPECT_EQ(FormatCount(1010), "1,010");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(1000000), "1,000,000");
}

TEST(CostLine, TheIssuesExample) {
  MonthCost c = PriceMonth(970, 40);
  c.distribution_id = "E123";
  c.month = "2026-12";
  const std::string line = CostLine(c);
  EXPECT_NE(line.find("970 paths submitted to E123 + 40 in this plan = 1,010: 10 above the 1,000 free, $0.05"),
            std::string::npos)
      << line;
  EXPECT_NE(line.find("per AWS account, across all its distributions"), std::string::npos) << line;
  EXPECT_NE(line.find("only E123 is counted"), std::string::npos) << line;
  MonthCost under = PriceMonth(3, 4);
  under.distribution_id = "E123";
  under.month = "2026-12";
  EXPECT_NE(CostLine(under).find("= 7: within the 1,000 free, $0.00"), std::string::npos) << CostLine(under);
}

}  // namespace
}  // namespace sitesync::cdn
