// AWS's SigV4 test suite (tests/data/aws-sig-v4-test-suite/), one gtest case per suite case, discovered from
// the files at run time: every directory holding a .req, nested ones included (normalize-path/*,
// post-sts-token/*). Each case is signed in generic mode and checked against the suite's .creq, .sts and
// .authz; then in S3 mode, which must give the suite's answer too unless the case is one where S3 signs
// differently (no path normalization). Those cases have botocore-generated expectations in
// tests/data/sigv4-s3-mode/ (tests/tools/gen_sigv4_s3_mode.py) and are checked against them.
#include <gtest/gtest.h>

#include <algorithm>
#include <expected>
#include <filesystem>
#include <fstream>
#include <functional>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "aws/aws.h"

#ifndef SITESYNC_TEST_DATA_DIR
#error "SITESYNC_TEST_DATA_DIR must name tests/data (set by aws/CMakeLists.txt)"
#endif

namespace sitesync::aws {
namespace {

namespace fs = std::filesystem;

// The suite's parameters (its README and post-sts-token/readme.txt).
constexpr std::string_view kAccessKey = "AKIDEXAMPLE";
constexpr std::string_view kSecret = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
constexpr std::string_view kRegion = "us-east-1";
constexpr std::string_view kService = "service";
constexpr std::string_view kSuiteDate = "20150830T123600Z";

fs::path SuiteDir() { return fs::path(SITESYNC_TEST_DATA_DIR) / "aws-sig-v4-test-suite" / "aws-sig-v4-test-suite"; }
fs::path S3ModeDir() { return fs::path(SITESYNC_TEST_DATA_DIR) / "sigv4-s3-mode"; }

std::optional<std::string> ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

/// Case names ("get-vanilla", "normalize-path/get-slash"): the directories under `root`, at any depth, that
/// hold a file ending in `extension`. Sorted. Empty when `root` is missing (the discovery test then fails).
std::vector<std::string> DiscoverCases(const fs::path& root, std::string_view extension) {
  std::set<std::string> cases;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(root, ec), end; !ec && it != end; it.increment(ec)) {
    if (!it->is_regular_file(ec) || it->path().extension() != extension) continue;
    cases.insert(it->path().parent_path().lexically_relative(root).generic_string());
  }
  return {cases.begin(), cases.end()};
}

/// "normalize-path/get-slash" -> "normalize_path_get_slash": gtest names allow only [A-Za-z0-9_].
std::string TestName(const testing::TestParamInfo<std::string>& info) {
  std::string name = info.param;
  for (char& c : name) {
    const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
    if (!ok) c = '_';
  }
  return name.empty() ? std::string("root") : name;
}

std::string Leaf(const std::string& case_name) { return fs::path(case_name).filename().string(); }

/// A suite case's files.
struct SuiteFiles {
  std::string req, creq, sts, authz;
};

std::expected<SuiteFiles, std::string> LoadFiles(const fs::path& dir, const std::string& leaf, bool with_req) {
  SuiteFiles files;
  for (auto [ext, target] : {std::pair{".req", &files.req}, std::pair{".creq", &files.creq},
                             std::pair{".sts", &files.sts}, std::pair{".authz", &files.authz}}) {
    if (!with_req && std::string_view(ext) == ".req") continue;
    const fs::path path = dir / (leaf + ext);
    std::optional<std::string> text = ReadFile(path);
    if (!text) return std::unexpected("cannot read " + path.string());
    *target = std::move(*text);
  }
  return files;
}

// ---------------------------------------------------------------------------------------------------------------
// .req parsing
// ---------------------------------------------------------------------------------------------------------------

std::string_view TrimWs(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

/// Parses a .req: "METHOD TARGET HTTP/1.1", header lines "Name:value" (repeats allowed), folded lines that
/// start with white space, a blank line, then the body. The target may hold spaces (get-space) and raw UTF-8
/// (get-utf8): the suite writes targets unencoded, so path and query are taken as decoded values. A folded
/// line is one more value of the header above it, joined with ',' like a repeated header: that is what the
/// suite's get-header-value-multiline .creq expects ("value1,value2,value3").
std::expected<SignableRequest, std::string> ParseReq(std::string_view text) {
  SignableRequest request;
  std::size_t pos = 0;
  auto next_line = [&](std::string_view& line) {
    if (pos > text.size()) return false;
    std::size_t end = text.find('\n', pos);
    if (end == std::string_view::npos) end = text.size();
    line = text.substr(pos, end - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    pos = end + 1;
    return true;
  };

  std::string_view line;
  if (!next_line(line)) return std::unexpected("empty .req");
  const std::size_t first_space = line.find(' ');
  const std::size_t last_space = line.rfind(' ');
  if (first_space == std::string_view::npos || first_space == last_space ||
      !line.substr(last_space + 1).starts_with("HTTP/")) {
    return std::unexpected("bad request line: " + std::string(line));
  }
  request.method = std::string(line.substr(0, first_space));
  const std::string_view target = line.substr(first_space + 1, last_space - first_space - 1);
  if (target.find('%') != std::string_view::npos) {
    return std::unexpected("a '%' in the target: the suite's targets are unencoded, so this would be ambiguous");
  }
  const std::size_t question = target.find('?');
  request.path = std::string(target.substr(0, question));
  if (question != std::string_view::npos) {
    std::string_view query = target.substr(question + 1);
    while (!query.empty()) {
      const std::size_t amp = query.find('&');
      const std::string_view piece = query.substr(0, amp);
      query = amp == std::string_view::npos ? std::string_view() : query.substr(amp + 1);
      if (piece.empty()) continue;
      const std::size_t eq = piece.find('=');
      request.query.emplace_back(std::string(piece.substr(0, eq)),
                                 eq == std::string_view::npos ? std::string() : std::string(piece.substr(eq + 1)));
    }
  }

  while (next_line(line) && !line.empty()) {
    if (line.front() == ' ' || line.front() == '\t') {
      if (request.headers.empty()) return std::unexpected("folded line before any header");
      request.headers.emplace_back(request.headers.back().first, std::string(TrimWs(line)));
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos) return std::unexpected("header line without ':': " + std::string(line));
    request.headers.emplace_back(std::string(TrimWs(line.substr(0, colon))),
                                 std::string(TrimWs(line.substr(colon + 1))));
  }
  const std::string_view body = pos <= text.size() ? text.substr(pos) : std::string_view();
  request.payload_hash = Sha256Hex(body);
  return request;
}

std::string HeaderValue(const SignableRequest& request, std::string_view lower_name) {
  for (const auto& [name, value] : request.headers) {
    std::string lowered = name;
    std::transform(lowered.begin(), lowered.end(), lowered.begin(),
                   [](char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; });
    if (lowered == lower_name) return value;
  }
  return {};
}

void SetHeader(SignableRequest& request, std::string_view lower_name, std::optional<std::string> value) {
  std::erase_if(request.headers, [&](const auto& header) {
    std::string lowered = header.first;
    for (char& c : lowered) c = (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    return lowered == lower_name;
  });
  if (value) request.headers.emplace_back(std::string(lower_name), std::move(*value));
}

/// The session token from post-sts-token/readme.txt: its last non-empty line.
std::string SuiteSessionToken() {
  const std::optional<std::string> readme = ReadFile(SuiteDir() / "post-sts-token" / "readme.txt");
  if (!readme) return {};
  std::istringstream in(*readme);
  std::string line, last;
  while (std::getline(in, line)) {
    const std::string_view trimmed = TrimWs(line);
    if (!trimmed.empty()) last = std::string(trimmed);
  }
  return last;
}

Credentials SuiteCredentials(const std::string& case_name) {
  Credentials c;
  c.access_key_id = kAccessKey;
  c.secret_access_key = kSecret;
  // The post-sts-token cases sign with temporary credentials. The signer never adds the token header itself:
  // it signs X-Amz-Security-Token only when the request carries it (post-sts-header-before), and the
  // post-sts-header-after case, which adds the header after signing, checks exactly that.
  if (case_name.starts_with("post-sts-token/")) c.session_token = SuiteSessionToken();
  return c;
}

struct Signed {
  std::string creq, sts, authz;
};

Signed SignSuiteRequest(const SignableRequest& request, SigningMode mode, const Credentials& credentials) {
  const std::string amz_date = HeaderValue(request, "x-amz-date");
  Signed out;
  out.creq = CanonicalRequest(request, mode);
  out.sts = StringToSign(amz_date, CredentialScope(amz_date, kRegion, kService), out.creq);
  out.authz = Authorization(request, mode, credentials, amz_date, kRegion, kService);
  return out;
}

std::string SignatureOf(std::string_view authz) {
  const std::size_t at = authz.rfind("Signature=");
  return at == std::string_view::npos ? std::string() : std::string(authz.substr(at + 10));
}

// ---------------------------------------------------------------------------------------------------------------
// Where the suite contradicts itself
// ---------------------------------------------------------------------------------------------------------------

/// A case whose .sts/.authz were not computed from its .creq. The .creq is still checked as is; `as_signed`
/// rebuilds the request AWS actually signed, which must then give the suite's .sts and signature.
struct SuiteDefect {
  std::string_view case_name;
  std::string_view why;
  std::function<void(SignableRequest&)> as_signed;
  bool authz_header_list_is_wrong;  ///< Compare only the signature of .authz, not its SignedHeaders.
};

const std::vector<SuiteDefect>& SuiteDefects() {
  static const std::vector<SuiteDefect> defects = {
      {"post-x-www-form-urlencoded",
       "the .creq signs content-length, but the .sts and .authz were computed without it (its .sreq has no "
       "Content-Length header)",
       [](SignableRequest& r) { SetHeader(r, "content-length", std::nullopt); }, false},
      {"post-x-www-form-urlencoded-parameters",
       "the .sts was computed without content-length and with 'charset=utf8' instead of the .req's "
       "'charset=utf-8', and the .authz still lists content-length among the SignedHeaders",
       [](SignableRequest& r) {
         SetHeader(r, "content-length", std::nullopt);
         SetHeader(r, "content-type", "application/x-www-form-urlencoded; charset=utf8");
       },
       true},
  };
  return defects;
}

const SuiteDefect* FindDefect(const std::string& case_name) {
  for (const SuiteDefect& d : SuiteDefects()) {
    if (d.case_name == case_name) return &d;
  }
  return nullptr;
}

/// Checks `request` signed in `mode` against the suite's files for `case_name`.
void ExpectSuiteAnswer(const std::string& case_name, const SignableRequest& request, const SuiteFiles& files,
                       SigningMode mode) {
  const Credentials credentials = SuiteCredentials(case_name);
  const Signed ours = SignSuiteRequest(request, mode, credentials);
  EXPECT_EQ(ours.creq, files.creq) << "canonical request";

  const SuiteDefect* defect = FindDefect(case_name);
  if (defect == nullptr) {
    EXPECT_EQ(ours.sts, files.sts) << "string to sign";
    EXPECT_EQ(ours.authz, files.authz) << "Authorization";
    return;
  }
  SCOPED_TRACE("known suite defect: " + std::string(defect->why));
  // If AWS ever fixes the files, this fails: drop the entry from SuiteDefects().
  EXPECT_NE(files.sts.substr(files.sts.rfind('\n') + 1), Sha256Hex(files.creq))
      << "the suite's .sts now follows from its .creq";
  SignableRequest as_signed = request;
  defect->as_signed(as_signed);
  const Signed reconstructed = SignSuiteRequest(as_signed, mode, credentials);
  EXPECT_EQ(reconstructed.sts, files.sts) << "string to sign of the request AWS signed";
  if (defect->authz_header_list_is_wrong) {
    EXPECT_EQ(SignatureOf(reconstructed.authz), SignatureOf(files.authz));
  } else {
    EXPECT_EQ(reconstructed.authz, files.authz);
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The suite, generic and S3 mode
// ---------------------------------------------------------------------------------------------------------------

class SigV4Suite : public testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const std::string& name = GetParam();
    auto files = LoadFiles(SuiteDir() / name, Leaf(name), /*with_req=*/true);
    ASSERT_TRUE(files.has_value()) << files.error();
    files_ = std::move(*files);
    auto request = ParseReq(files_.req);
    ASSERT_TRUE(request.has_value()) << request.error();
    request_ = std::move(*request);
    ASSERT_EQ(HeaderValue(request_, "x-amz-date"), kSuiteDate);
  }

  SuiteFiles files_;
  SignableRequest request_;
};

TEST_P(SigV4Suite, GenericMode) { ExpectSuiteAnswer(GetParam(), request_, files_, SigningMode::kGeneric); }

TEST_P(SigV4Suite, S3Mode) {
  const std::string& name = GetParam();
  if (fs::exists(S3ModeDir() / name)) {
    // Listed as differing in S3 mode (SigV4SuiteS3Mode checks it against botocore): it must really differ.
    EXPECT_NE(CanonicalRequest(request_, SigningMode::kS3), files_.creq);
    EXPECT_NE(CanonicalUri(request_.path, SigningMode::kS3), CanonicalUri(request_.path, SigningMode::kGeneric));
    return;
  }
  // Elsewhere S3 signs exactly as the suite says.
  ExpectSuiteAnswer(name, request_, files_, SigningMode::kS3);
}

INSTANTIATE_TEST_SUITE_P(Aws, SigV4Suite, testing::ValuesIn(DiscoverCases(SuiteDir(), ".req")), TestName);

/// The cases where S3 differs, against the expectations botocore's S3SigV4Auth produced from the same inputs.
class SigV4SuiteS3Mode : public testing::TestWithParam<std::string> {};

TEST_P(SigV4SuiteS3Mode, MatchesBotocore) {
  const std::string& name = GetParam();
  auto suite = LoadFiles(SuiteDir() / name, Leaf(name), /*with_req=*/true);
  ASSERT_TRUE(suite.has_value()) << "no suite case for " << name << ": " << suite.error();
  auto expected = LoadFiles(S3ModeDir() / name, Leaf(name), /*with_req=*/false);
  ASSERT_TRUE(expected.has_value()) << expected.error();
  auto request = ParseReq(suite->req);
  ASSERT_TRUE(request.has_value()) << request.error();
  // The one adjustment the generator documents: botocore's S3 signer always adds and signs
  // X-Amz-Content-SHA256 with the payload's SHA-256, so the same header is added here.
  request->headers.emplace_back("X-Amz-Content-SHA256", request->payload_hash);

  const Signed ours = SignSuiteRequest(*request, SigningMode::kS3, SuiteCredentials(name));
  EXPECT_EQ(ours.creq, expected->creq) << "canonical request";
  EXPECT_EQ(ours.sts, expected->sts) << "string to sign";
  EXPECT_EQ(ours.authz, expected->authz) << "Authorization";
  // The S3 canonical URI is the path as sent, not normalized.
  EXPECT_EQ(ours.creq.substr(0, ours.creq.find('\n', ours.creq.find('\n') + 1)),
            request->method + "\n" + UriEncode(request->path, /*keep_slash=*/true));
}

INSTANTIATE_TEST_SUITE_P(Aws, SigV4SuiteS3Mode, testing::ValuesIn(DiscoverCases(S3ModeDir(), ".creq")), TestName);

// ---------------------------------------------------------------------------------------------------------------
// The data itself
// ---------------------------------------------------------------------------------------------------------------

TEST(SigV4SuiteData, EveryCaseIsDiscoveredIncludingNestedOnes) {
  const std::vector<std::string> cases = DiscoverCases(SuiteDir(), ".req");
  EXPECT_EQ(cases.size(), 31u) << "looked in " << SuiteDir();
  for (const char* expected : {"get-vanilla", "get-header-value-multiline", "normalize-path/get-slash",
                               "normalize-path/get-relative-relative", "post-sts-token/post-sts-header-before",
                               "post-sts-token/post-sts-header-after", "post-x-www-form-urlencoded"}) {
    EXPECT_NE(std::find(cases.begin(), cases.end(), expected), cases.end()) << expected;
  }
  std::set<std::string> names;
  for (std::size_t i = 0; i < cases.size(); ++i) {
    EXPECT_TRUE(names.insert(TestName(testing::TestParamInfo<std::string>(cases[i], i))).second)
        << "two cases map to one test name: " << cases[i];
  }
  // Apache-2.0 requires the license and notice to travel with the files.
  EXPECT_TRUE(fs::exists(SuiteDir().parent_path() / "LICENSE"));
  EXPECT_TRUE(fs::exists(SuiteDir().parent_path() / "NOTICE"));
}

TEST(SigV4SuiteData, S3ModeCasesAreTheNormalizePathOnesThatS3DoesNotNormalize) {
  const std::vector<std::string> cases = DiscoverCases(S3ModeDir(), ".creq");
  const std::vector<std::string> expected = {
      "normalize-path/get-relative",        "normalize-path/get-relative-relative",   "normalize-path/get-slash",
      "normalize-path/get-slash-dot-slash", "normalize-path/get-slash-pointless-dot", "normalize-path/get-slashes",
  };
  EXPECT_EQ(cases, expected);
}

TEST(SigV4SuiteData, SessionTokenFromTheReadmeIsTheOneInTheRequest) {
  const std::string token = SuiteSessionToken();
  ASSERT_TRUE(token.starts_with("AQoDYXdzEPT//////////wEXAMPLE")) << token;
  const auto req = ReadFile(SuiteDir() / "post-sts-token" / "post-sts-header-before" / "post-sts-header-before.req");
  ASSERT_TRUE(req.has_value());
  auto request = ParseReq(*req);
  ASSERT_TRUE(request.has_value()) << request.error();
  EXPECT_EQ(HeaderValue(*request, "x-amz-security-token"), token);
}

TEST(SigV4SuiteData, ReqParserKeepsRepeatsFoldsAndBody) {
  auto request = ParseReq(
      "POST /a b/\xE1\x88\xB4?x=1&y&z=2 HTTP/1.1\n"
      "Host:h\n"
      "My-Header1:value1\n"
      "  value2\n"
      "My-Header1: value3 \n"
      "\n"
      "body\nline");
  ASSERT_TRUE(request.has_value()) << request.error();
  EXPECT_EQ(request->method, "POST");
  EXPECT_EQ(request->path, "/a b/\xE1\x88\xB4");
  const std::vector<std::pair<std::string, std::string>> query = {{"x", "1"}, {"y", ""}, {"z", "2"}};
  EXPECT_EQ(request->query, query);
  const std::vector<std::pair<std::string, std::string>> headers = {
      {"Host", "h"}, {"My-Header1", "value1"}, {"My-Header1", "value2"}, {"My-Header1", "value3"}};
  EXPECT_EQ(request->headers, headers);
  EXPECT_EQ(request->payload_hash, Sha256Hex("body\nline"));
  EXPECT_FALSE(ParseReq("GET /%20 HTTP/1.1\nHost:h").has_value());
  EXPECT_FALSE(ParseReq("GET / HTTP/1.1\nno colon").has_value());
}

}  // namespace
}  // namespace sitesync::aws
