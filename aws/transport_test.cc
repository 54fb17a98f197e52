// The HTTP client against a loopback server written here (a thread with a listening socket on 127.0.0.1, answers
// scripted per request): credentials from a provider asked per signed attempt, one refresh and retry after
// ExpiredToken, unsigned requests, the User-Agent, the AccessDenied message, a CA bundle that cannot be read.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <algorithm>
#include <chrono>
#include <functional>
#include <optional>
#include <map>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "aws/aws.h"

namespace sitesync::aws {
namespace {

using namespace std::chrono_literals;

// One request as the server read it; header names lowercased.
struct Seen {
  std::string method;
  std::string target;
  std::map<std::string, std::string> headers;
  std::string body;

  bool Has(const std::string& name) const { return headers.contains(name); }
  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

struct Reply {
  int status = 200;
  std::string body;
};

std::string ErrorXml(std::string_view code, std::string_view message) {
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>" + std::string(code) + "</Code><Message>" +
         std::string(message) + "</Message></Error>";
}

// A tiny HTTP/1.1 server: one connection at a time, one request per connection (it answers with
// Connection: close). Every wait is bounded; the thread ends when the server is destroyed.
class LoopbackServer {
 public:
  explicit LoopbackServer(std::function<Reply(const Seen&)> answer) : answer_(std::move(answer)) {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = 0;
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (::bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 || ::listen(fd_, 64) != 0) {
      ADD_FAILURE() << "cannot listen on 127.0.0.1";
      return;
    }
    socklen_t len = sizeof addr;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = ntohs(addr.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }
  ~LoopbackServer() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
  }
  LoopbackServer(const LoopbackServer&) = delete;
  LoopbackServer& operator=(const LoopbackServer&) = delete;

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<Seen> seen() const {
    std::lock_guard lock(mu_);
    return seen_;
  }

 private:
  void Serve() {
    while (!stop_) {
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, 20) <= 0) continue;
      const int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) continue;
      Handle(c);
      ::close(c);
    }
  }

  // Appends what the peer sent next to `buf`, waiting at most 5 s; false when it closed or went quiet.
  static bool ReadMore(int c, std::string& buf) {
    pollfd p{c, POLLIN, 0};
    if (::poll(&p, 1, 5000) <= 0) return false;
    char chunk[4096];
    const ssize_t n = ::read(c, chunk, sizeof chunk);
    if (n <= 0) return false;
    buf.append(chunk, static_cast<std::size_t>(n));
    return true;
  }

  void Handle(int c) {
    std::string buf;
    std::size_t end;
    while ((end = buf.find("\r\n\r\n")) == std::string::npos) {
      if (!ReadMore(c, buf)) return;
    }
    Seen s;
    std::size_t line_end = buf.find("\r\n");
    const std::string request_line = buf.substr(0, line_end);
    s.method = request_line.substr(0, request_line.find(' '));
    s.target = request_line.substr(s.method.size() + 1, request_line.rfind(' ') - s.method.size() - 1);
    for (std::size_t at = line_end + 2; at < end;) {
      std::size_t next = buf.find("\r\n", at);
      const std::string line = buf.substr(at, next - at);
      if (auto colon = line.find(':'); colon != std::string::npos) {
        std::string name = line.substr(0, colon);
        for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
        std::size_t v = colon + 1;
        while (v < line.size() && line[v] == ' ') ++v;
        s.headers[name] = line.substr(v);
      }
      at = next + 2;
    }
    std::size_t length = 0;
    if (s.Has("content-length")) length = std::stoul(s.Header("content-length"));
    s.body = buf.substr(end + 4);
    while (s.body.size() < length) {
      if (!ReadMore(c, s.body)) return;
    }
    const Reply reply = answer_(s);
    {
      std::lock_guard lock(mu_);
      seen_.push_back(s);
    }
    const std::string out = "HTTP/1.1 " + std::to_string(reply.status) + " X\r\nContent-Type: application/xml\r\n" +
                            "Content-Length: " + std::to_string(reply.body.size()) +
                            "\r\nConnection: close\r\n\r\n" + reply.body;
    std::size_t sent = 0;
    while (sent < out.size()) {
      const ssize_t n = ::send(c, out.data() + sent, out.size() - sent, MSG_NOSIGNAL);
      if (n <= 0) return;
      sent += static_cast<std::size_t>(n);
    }
  }

