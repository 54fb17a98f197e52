// The CloudFront API calls sitesync makes (API version 2020-05-31), through the aws/ multi loop.
#include <algorithm>
#include <thread>

#include <fmt/format.h>

#include "cdn/cdn.h"

namespace sitesync::cdn {
namespace {

using aws::ErrorCode;
using aws::Fail;

constexpr std::string_view kApi = "/2020-05-31";
constexpr std::string_view kXmlns = "http://cloudfront.amazonaws.com/doc/2020-05-31/";

aws::HttpRequest CloudFrontRequest(const CloudFrontEndpoint& endpoint, std::string method, std::string path) {
  aws::HttpRequest r;
  r.service = "cloudfront";
  // CloudFront is global: its SigV4 scope is the partition's global region (us-east-1; cn-northwest-1 in China).
  r.region = endpoint.region.empty() ? "us-east-1" : endpoint.region;
  r.mode = aws::SigningMode::kGeneric;
  r.method = std::move(method);
  r.endpoint = endpoint.endpoint;
  while (r.endpoint.ends_with('/')) r.endpoint.pop_back();
  r.path = std::string(kApi) + path;
  return r;
}

aws::Result<Invalidation> ParseInvalidation(std::string_view body, std::string_view what) {
  auto doc = aws::ParseXml(body);
  if (!doc) return std::unexpected(doc.error());
  if (doc->name != "Invalidation" || doc->ChildText("Id").empty()) {
    return Fail(ErrorCode::kParse, fmt::format("{}: the answer is not an Invalidation", what));
  }
  return Invalidation{doc->ChildText("Id"), doc->ChildText("Status")};
}

std::vector<Origin> ParseOrigins(const aws::XmlElement* origins) {
  std::vector<Origin> out;
  if (origins == nullptr) return out;
  const aws::XmlElement* items = origins->Child("Items");
  if (items == nullptr) return out;
  for (const aws::XmlElement& o : items->children) {
    if (o.name != "Origin") continue;
    out.push_back({o.ChildText("DomainName"), o.ChildText("OriginPath")});
  }
  return out;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

aws::Result<Invalidation> CreateInvalidation(aws::HttpClient& client, const CloudFrontEndpoint& endpoint,
                                             const std::string& distribution_id, std::span<const std::string> paths,
                                             const std::string& caller_reference) {
  aws::XmlElement items{"Items", {}, {}};
  for (const std::string& p : paths) items.children.push_back({"Path", p, {}});
  aws::XmlElement paths_el{"Paths", {}, {}};
  paths_el.children.push_back({"Quantity", std::to_string(paths.size()), {}});
  paths_el.children.push_back(std::move(items));
  aws::XmlElement batch{"InvalidationBatch", {}, {}};
  batch.children.push_back(std::move(paths_el));
  batch.children.push_back({"CallerReference", caller_reference, {}});

  aws::HttpRequest r = CloudFrontRequest(endpoint, "POST", "/distribution/" + distribution_id + "/invalidation");
  r.what = fmt::format("CreateInvalidation on distribution {} ({} paths)", distribution_id, paths.size());
  r.headers.emplace_back("content-type", "application/xml");
  r.body.kind = aws::Body::Kind::kBytes;
  r.body.bytes = aws::WriteXml(batch, kXmlns);
  const std::string what = r.what;
  auto res = client.Send(std::move(r));
  if (!res) {
    aws::Error e = res.error();
    if (e.service_code == "NoSuchDistribution") {
      e.message += fmt::format(" (check --distribution / cdn.distribution: '{}' does not exist for these "
                               "credentials)",
                               distribution_id);
    }
    return std::unexpected(std::move(e));
  }
  return ParseInvalidation(res->body, what);
}

aws::Result<Invalidation> GetInvalidation(aws::HttpClient& client, const CloudFrontEndpoint& endpoint,
                                          const std::string& distribution_id, const std::string& invalidation_id) {
  aws::HttpRequest r = CloudFrontRequest(endpoint, "GET",
                                         "/distribution/" + distribution_id + "/invalidation/" + invalidation_id);
  r.what = fmt::format("GetInvalidation {} on distribution {}", invalidation_id, distribution_id);
  const std::string what = r.what;
  auto res = client.Send(std::move(r));
  if (!res) return std::unexpected(res.error());
  return ParseInvalidation(res->body, what);
}

aws::Result<Invalidation> WaitForInvalidation(
    aws::HttpClient& client, const CloudFrontEndpoint& endpoint, const std::string& distribution_id,
    const std::string& invalidation_id, std::chrono::seconds timeout,
    const std::function<void(const Invalidation&, std::chrono::seconds)>& progress) {
  const auto start = std::chrono::steady_clock::now();
  // CloudFront usually completes in well under a minute; poll often at first, then every 10 s.
  std::chrono::milliseconds interval(500);
  for (int polls = 0;; ++polls) {
    auto inv = GetInvalidation(client, endpoint, distribution_id, invalidation_id);
    if (!inv) return inv;
    const auto elapsed = std::chrono::duration_cast<std::chrono::seconds>(std::chrono::steady_clock::now() - start);
    if (progress) progress(*inv, elapsed);
    if (Lower(inv->status) == "completed") return inv;  // CloudFront says "Completed"; emulators vary the case
    if (elapsed + interval >= timeout) {
      return Fail(ErrorCode::kNetwork,
                  fmt::format("invalidation {} on distribution {} is still {} after {} s; it will complete on its "
                              "own (check with: aws cloudfront get-invalidation --distribution-id {} --id {})",
                              invalidation_id, distribution_id, inv->status, elapsed.count(), distribution_id,
                              invalidation_id),
                  false);
    }
    std::this_thread::sleep_for(interval);
    interval = std::min<std::chrono::milliseconds>(interval * 2, std::chrono::seconds(10));
  }
}

aws::Result<std::vector<Distribution>> ListDistributions(aws::HttpClient& client,
                                                         const CloudFrontEndpoint& endpoint) {
  std::vector<Distribution> out;
  std::string marker;
  for (int page = 0; page < 10000; ++page) {
    aws::HttpRequest r = CloudFrontRequest(endpoint, "GET", "/distribution");
    r.what = "ListDistributions";
    r.query.emplace_back("MaxItems", "100");
    if (!marker.empty()) r.query.emplace_back("Marker", marker);
    auto res = client.Send(std::move(r));
    if (!res) return std::unexpected(res.error());
    auto doc = aws::ParseXml(res->body);
    if (!doc) return std::unexpected(doc.error());
    if (doc->name != "DistributionList") {
      return Fail(ErrorCode::kParse, "ListDistributions: the answer is not a DistributionList");
    }
    if (const aws::XmlElement* items = doc->Child("Items")) {
      for (const aws::XmlElement& d : items->children) {
        if (d.name != "DistributionSummary") continue;
        out.push_back({d.ChildText("Id"), d.ChildText("DomainName"), ParseOrigins(d.Child("Origins"))});
      }
    }
    if (doc->ChildText("IsTruncated") != "true") break;
    std::string next = doc->ChildText("NextMarker");
    if (next.empty() || next == marker) break;
    marker = std::move(next);
  }
  // Real CloudFront lists each summary's origins; some emulators (moto) leave them out: read those one by one.
  for (Distribution& d : out) {
    if (!d.origins.empty()) continue;
    auto full = GetDistribution(client, endpoint, d.id);
    if (!full) return std::unexpected(full.error());
    d.origins = std::move(full->origins);
  }
  return out;
}

aws::Result<Distribution> GetDistribution(aws::HttpClient& client, const CloudFrontEndpoint& endpoint,
                                          const std::string& distribution_id) {
  aws::HttpRequest r = CloudFrontRequest(endpoint, "GET", "/distribution/" + distribution_id);
  r.what = "GetDistribution " + distribution_id;
  auto res = client.Send(std::move(r));
  if (!res) return std::unexpected(res.error());
  auto doc = aws::ParseXml(res->body);
  if (!doc) return std::unexpected(doc.error());
  if (doc->name != "Distribution") {
    return Fail(ErrorCode::kParse, fmt::format("GetDistribution {}: the answer is not a Distribution", distribution_id));
  }
  Distribution d{doc->ChildText("Id"), doc->ChildText("DomainName"), {}};
  if (d.id.empty()) d.id = distribution_id;
  if (const aws::XmlElement* config = doc->Child("DistributionConfig")) d.origins = ParseOrigins(config->Child("Origins"));
  return d;
}

std::optional<std::string> BucketOfOriginDomain(std::string_view domain) {
  std::string d = Lower(domain);
  while (d.ends_with('.')) d.pop_back();
  // S3's domains in every partition: amazonaws.com (aws, aws-us-gov) and amazonaws.com.cn (aws-cn).
  bool found_suffix = false;
  for (std::string_view suffix : {std::string_view(".amazonaws.com.cn"), std::string_view(".amazonaws.com")}) {
    if (d.ends_with(suffix)) {
      d.resize(d.size() - suffix.size());
      found_suffix = true;
      break;
    }
  }
  if (!found_suffix) return std::nullopt;
  // Bucket names may contain dots, so the S3 part is recognised from the right, by the labels after the bucket:
  //   s3 | s3-REGION (legacy) | s3-website-REGION | s3-external-1                    one label
  //   s3.REGION | s3-website.REGION | s3-fips.REGION | s3.dualstack (legacy global)    two labels
  //   s3.dualstack.REGION | s3-fips.dualstack.REGION                                  three labels
  std::vector<std::string_view> labels;
  std::size_t end = d.size();
  while (labels.size() < 3) {
    const auto dot = d.rfind('.', end == 0 ? 0 : end - 1);
    if (dot == std::string::npos || dot == 0) break;
    labels.push_back(std::string_view(d).substr(dot + 1, end - dot - 1));
    end = dot;
  }
  // labels[0] is the last label, labels[1] the one before it, ...; `cut` is where the bucket would end.
  const auto is_s3 = [](std::string_view l) { return l == "s3" || l.starts_with("s3-"); };
  const auto bucket_before = [&](std::size_t n) -> std::optional<std::string> {
    std::size_t cut = d.size();
    for (std::size_t i = 0; i < n; ++i) cut -= labels[i].size() + 1;
    if (cut == 0) return std::nullopt;
    return d.substr(0, cut);
  };
  if (labels.size() >= 3 && labels[1] == "dualstack" && (labels[2] == "s3" || labels[2] == "s3-fips")) {
    return bucket_before(3);
  }
  if (labels.size() >= 2 && (labels[1] == "s3" || labels[1] == "s3-website" || labels[1] == "s3-fips") &&
      !labels[0].starts_with("s3")) {
    return bucket_before(2);
  }
  if (labels.size() >= 1 && is_s3(labels[0]) && labels[0] != "s3-accesspoint") return bucket_before(1);
  if (labels.size() >= 2 && labels[1] == "s3" && labels[0] == "dualstack") return bucket_before(2);
  return std::nullopt;
}

aws::Result<Match> MatchDistribution(std::span<const Distribution> distributions, const std::string& bucket,
                                     const std::string& prefix) {
  struct Candidate {
    std::string id;
    std::string origin;
    std::string url_prefix;
  };
  std::vector<Candidate> found;
  std::vector<std::string> same_bucket;  // for the message when the path does not fit
  const std::string dest_folder = "/" + prefix;  // "/" or "/site/"
  for (const Distribution& d : distributions) {
    for (const Origin& o : d.origins) {
      auto b = BucketOfOriginDomain(o.domain);
      if (!b || *b != bucket) continue;
      std::string origin_path = o.path;
      while (origin_path.ends_with('/')) origin_path.pop_back();
      const std::string origin_folder = origin_path + "/";  // "/" or "/site/"
      same_bucket.push_back(fmt::format("{} (origin {}{})", d.id, o.domain, o.path));
      if (!dest_folder.starts_with(origin_folder)) continue;
      found.push_back({d.id, o.domain + o.path, dest_folder.substr(origin_folder.size())});
      break;
    }
  }
  if (found.size() == 1) return Match{found[0].id, found[0].url_prefix};
  if (found.empty()) {
    std::string msg = fmt::format(
        "--distribution auto: no CloudFront distribution has an origin for s3://{}/{} (an S3 origin such as "
        "{}.s3.amazonaws.com whose origin path is the DEST prefix or a folder above it)",
        bucket, prefix, bucket);
    if (!same_bucket.empty()) {
      msg += "; distributions for this bucket with other origin paths:";
      for (const auto& s : same_bucket) msg += " " + s;
    }
    msg += ". Give the distribution with --distribution ID";
    return Fail(ErrorCode::kUsage, msg);
  }
  std::string msg = fmt::format("--distribution auto: {} distributions serve s3://{}/{}:", found.size(), bucket, prefix);
  for (const auto& c : found) msg += fmt::format(" {} (origin {})", c.id, c.origin);
  msg += ". Choose one with --distribution ID (or cdn.distribution in sitesync.yaml)";
  return Fail(ErrorCode::kUsage, msg);
}

}  // namespace sitesync::cdn

namespace sitesync::cdn {

KeyMapping MapKeys(const Distribution& distribution, const std::string& bucket, const std::string& prefix) {
  // The same rule as MatchDistribution (the first origin of the bucket at or above the prefix), so that an
  // explicit ID and `auto` map keys alike.
  const std::string dest_folder = "/" + prefix;  // "/" or "/site/"
  std::string all;
  bool any_s3 = false;
  for (const Origin& o : distribution.origins) {
    all += (all.empty() ? "" : ", ") + o.domain + o.path;
    const std::optional<std::string> b = BucketOfOriginDomain(o.domain);
    if (!b) continue;
    any_s3 = true;
    if (*b != bucket) continue;
    std::string origin_path = o.path;
    while (origin_path.ends_with('/')) origin_path.pop_back();
    const std::string origin_folder = origin_path + "/";
    if (!dest_folder.starts_with(origin_folder)) continue;
    return {KeyMapping::Source::kOrigin, dest_folder.substr(origin_folder.size()), o.domain + o.path};
  }
  return {any_s3 ? KeyMapping::Source::kOtherBucket : KeyMapping::Source::kCustomOrigin, "",
          all.empty() ? std::string("none") : all};
}

aws::Result<std::string> NormalizeUrlPrefix(std::string_view url_prefix) {
  for (const char c : url_prefix) {
    const auto b = static_cast<unsigned char>(c);
    if (b < 0x20 || b == 0x7F || c == '?' || c == '#' || c == '*') {
      return Fail(ErrorCode::kConfig,
                  fmt::format("bad cdn.url_prefix '{}': use the URL path the DEST prefix is served under, such as "
                              "/blog/ (no control characters, '?', '#' or '*')",
                              url_prefix));
    }
  }
  std::string out(url_prefix);
  while (out.starts_with('/')) out.erase(0, 1);
  while (out.ends_with('/')) out.pop_back();
  if (!out.empty()) out.push_back('/');
  return out;
}

std::string PermanentErrorAdvice(const aws::Error& error, const std::string& distribution_id) {
  const std::string& code = error.service_code;
  if (code == "AccessDenied") {
    return fmt::format("CloudFront refused it (AccessDenied): allow cloudfront:CreateInvalidation on "
                       "arn:aws:cloudfront::ACCOUNT:distribution/{} to these credentials",
                       distribution_id);
  }
  if (code == "NoSuchDistribution" || (error.code == ErrorCode::kNotFound && code.empty())) {
    return fmt::format("distribution {} does not exist for these credentials (NoSuchDistribution): correct "
                       "--distribution / cdn.distribution (aws cloudfront list-distributions shows the IDs), or use "
                       "--distribution auto",
                       distribution_id);
  }
  if (code == "InvalidArgument" || code == "InconsistentQuantities" || code == "MissingBody") {
    return fmt::format("CloudFront refused the paths ({}): see its message; drop them and invalidate the right ones "
                       "by hand (sitesync invalidate PATH...)",
                       code);
  }
  if (code == "BatchTooLarge") {
    return fmt::format("more paths than CloudFront takes (BatchTooLarge: at most {} paths in one invalidation, and "
                       "at most 15 wildcard paths in progress at once): lower cdn.max_paths or cdn.max_wildcards, "
                       "or wait for the invalidations in progress to complete",
                       kMaxInvalidationPaths);
  }
  if (code == "TooManyInvalidationsInProgress") {
    return "CloudFront is already working on its maximum of invalidations (TooManyInvalidationsInProgress): wait "
           "for them to complete";
  }
  if (code == "SignatureDoesNotMatch" || code == "InvalidClientTokenId" || code == "ExpiredToken" ||
      code == "InvalidAccessKeyId" || code == "AuthFailure") {
    return fmt::format("CloudFront refused the credentials ({}): correct the access key and secret, or renew the "
                       "session token",
                       code);
  }
  return {};
}

aws::Result<InvalidationPage> ParseInvalidationList(std::string_view xml) {
  auto doc = aws::ParseXml(xml);
  if (!doc) return std::unexpected(doc.error());
  if (doc->name != "InvalidationList") {
    return Fail(ErrorCode::kParse, "ListInvalidations: the answer is not an InvalidationList");
  }
  InvalidationPage page;
  if (const aws::XmlElement* items = doc->Child("Items")) {
    for (const aws::XmlElement& i : items->children) {
      if (i.name != "InvalidationSummary") continue;
      page.items.push_back({i.ChildText("Id"), i.ChildText("Status"), i.ChildText("CreateTime")});
    }
  }
  // NextMarker is there only when IsTruncated is true (ListInvalidations).
  if (doc->ChildText("IsTruncated") == "true") page.next_marker = doc->ChildText("NextMarker");
  return page;
}

aws::Result<InvalidationDetail> ParseInvalidationDetail(std::string_view xml) {
  auto doc = aws::ParseXml(xml);
  if (!doc) return std::unexpected(doc.error());
  if (doc->name != "Invalidation" || doc->ChildText("Id").empty()) {
    return Fail(ErrorCode::kParse, "GetInvalidation: the answer is not an Invalidation");
  }
  InvalidationDetail d{doc->ChildText("Id"), doc->ChildText("Status"), doc->ChildText("CreateTime"), {}};
  const aws::XmlElement* batch = doc->Child("InvalidationBatch");
  const aws::XmlElement* paths = batch != nullptr ? batch->Child("Paths") : nullptr;
  if (paths == nullptr) {
    return Fail(ErrorCode::kParse, fmt::format("GetInvalidation {}: the answer has no InvalidationBatch/Paths", d.id));
  }
  if (const aws::XmlElement* items = paths->Child("Items")) {
    for (const aws::XmlElement& p : items->children) {
      if (p.name == "Path") d.paths.push_back(p.text);
    }
  }
  return d;
}

namespace {

class HttpInvalidationHistory final : public InvalidationHistory {
 public:
  HttpInvalidationHistory(aws::HttpClient& client, CloudFrontEndpoint endpoint)
      : client_(client), endpoint_(std::move(endpoint)) {}