  std::function<Reply(const Seen&)> answer_;
  int fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<Seen> seen_;
};

// A provider that records every Get and fetches (hands out a new generation of keys) only when forced, when it
// holds nothing yet, or when the test says its credentials are now near their expiry (`stale`).
class FakeProvider final : public CredentialProvider {
 public:
  Result<Credentials> Get(bool force_refresh) override {
    ++calls;
    if (force_refresh) ++forced;
    if (fail) return Fail(ErrorCode::kCredentials, "credential_process of profile ci: exited with status 3");
    if (force_refresh || generation == 0 || stale) {
      stale = false;
      ++generation;
    }
    return Current();
  }
  Credentials Current() const {
    Credentials c;
    c.access_key_id = "ASIAFAKEKEYFAKEKEY" + std::to_string(generation);
    c.secret_access_key = "secret" + std::to_string(generation);
    c.session_token = "token-" + std::to_string(generation);
    c.source = "assumed role arn:aws:iam::123456789012:role/deploy via profile ci";
    return c;
  }

  int calls = 0;
  int forced = 0;
  int generation = 0;  // fetches so far
  bool stale = false;
  bool fail = false;
};

ClientOptions FastOptions() {
  ClientOptions o;
  o.base_backoff = 1ms;
  o.max_backoff = 5ms;
  o.connect_timeout = 2000ms;
  o.idle_timeout = 5000ms;
  return o;
}

/// FastOptions signing with `provider`'s credentials.
ClientOptions ProviderOptions(std::shared_ptr<CredentialProvider> provider) {
  ClientOptions o = FastOptions();
  o.credential_provider = std::move(provider);
  return o;
}

HttpRequest Put(const std::string& endpoint, const std::string& key) {
  HttpRequest r;
  r.method = "PUT";
  r.endpoint = endpoint;
  r.path = "/bucket/" + key;
  r.body.kind = Body::Kind::kBytes;
  r.body.bytes = "hello";
  r.what = "PUT s3://bucket/" + key;
  return r;
}

std::unique_ptr<HttpClient> MakeClient(ClientOptions options) {
  auto client = HttpClient::Create(std::move(options));
  EXPECT_TRUE(client.has_value());
  return std::move(*client);
}

// Whether the request was signed with the provider's keys of `generation` (their key ID in Authorization, their
// session token in x-amz-security-token).
bool SignedWith(const Seen& s, int generation) {
  return s.Header("authorization").find("ASIAFAKEKEYFAKEKEY" + std::to_string(generation) + "/") !=
             std::string::npos &&
         s.Header("x-amz-security-token") == "token-" + std::to_string(generation);
}

class TransportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { GlobalInit(); }
};

TEST_F(TransportTest, ProviderAskedBeforeEverySignedAttemptFetchesOnlyWhenItDecides) {
  std::atomic<int> n{0};
  LoopbackServer server([&](const Seen&) {
    // The second request's first attempt gets a 503: its retry is an attempt of its own.
    return ++n == 2 ? Reply{503, ErrorXml("SlowDown", "Reduce your request rate.")} : Reply{200, ""};
  });
  auto provider = std::make_shared<FakeProvider>();
  ClientOptions o = ProviderOptions(provider);
  auto client = MakeClient(o);

  ASSERT_TRUE(client->Send(Put(server.endpoint(), "a")).has_value());
  ASSERT_TRUE(client->Send(Put(server.endpoint(), "b")).has_value());
  provider->stale = true;  // near expiry: the provider fetches on its next Get
  ASSERT_TRUE(client->Send(Put(server.endpoint(), "c")).has_value());
  ASSERT_TRUE(client->Send(Put(server.endpoint(), "d")).has_value());

  EXPECT_EQ(provider->calls, 5) << "one Get per signed attempt (4 requests, one retried)";
  EXPECT_EQ(provider->forced, 0) << "no forced refresh without an ExpiredToken answer";
  EXPECT_EQ(provider->generation, 2) << "fetched once at the start and once when it said it was stale";
  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 5u);
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(SignedWith(seen[i], 1)) << i << ": " << seen[i].Header("authorization");
  for (int i = 3; i < 5; ++i) EXPECT_TRUE(SignedWith(seen[i], 2)) << i << ": " << seen[i].Header("authorization");
}