  aws::Result<InvalidationPage> ListInvalidations(const std::string& distribution_id,
                                                  const std::string& marker) override {
    aws::HttpRequest r = CloudFrontRequest(endpoint_, "GET", "/distribution/" + distribution_id + "/invalidation");
    r.what = fmt::format("ListInvalidations on distribution {}", distribution_id);
    r.query.emplace_back("MaxItems", "100");
    if (!marker.empty()) r.query.emplace_back("Marker", marker);
    auto res = client_.Send(std::move(r));
    if (!res) return std::unexpected(res.error());
    return ParseInvalidationList(res->body);
  }

  aws::Result<InvalidationDetail> GetInvalidation(const std::string& distribution_id,
                                                  const std::string& invalidation_id) override {
    aws::HttpRequest r = CloudFrontRequest(endpoint_, "GET",
                                           "/distribution/" + distribution_id + "/invalidation/" + invalidation_id);
    r.what = fmt::format("GetInvalidation {} on distribution {}", invalidation_id, distribution_id);
    auto res = client_.Send(std::move(r));
    if (!res) return std::unexpected(res.error());
    return ParseInvalidationDetail(res->body);
  }

 private:
  aws::HttpClient& client_;
  CloudFrontEndpoint endpoint_;
};

}  // namespace

std::unique_ptr<InvalidationHistory> MakeInvalidationHistory(aws::HttpClient& client, CloudFrontEndpoint endpoint) {
  return std::make_unique<HttpInvalidationHistory>(client, std::move(endpoint));
}

namespace {

class HttpCloudFront final : public CloudFrontApi {
 public:
  HttpCloudFront(aws::HttpClient& client, CloudFrontEndpoint endpoint)
      : client_(client), endpoint_(std::move(endpoint)) {}
  aws::Result<Invalidation> CreateInvalidation(const std::string& distribution_id,
                                               std::span<const std::string> paths,
                                               const std::string& caller_reference) override {
    return cdn::CreateInvalidation(client_, endpoint_, distribution_id, paths, caller_reference);
  }
  aws::Result<Distribution> GetDistribution(const std::string& distribution_id) override {
    return cdn::GetDistribution(client_, endpoint_, distribution_id);
  }
  aws::Result<std::vector<Distribution>> ListDistributions() override {
    return cdn::ListDistributions(client_, endpoint_);
  }

 private:
  aws::HttpClient& client_;
  CloudFrontEndpoint endpoint_;
};

}  // namespace

std::unique_ptr<CloudFrontApi> MakeCloudFrontApi(aws::HttpClient& client, CloudFrontEndpoint endpoint) {
  return std::make_unique<HttpCloudFront>(client, std::move(endpoint));
}

}  // namespace sitesync::cdn