TEST_F(TransportTest, ExpiredTokenOnceRefreshesOnceAndRetriesAtOnceUncounted) {
  std::atomic<int> n{0};
  LoopbackServer server([&](const Seen&) {
    return ++n == 1 ? Reply{400, ErrorXml("ExpiredToken", "The provided token has expired.")} : Reply{200, ""};
  });
  auto provider = std::make_shared<FakeProvider>();
  ClientOptions o = ProviderOptions(provider);
  o.max_attempts = 1;  // the refresh retry is not an attempt: it happens even when no retry is allowed
  auto client = MakeClient(o);

  auto r = client->Send(Put(server.endpoint(), "a"));
  ASSERT_TRUE(r.has_value()) << r.error().message;
  EXPECT_EQ(provider->forced, 1);
  EXPECT_EQ(provider->generation, 2);
  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_TRUE(SignedWith(seen[0], 1));
  EXPECT_TRUE(SignedWith(seen[1], 2)) << "the retry is signed with the refreshed credentials";
}

TEST_F(TransportTest, ExpiredTokenAfterTheRefreshIsACredentialsErrorNamingTheSource) {
  LoopbackServer server([&](const Seen&) {
    return Reply{403, ErrorXml("ExpiredToken", "The security token included in the request is expired")};
  });
  auto provider = std::make_shared<FakeProvider>();
  ClientOptions o = ProviderOptions(provider);
  auto client = MakeClient(o);

  auto r = client->Send(Put(server.endpoint(), "a"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kCredentials);
  EXPECT_EQ(r.error().service_code, "ExpiredToken");
  EXPECT_NE(r.error().message.find("PUT s3://bucket/a"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("role/deploy via profile ci"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("fetched again"), std::string::npos) << r.error().message;
  EXPECT_EQ(r.error().message.find("ASIAFAKEKEYFAKEKEY2"), std::string::npos) << "never the full key ID";
  EXPECT_EQ(provider->forced, 1) << "one refresh per request, not one per answer";
  EXPECT_EQ(server.seen().size(), 2u) << "no backoff retries of an expired token";
}

TEST_F(TransportTest, ManyRequestsAnsweredExpiredTokenTogetherShareOneRefresh) {
  LoopbackServer server([&](const Seen& s) {
    return SignedWith(s, 1) ? Reply{400, ErrorXml("ExpiredToken", "The provided token has expired.")}
                            : Reply{200, ""};
  });
  auto provider = std::make_shared<FakeProvider>();
  ClientOptions o = ProviderOptions(provider);
  auto client = MakeClient(o);
  int ok = 0;
  for (const char* key : {"a", "b", "c", "d"}) {
    client->Submit(Put(server.endpoint(), key), [&](Result<HttpResponse> r) {
      EXPECT_TRUE(r.has_value()) << r.error().message;
      ok += r.has_value() ? 1 : 0;
    });
  }
  client->Run();
  EXPECT_EQ(ok, 4);
  EXPECT_EQ(provider->forced, 1) << "the requests signed before the refresh take what it brought";
  EXPECT_EQ(provider->generation, 2);
}

TEST_F(TransportTest, StaticCredentialsWithAnExpiredTokenFailAtOnceWithTheWayOut) {
  LoopbackServer server([&](const Seen&) {
    return Reply{400, ErrorXml("ExpiredToken", "The provided token has expired.")};
  });
  ClientOptions o = FastOptions();
  o.credentials = {"ASIASTATICSTATIC1234", "secret", "tok", "environment", std::nullopt};
  auto client = MakeClient(o);
  auto r = client->Send(Put(server.endpoint(), "a"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kCredentials);
  EXPECT_NE(r.error().message.find("session token from environment"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("get fresh temporary credentials"), std::string::npos) << r.error().message;
  EXPECT_EQ(server.seen().size(), 1u);
}

TEST_F(TransportTest, InvalidTokenRefreshesOnlyWhenItSaysExpired) {
  LoopbackServer server([&](const Seen&) {
    return Reply{400, ErrorXml("InvalidToken", "The provided token is malformed or otherwise invalid.")};
  });
  auto provider = std::make_shared<FakeProvider>();
  ClientOptions o = ProviderOptions(provider);
  auto client = MakeClient(o);
  auto r = client->Send(Put(server.endpoint(), "a"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kCredentials);
  EXPECT_EQ(provider->forced, 0);
  EXPECT_EQ(server.seen().size(), 1u);
}

TEST_F(TransportTest, ProviderErrorFailsTheRequestWithItsOwnMessage) {
  LoopbackServer server([&](const Seen&) { return Reply{200, ""}; });
  auto provider = std::make_shared<FakeProvider>();
  provider->fail = true;
  ClientOptions o = ProviderOptions(provider);
  auto client = MakeClient(o);
  auto r = client->Send(Put(server.endpoint(), "a"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().code, ErrorCode::kCredentials);
  EXPECT_EQ(r.error().message, "PUT s3://bucket/a: credential_process of profile ci: exited with status 3");
  EXPECT_TRUE(server.seen().empty()) << "nothing is sent unsigned";
}

TEST_F(TransportTest, UnsignedRequestCarriesNoSigningHeadersAndAsksNoProvider) {
  LoopbackServer server([&](const Seen&) { return Reply{200, "{}"}; });
  auto provider = std::make_shared<FakeProvider>();
  ClientOptions o = ProviderOptions(provider);
  auto client = MakeClient(o);
  HttpRequest r;
  r.sign = false;
  r.method = "PUT";
  r.endpoint = server.endpoint();
  r.path = "/latest/api/token";
  r.mode = SigningMode::kGeneric;
  r.headers = {{"x-aws-ec2-metadata-token-ttl-seconds", "21600"}};
  r.what = "IMDS token";
  auto answer = client->Send(std::move(r));
  ASSERT_TRUE(answer.has_value()) << answer.error().message;
  EXPECT_EQ(provider->calls, 0);
  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 1u);
  for (const char* name : {"authorization", "x-amz-date", "x-amz-security-token", "x-amz-content-sha256"}) {
    EXPECT_FALSE(seen[0].Has(name)) << name;
  }
  EXPECT_EQ(seen[0].Header("x-aws-ec2-metadata-token-ttl-seconds"), "21600");
  EXPECT_EQ(seen[0].target, "/latest/api/token");
}

TEST_F(TransportTest, UserAgentIsSentOnEveryRequest) {
  LoopbackServer server([&](const Seen&) { return Reply{200, ""}; });
  ClientOptions o = FastOptions();
  o.credentials = {"AKIASTATICSTATIC1234", "secret", "", "environment", std::nullopt};
  o.user_agent = "sitesync/9.8.7";
  auto client = MakeClient(o);
  ASSERT_TRUE(client->Send(Put(server.endpoint(), "a")).has_value());
  auto defaults = MakeClient(FastOptions());
  ASSERT_TRUE(defaults->Send(Put(server.endpoint(), "b")).has_value());
  const auto seen = server.seen();
  ASSERT_EQ(seen.size(), 2u);
  EXPECT_EQ(seen[0].Header("user-agent"), "sitesync/9.8.7");
  EXPECT_EQ(seen[1].Header("user-agent"), "sitesync");
}

TEST_F(TransportTest, AccessDeniedNamesTheActionAndTheSourceNotTheSecretKey) {
  LoopbackServer server([&](const Seen&) { return Reply{403, ErrorXml("AccessDenied", "Access Denied")}; });
  auto provider = std::make_shared<FakeProvider>();
  ClientOptions o = ProviderOptions(provider);
  auto client = MakeClient(o);
  auto r = client->Send(Put(server.endpoint(), "a"));
  ASSERT_FALSE(r.has_value());
  const std::string& m = r.error().message;
  EXPECT_EQ(r.error().code, ErrorCode::kCredentials);
  EXPECT_NE(m.find("IAM or the bucket policy refuses s3:PutObject"), std::string::npos) << m;
  EXPECT_NE(m.find("role/deploy via profile ci"), std::string::npos) << m;
  EXPECT_NE(m.find(ShortKeyId(provider->Current().access_key_id)), std::string::npos) << m;
  EXPECT_EQ(m.find("secret key"), std::string::npos) << m;
  EXPECT_EQ(m.find("ASIAFAKEKEYFAKEKEY1"), std::string::npos) << m;
  EXPECT_EQ(server.seen().size(), 1u) << "a refusal by policy is not retried";
}

TEST_F(TransportTest, SignatureDoesNotMatchStillPointsAtTheSecretKey) {
  LoopbackServer server([&](const Seen&) {
    return Reply{403, ErrorXml("SignatureDoesNotMatch", "The request signature we calculated does not match.")};
  });
  ClientOptions o = FastOptions();
  o.credentials = {"AKIASTATICSTATIC1234", "secret", "", "profile default in /h/.aws/credentials", std::nullopt};
  auto client = MakeClient(o);
  auto r = client->Send(Put(server.endpoint(), "a"));
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(r.error().message.find("check the secret key"), std::string::npos) << r.error().message;
  EXPECT_NE(r.error().message.find("profile default in /h/.aws/credentials"), std::string::npos);
  EXPECT_EQ(r.error().message.find("AKIASTATICSTATIC1234"), std::string::npos);
}

TEST_F(TransportTest, UnreadableCaBundleFailsAtOnceAsAConfigErrorNamingIt) {
  LoopbackServer server([&](const Seen&) { return Reply{200, ""}; });
  ClientOptions o = FastOptions();
  o.credentials = {"AKIASTATICSTATIC1234", "secret", "", "environment", std::nullopt};
  o.ca_bundle = "/nonexistent/sitesync-ca.pem";
  auto client = MakeClient(o);
  HttpRequest r = Put(server.endpoint(), "a");
  r.endpoint = "https://127.0.0.1:" + server.endpoint().substr(server.endpoint().rfind(':') + 1);
  auto answer = client->Send(std::move(r));
  ASSERT_FALSE(answer.has_value());
  EXPECT_EQ(answer.error().code, ErrorCode::kConfig) << answer.error().message;
  EXPECT_NE(answer.error().message.find("/nonexistent/sitesync-ca.pem"), std::string::npos) << answer.error().message;
  EXPECT_EQ(client->Stats().retries, 0u) << "a certificate problem is not retried";
}

TEST(IamAction, FromServiceMethodQueryAndHeaders) {
  struct Case {
    std::string service, method, path;
    std::vector<std::pair<std::string, std::string>> query;
    HeaderList headers;
    std::string body;
    std::string want;
  };
  const std::vector<Case> cases = {
      {"s3", "PUT", "/b/k", {}, {}, "", "s3:PutObject"},
      {"s3", "PUT", "/b/k", {}, {{"X-Amz-Acl", "public-read"}}, "", "s3:PutObject (and s3:PutObjectAcl, for the acl)"},
      {"s3", "PUT", "/b/k", {}, {{"x-amz-server-side-encryption", "aws:kms"}}, "",
       "s3:PutObject (and kms:GenerateDataKey on the KMS key)"},
      {"s3", "GET", "/b", {{"list-type", "2"}, {"prefix", "a/"}}, {}, "", "s3:ListBucket"},
      {"s3", "GET", "/", {}, {}, "", "s3:ListBucket"},
      {"s3", "GET", "/b/k", {}, {}, "", "s3:GetObject"},
      {"s3", "HEAD", "/b/k", {}, {}, "", "s3:GetObject"},
      {"s3", "DELETE", "/b/k", {}, {}, "", "s3:DeleteObject"},
      {"s3", "POST", "/b", {{"delete", ""}}, {}, "", "s3:DeleteObject"},
      {"s3", "POST", "/b/k", {{"uploads", ""}}, {}, "", "s3:PutObject"},
      {"s3", "PUT", "/b/k", {{"partNumber", "1"}, {"uploadId", "u"}}, {}, "", "s3:PutObject"},
      {"s3", "DELETE", "/b/k", {{"uploadId", "u"}}, {}, "", "s3:AbortMultipartUpload"},
      {"s3", "GET", "/b", {{"location", ""}}, {}, "", "s3:GetBucketLocation"},
      {"cloudfront", "POST", "/2020-05-31/distribution/E1/invalidation", {}, {}, "", "cloudfront:CreateInvalidation"},
      {"cloudfront", "GET", "/2020-05-31/distribution/E1/invalidation/I1", {}, {}, "", "cloudfront:GetInvalidation"},
      {"cloudfront", "GET", "/2020-05-31/distribution", {}, {}, "", "cloudfront:ListDistributions"},
      {"cloudfront", "GET", "/2020-05-31/distribution/E1", {}, {}, "", "cloudfront:GetDistribution"},
      {"cloudfront", "GET", "/2020-05-31/distribution/E1/config", {}, {}, "", "cloudfront:GetDistributionConfig"},
      {"sts", "POST", "/", {}, {}, "Version=2011-06-15&Action=AssumeRole&RoleArn=x", "sts:AssumeRole"},
      {"sts", "GET", "/", {{"Action", "GetCallerIdentity"}}, {}, "", "sts:GetCallerIdentity"},
  };
  for (const Case& c : cases) {
    HttpRequest r;
    r.service = c.service;
    r.method = c.method;
    r.path = c.path;
    r.query = c.query;
    r.headers = c.headers;
    if (!c.body.empty()) {
      r.body.kind = Body::Kind::kBytes;
      r.body.bytes = c.body;
    }
    EXPECT_EQ(IamAction(r), c.want) << c.service << " " << c.method << " " << c.path;
  }
}

// A request the server keeps answering 503 SlowDown while it accepts the others: retried past max_attempts (the
// throttled attempts have their own budget), and it succeeds; the others keep the server busy meanwhile.
void ThrottledWhileOthersSucceed(bool adaptive) {
  std::atomic<int> hot_seen{0};
  LoopbackServer server([&](const Seen& s) {
    if (s.target == "/bucket/hot" && ++hot_seen <= 6) return Reply{503, ErrorXml("SlowDown", "Reduce your request rate.")};
    return Reply{200, ""};
  });
  ClientOptions o = FastOptions();
  o.max_attempts = 2;
  o.adaptive_in_flight = adaptive;
  o.max_in_flight = 8;
  std::vector<std::string> trace;
  o.trace = [&](std::string_view line) { trace.emplace_back(line); };
  auto client = MakeClient(o);
  std::optional<Result<HttpResponse>> hot;
  int others = 0;
  // Each other request that finishes submits the next while the hot one is not done (at most 300).
  std::function<void(Result<HttpResponse>)> other_done = [&](Result<HttpResponse> r) {
    EXPECT_TRUE(r.has_value());
    if (!hot && ++others < 300) client->Submit(Put(server.endpoint(), "o" + std::to_string(others)), other_done);
  };
  for (int i = 0; i < 4; ++i) client->Submit(Put(server.endpoint(), "first" + std::to_string(i)), other_done);
  client->Submit(Put(server.endpoint(), "hot"), [&](Result<HttpResponse> r) { hot = std::move(r); });
  for (int i = 0; i < 4; ++i) client->Submit(Put(server.endpoint(), "next" + std::to_string(i)), other_done);
  client->Run();
  ASSERT_TRUE(hot.has_value());
  std::string log;
  for (const auto& l : trace) log += l + "\n";
  ASSERT_TRUE(hot->has_value()) << hot->error().message << "\n" << log;
  EXPECT_EQ(hot_seen.load(), 7) << "six answers asking to slow down, then the success";
  const ClientStats stats = client->Stats();
  EXPECT_EQ(stats.throttled, 6u);
  EXPECT_GE(stats.retries, 6u);
  if (adaptive) {
    EXPECT_EQ(stats.in_flight_highest, 64);
    EXPECT_LT(stats.in_flight_lowest, 64) << "a SlowDown halves the window";
    EXPECT_GE(stats.in_flight_lowest, 8);
    EXPECT_TRUE(std::any_of(trace.begin(), trace.end(),
                            [](const std::string& l) { return l.starts_with("in flight 64 -> 32: "); }))
        << log;
  } else {
    EXPECT_EQ(stats.in_flight_lowest, 8);
    EXPECT_EQ(stats.in_flight_highest, 8);
  }
}

TEST_F(TransportTest, AThrottledRequestIsRetriedBeyondMaxAttemptsWhenAdaptive) { ThrottledWhileOthersSucceed(true); }

TEST_F(TransportTest, AThrottledRequestIsRetriedBeyondMaxAttemptsWhenFixed) { ThrottledWhileOthersSucceed(false); }

TEST_F(TransportTest, AServerThatThrottlesEverythingFailsAfterMaxAttempts) {
  // No request succeeds meanwhile: an outage, not a busy server; the 503s count as attempts.
  std::atomic<int> n{0};
  LoopbackServer server([&](const Seen&) {
    ++n;
    return Reply{503, ErrorXml("SlowDown", "Reduce your request rate.")};
  });
  ClientOptions o = FastOptions();
  o.max_attempts = 3;
  o.adaptive_in_flight = true;
  auto client = MakeClient(o);
  auto r = client->Send(Put(server.endpoint(), "a"));
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().http_status, 503);
  EXPECT_NE(r.error().message.find("gave up after 3 attempts"), std::string::npos) << r.error().message;
  EXPECT_EQ(n.load(), 3);
  EXPECT_EQ(client->Stats().throttled, 3u);
}

}  // namespace
}  // namespace sitesync::aws
