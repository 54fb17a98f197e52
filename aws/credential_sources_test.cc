// The network credential sources: the answer formats (tables), the container host allow-list, the
// credential_process runner with small scripts, and the HTTP paths against a loopback fake served from a thread.
#include "aws/credential_sources.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

namespace sitesync::aws {
namespace {

using std::chrono::system_clock;

system_clock::time_point Utc(int y, unsigned mo, unsigned d, int h, int mi, int s) {
  return std::chrono::sys_days(std::chrono::year(y) / std::chrono::month(mo) / std::chrono::day(d)) +
         std::chrono::hours(h) + std::chrono::minutes(mi) + std::chrono::seconds(s);
}

// ---------------------------------------------------------------------------------------------------------------
// Formats
// ---------------------------------------------------------------------------------------------------------------

TEST(ParseIso8601Test, ReadsTheFormsAwsSourcesWrite) {
  struct Case {
    const char* text;
    system_clock::time_point want;
  };
  const Case cases[] = {
      {"2026-12-06T06:00:00Z", Utc(2026, 12, 6, 6, 0, 0)},
      {"2026-12-06T06:00:00.359Z", Utc(2026, 12, 6, 6, 0, 0) + std::chrono::milliseconds(359)},
      {"2026-12-06T07:30:00+01:30", Utc(2026, 12, 6, 6, 0, 0)},
      {"2026-12-06T01:00:00-0500", Utc(2026, 12, 6, 6, 0, 0)},
      {"2024-02-29T23:59:59z", Utc(2024, 2, 29, 23, 59, 59)},
  };
  for (const Case& c : cases) {
    auto got = ParseIso8601(c.text, "test");
    ASSERT_TRUE(got) << c.text << ": " << got.error().message;
    EXPECT_EQ(*got, c.want) << c.text;
  }
}

TEST(ParseIso8601Test, RefusesWhatIsNotADateWithAZone) {
  for (const char* text : {"", "2026-12-06", "2026-12-06T06:00:00", "2026-13-06T06:00:00Z", "2026-02-30T06:00:00Z",
                           "2026-12-06T25:00:00Z", "2026-12-06T06:00:00.Z", "2026-12-06T06:00:00Zjunk",
                           "1733466000", "tomorrow"}) {
    auto got = ParseIso8601(text, "the answer");
    ASSERT_FALSE(got) << text;
    EXPECT_EQ(got.error().code, ErrorCode::kParse);
    EXPECT_NE(got.error().message.find("the answer"), std::string::npos);
  }
}

constexpr const char* kAssumeRoleXml = R"(<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/deploy/s</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAEXAMPLEKEY00001</AccessKeyId>
      <SecretAccessKey>secretsecretsecret</SecretAccessKey>
      <SessionToken>tokentoken</SessionToken>
      <Expiration>2026-12-06T06:00:00.000Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
</AssumeRoleResponse>)";

TEST(ParseStsCredentialsTest, ReadsAssumeRoleResult) {
  auto got = ParseStsCredentials(kAssumeRoleXml, "AssumeRoleResult", "sts:AssumeRole r");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->access_key_id, "ASIAEXAMPLEKEY00001");
  EXPECT_EQ(got->secret_access_key, "secretsecretsecret");
  EXPECT_EQ(got->session_token, "tokentoken");
  EXPECT_EQ(got->expiration, Utc(2026, 12, 6, 6, 0, 0));
}

TEST(ParseStsCredentialsTest, RefusesMissingFieldsBadDatesAndTheWrongResult) {
  std::string no_token = kAssumeRoleXml;
  no_token.replace(no_token.find("<SessionToken>"), std::string("<SessionToken>tokentoken</SessionToken>").size(), "");
  std::string bad_date = kAssumeRoleXml;
  bad_date.replace(bad_date.find("2026-12-06T06"), 13, "2026-12-06X06");
  struct Case {
    std::string xml;
    const char* result;
    const char* says;
  };
  const Case cases[] = {{no_token, "AssumeRoleResult", "SessionToken"},
                        {bad_date, "AssumeRoleResult", "ISO 8601"},
                        {kAssumeRoleXml, "AssumeRoleWithWebIdentityResult", "AssumeRoleWithWebIdentityResult"},
                        {"not xml", "AssumeRoleResult", "not XML"}};
  for (const Case& c : cases) {
    auto got = ParseStsCredentials(c.xml, c.result, "sts:AssumeRole r");
    ASSERT_FALSE(got) << c.says;
    EXPECT_EQ(got.error().code, ErrorCode::kCredentials);
    EXPECT_NE(got.error().message.find(c.says), std::string::npos) << got.error().message;
    EXPECT_EQ(got.error().message.find("secretsecret"), std::string::npos);
  }
}

TEST(ParseSsoCredentialsTest, ReadsRoleCredentialsWithEpochMilliseconds) {
  auto got = ParseSsoCredentials(
      R"({"roleCredentials":{"accessKeyId":"ASIASSO","secretAccessKey":"s3cr3t","sessionToken":"tok",)"
      R"("expiration":1796536800000}})",
      "sso");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->access_key_id, "ASIASSO");
  EXPECT_EQ(got->session_token, "tok");
  EXPECT_EQ(got->expiration, system_clock::time_point(std::chrono::milliseconds(1796536800000LL)));
}

TEST(ParseSsoCredentialsTest, RefusesMissingFieldsAndBadExpirations) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"roleCredentials":{"secretAccessKey":"s3cr3t","sessionToken":"t","expiration":1}})", "accessKeyId"},
      {R"({"roleCredentials":{"accessKeyId":"A","secretAccessKey":"s3cr3t","sessionToken":"t"}})", "expiration"},
      {R"({"roleCredentials":{"accessKeyId":"A","secretAccessKey":"s3cr3t","sessionToken":"t","expiration":"x"}})",
       "expiration"},
      {R"({"other":{}})", "roleCredentials"},
      {R"([1,2])", "not a JSON object"},
      {R"({"roleCredentials":)", "not valid JSON"},
  };
  for (const auto& [json, says] : cases) {
    auto got = ParseSsoCredentials(json, "sso");
    ASSERT_FALSE(got) << json;
    EXPECT_EQ(got.error().code, ErrorCode::kCredentials);
    EXPECT_NE(got.error().message.find(says), std::string::npos) << got.error().message;
    EXPECT_EQ(got.error().message.find("s3cr3t"), std::string::npos);
  }
}

TEST(ParseMetadataCredentialsTest, ReadsContainerAndImdsAnswers) {
  auto got = ParseMetadataCredentials(
      R"({"Code":"Success","Type":"AWS-HMAC","AccessKeyId":"ASIAIMDS","SecretAccessKey":"s3cr3t","Token":"t",)"
      R"("Expiration":"2026-12-06T06:00:00Z","LastUpdated":"2026-12-06T00:00:00Z"})",
      "imds");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->access_key_id, "ASIAIMDS");
  EXPECT_EQ(got->expiration, Utc(2026, 12, 6, 6, 0, 0));
  auto container = ParseMetadataCredentials(
      R"({"AccessKeyId":"ASIAECS","SecretAccessKey":"s","Token":"t","Expiration":"2026-12-06T06:00:00Z",)"
      R"("RoleArn":"arn:aws:iam::1:role/r"})",
      "container");
  ASSERT_TRUE(container) << container.error().message;
  EXPECT_EQ(container->access_key_id, "ASIAECS");
}

TEST(ParseMetadataCredentialsTest, RefusesErrorCodesMissingFieldsAndBadDates) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"Code":"AssumeRoleUnauthorizedAccess","Message":"EC2 cannot assume the role"})",
       "AssumeRoleUnauthorizedAccess: EC2 cannot assume the role"},
      {R"({"AccessKeyId":"A","SecretAccessKey":"s3cr3t","Expiration":"2026-12-06T06:00:00Z"})", "Token"},
      {R"({"AccessKeyId":"A","SecretAccessKey":"s3cr3t","Token":"t"})", "Expiration"},
      {R"({"AccessKeyId":"A","SecretAccessKey":"s3cr3t","Token":"t","Expiration":"soon"})", "ISO 8601"},
      {R"({"AccessKeyId":5,"SecretAccessKey":"s3cr3t","Token":"t","Expiration":"2026-12-06T06:00:00Z"})",
       "AccessKeyId"},
      {"<html>", "not valid JSON"},
  };
  for (const auto& [json, says] : cases) {
    auto got = ParseMetadataCredentials(json, "imds");
    ASSERT_FALSE(got) << json;
    EXPECT_EQ(got.error().code, ErrorCode::kCredentials);
    EXPECT_NE(got.error().message.find(says), std::string::npos) << got.error().message;
    EXPECT_EQ(got.error().message.find("s3cr3t"), std::string::npos);
  }
}

TEST(ParseProcessCredentialsTest, ReadsVersion1WithAndWithoutExpiration) {
  auto temporary = ParseProcessCredentials(
      R"({"Version":1,"AccessKeyId":"ASIAP","SecretAccessKey":"s","SessionToken":"t",)"
      R"("Expiration":"2026-12-06T06:00:00Z"})",
      "p");
  ASSERT_TRUE(temporary) << temporary.error().message;
  EXPECT_EQ(temporary->session_token, "t");
  EXPECT_EQ(temporary->expiration, Utc(2026, 12, 6, 6, 0, 0));
  auto long_term = ParseProcessCredentials(R"({"Version":1,"AccessKeyId":"AKIAP","SecretAccessKey":"s"})", "p");
  ASSERT_TRUE(long_term) << long_term.error().message;
  EXPECT_EQ(long_term->session_token, "");
  EXPECT_FALSE(long_term->expiration.has_value());
}

TEST(ParseProcessCredentialsTest, RefusesOtherVersionsBadJsonAndMissingKeys) {
  const std::pair<const char*, const char*> cases[] = {
      {R"({"Version":2,"AccessKeyId":"A","SecretAccessKey":"s3cr3t"})", "Version 2; only Version 1"},
      {R"({"AccessKeyId":"A","SecretAccessKey":"s3cr3t"})", "no Version"},
      {R"({"Version":"1","AccessKeyId":"A","SecretAccessKey":"s3cr3t"})", "not a number"},
      {R"({"Version":1,"AccessKeyId":"A"})", "SecretAccessKey"},
      {R"({"Version":1,"AccessKeyId":"A","SecretAccessKey":"s3cr3t","Expiration":"later"})", "ISO 8601"},
      {"AccessKeyId=A SecretAccessKey=s3cr3t", "not a JSON object"},
  };
  for (const auto& [json, says] : cases) {
    auto got = ParseProcessCredentials(json, "credential_process of profile p");
    ASSERT_FALSE(got) << json;
    EXPECT_EQ(got.error().code, ErrorCode::kCredentials);
    EXPECT_NE(got.error().message.find(says), std::string::npos) << got.error().message;
    EXPECT_NE(got.error().message.find("profile p"), std::string::npos);
    EXPECT_EQ(got.error().message.find("s3cr3t"), std::string::npos) << got.error().message;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// URLs and the container host allow-list
// ---------------------------------------------------------------------------------------------------------------

TEST(SplitHttpUrlTest, SplitsEndpointPathAndQuery) {
  auto got = SplitHttpUrl("http://127.0.0.1:8080/v2/creds%20x?id=a%2Fb&flag", "t");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->endpoint, "http://127.0.0.1:8080");
  EXPECT_EQ(got->host, "127.0.0.1");
  EXPECT_EQ(got->path, "/v2/creds x");
  ASSERT_EQ(got->query.size(), 2u);
  EXPECT_EQ(got->query[0], (std::pair<std::string, std::string>{"id", "a/b"}));
  EXPECT_EQ(got->query[1], (std::pair<std::string, std::string>{"flag", ""}));
  auto v6 = SplitHttpUrl("HTTP://[FD00:EC2::23]/x", "t");
  ASSERT_TRUE(v6);
  EXPECT_EQ(v6->host, "fd00:ec2::23");
  EXPECT_EQ(v6->endpoint, "http://[fd00:ec2::23]");
  for (const char* bad : {"169.254.170.2/x", "ftp://h/x", "http:///x", "http://u:p@h/", "http://h:99999/",
                          "http://h:x/", "http://[::1/"}) {
    auto refused = SplitHttpUrl(bad, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
    ASSERT_FALSE(refused) << bad;
    EXPECT_EQ(refused.error().code, ErrorCode::kConfig);
  }
}

TEST(ContainerHostAllowedTest, HttpOnlyToLoopbackAndTheContainerHostsHttpsAnywhere) {
  const std::pair<const char*, bool> cases[] = {
      {"http://169.254.170.2/v2/credentials", true},
      {"http://169.254.170.23/v1/credentials", true},
      {"http://[fd00:ec2::23]/v1/credentials", true},
      {"http://[fd00:ec2:0::0023]/v1/credentials", true},
      {"http://127.0.0.1:9000/creds", true},
      {"http://127.1.2.3/creds", true},
      {"http://[::1]:9000/creds", true},
      {"http://localhost:9000/creds", true},
      {"https://creds.example.com/get", true},
      {"http://creds.example.com/get", false},
      {"http://169.254.169.254/latest", false},
      {"http://10.0.0.1/creds", false},
      {"http://128.0.0.1/creds", false},
      {"http://[fd00:ec2::24]/creds", false},
      {"http://localhost.example.com/creds", false},
  };
  for (const auto& [url, allowed] : cases) {
    auto split = SplitHttpUrl(url, "t");
    ASSERT_TRUE(split) << url;
    EXPECT_EQ(ContainerHostAllowed(*split), allowed) << url;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// credential_process
// ---------------------------------------------------------------------------------------------------------------

class TempDir {
 public:
  TempDir() {
    std::string pattern = (std::filesystem::temp_directory_path() / "credsrc-XXXXXX").string();
    path_ = ::mkdtemp(pattern.data());
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  std::string Write(const std::string& name, const std::string& text) const {
    const std::string file = path_ + "/" + name;
    std::ofstream(file) << text;
    std::filesystem::permissions(file, std::filesystem::perms::owner_all);
    return file;
  }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

EnvLookup MapEnv(std::map<std::string, std::string> values) {
  return [values = std::move(values)](std::string_view name) -> std::optional<std::string> {
    auto it = values.find(std::string(name));
    if (it == values.end()) return std::nullopt;
    return it->second;
  };
}

TEST(ProcessCredentialsTest, RunsTheCommandThroughTheShellAndReadsItsJson) {
  TempDir dir;
  const std::string script = dir.Write(
      "ok.sh",
      "#!/bin/sh\necho 'a note on stderr' >&2\n"
      "printf '{\"Version\": 1, \"AccessKeyId\": \"AKIA%s\", \"SecretAccessKey\": \"s3cr3t\", "
      "\"SessionToken\": \"t\", \"Expiration\": \"2026-12-06T06:00:00Z\"}' \"$1\"\n");
  auto fetcher = NetworkCredentialFetcher(ClientOptions{}, MapEnv({}));
  // Quoted arguments and a pipe: the command line is the shell's.
  auto got = fetcher->ProcessCredentials("'" + script + "' 'PROC' | cat", "dev");
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->access_key_id, "AKIAPROC");
  EXPECT_EQ(got->secret_access_key, "s3cr3t");
  EXPECT_EQ(got->expiration, Utc(2026, 12, 6, 6, 0, 0));
  EXPECT_NE(got->source.find("profile dev"), std::string::npos);
}

TEST(ProcessCredentialsTest, FailuresNameTheProfileAndTheStatusNeverTheOutput) {
  TempDir dir;
  struct Case {
    std::string script;
    const char* says;
  };
  const Case cases[] = {
      {"#!/bin/sh\necho '{\"Version\":1,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s3cr3t\"}'\n"
       "echo 'first line' >&2\necho 'token expired, run helper login' >&2\nexit 3\n",
       "exit status 3 (its last error line: token expired, run helper login)"},
      {"#!/bin/sh\necho 'SecretAccessKey=s3cr3t'\n", "not a JSON object"},
      {"#!/bin/sh\necho '{\"Version\":2,\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s3cr3t\"}'\n",
       "Version 2; only Version 1"},
      // Killed by a signal: the -c shell reports it as 128 + the signal's number.
      {"#!/bin/sh\nkill -TERM $$\n", "exit status 143"},
  };
  int i = 0;
  for (const Case& c : cases) {
    const std::string script = dir.Write("s" + std::to_string(i++) + ".sh", c.script);
    auto fetcher = NetworkCredentialFetcher(ClientOptions{}, MapEnv({}));
    auto got = fetcher->ProcessCredentials(script, "deploy");
    ASSERT_FALSE(got) << c.says;
    EXPECT_EQ(got.error().code, ErrorCode::kCredentials);
    EXPECT_NE(got.error().message.find("credential_process of profile deploy"), std::string::npos);
    EXPECT_NE(got.error().message.find(c.says), std::string::npos) << got.error().message;
    EXPECT_EQ(got.error().message.find("s3cr3t"), std::string::npos) << got.error().message;
  }
}

TEST(RunShellCommandTest, KillsACommandThatRunsTooLongAndBoundsItsOutput) {
  const auto start = std::chrono::steady_clock::now();
  auto slow = RunShellCommand("sleep 30", std::chrono::milliseconds(200), 1024, "slow");
  ASSERT_TRUE(slow) << slow.error().message;
  EXPECT_TRUE(slow->timed_out);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(10));

  auto chatty = RunShellCommand("yes credentials", std::chrono::seconds(20), 4096, "chatty");
  ASSERT_FALSE(chatty);
  EXPECT_NE(chatty.error().message.find("more than 4096 bytes"), std::string::npos);

  auto ok = RunShellCommand("printf out; printf err >&2; exit 4", std::chrono::seconds(20), 1024, "ok");
  ASSERT_TRUE(ok) << ok.error().message;
  EXPECT_EQ(ok->out, "out");
  EXPECT_EQ(ok->err_tail, "err");
  EXPECT_EQ(ok->exit_status, 4);
}

// ---------------------------------------------------------------------------------------------------------------
// HTTP paths against a loopback fake
// ---------------------------------------------------------------------------------------------------------------

struct SeenRequest {
  std::string method;
  std::string target;  // path and query as sent
  std::map<std::string, std::string> headers;  // names lowercased
  std::string body;
};

struct CannedAnswer {
  int status = 200;
  std::string body;
};

// A one-thread HTTP/1.1 server on 127.0.0.1 (port from 0) that answers each request with `handler` and closes the
// connection. Records what it was asked.
class FakeHttpServer {
 public:
  using Handler = std::function<CannedAnswer(const SeenRequest&)>;

  explicit FakeHttpServer(Handler handler) : handler_(std::move(handler)) {
    listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    address.sin_port = 0;
    ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&address), sizeof address);
    ::listen(listen_fd_, 16);
    socklen_t length = sizeof address;
    ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&address), &length);
    port_ = ntohs(address.sin_port);
    thread_ = std::thread([this] { Serve(); });
  }

  ~FakeHttpServer() {
    stop_ = true;
    ::shutdown(listen_fd_, SHUT_RDWR);
    thread_.join();
    ::close(listen_fd_);
  }

  std::string endpoint() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<SeenRequest> seen() const {
    std::lock_guard lock(mutex_);
    return seen_;
  }

 private:
  void Serve() {
    while (!stop_) {
      const int fd = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (fd < 0) return;
      std::string data;
      char buffer[4096];
      std::size_t header_end = std::string::npos;
      while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
        const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
        if (got <= 0) break;
        data.append(buffer, static_cast<std::size_t>(got));
      }
      if (header_end == std::string::npos) {
        ::close(fd);
        continue;
      }
      SeenRequest request;
      std::istringstream lines(data.substr(0, header_end));
      std::string line;
      std::getline(lines, line);
      std::istringstream first(line);
      first >> request.method >> request.target;
      while (std::getline(lines, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto colon = line.find(':');
        if (colon == std::string::npos) continue;
        std::string name = line.substr(0, colon);
        for (char& c : name) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        std::string value = line.substr(colon + 1);
        while (!value.empty() && value.front() == ' ') value.erase(0, 1);
        request.headers.emplace(name, value);  // the first of duplicates
      }
      std::size_t length = 0;
      if (auto it = request.headers.find("content-length"); it != request.headers.end()) {
        length = std::stoul(it->second);
      }
      request.body = data.substr(header_end + 4);
      while (request.body.size() < length) {
        const ssize_t got = ::recv(fd, buffer, sizeof buffer, 0);
        if (got <= 0) break;
        request.body.append(buffer, static_cast<std::size_t>(got));
      }
      CannedAnswer answer = handler_(request);
      {
        std::lock_guard lock(mutex_);
        seen_.push_back(request);
      }
      const std::string response = "HTTP/1.1 " + std::to_string(answer.status) +
                                   " X\r\nContent-Length: " + std::to_string(answer.body.size()) +
                                   "\r\nConnection: close\r\n\r\n" + answer.body;
      ::send(fd, response.data(), response.size(), MSG_NOSIGNAL);
      ::close(fd);
    }
  }

  Handler handler_;
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mutex_;
  std::vector<SeenRequest> seen_;
};

std::string Header(const SeenRequest& r, const std::string& name) {
  auto it = r.headers.find(name);
  return it == r.headers.end() ? std::string() : it->second;
}

constexpr const char* kMetadataJson =
    R"({"Code":"Success","AccessKeyId":"ASIAFAKE","SecretAccessKey":"s3cr3t","Token":"tok",)"
    R"("Expiration":"2026-12-06T06:00:00Z"})";

ClientOptions QuietTransport() {
  ClientOptions options;
  options.user_agent = "sitesync/test";
  return options;
}

TEST(InstanceCredentialsTest, FetchesATokenThenTheRoleThenItsCredentials) {
  FakeHttpServer imds([](const SeenRequest& r) -> CannedAnswer {
    if (r.method == "PUT" && r.target == "/latest/api/token") {
      if (Header(r, "x-aws-ec2-metadata-token-ttl-seconds") != "21600") return {400, ""};
      return {200, "TOKEN1"};
    }
    if (Header(r, "x-aws-ec2-metadata-token") != "TOKEN1") return {401, ""};
    if (r.target == "/latest/meta-data/iam/security-credentials/") return {200, "web-role\n"};
    if (r.target == "/latest/meta-data/iam/security-credentials/web-role") return {200, kMetadataJson};
    return {404, ""};
  });
  auto fetcher = NetworkCredentialFetcher(QuietTransport(),
                                          MapEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint()}}));
  auto got = fetcher->InstanceCredentials();
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->access_key_id, "ASIAFAKE");
  EXPECT_EQ(got->session_token, "tok");
  EXPECT_EQ(got->expiration, Utc(2026, 12, 6, 6, 0, 0));
  EXPECT_NE(got->source.find("web-role"), std::string::npos);
  const auto seen = imds.seen();
  ASSERT_EQ(seen.size(), 3u);
  EXPECT_EQ(seen[0].method, "PUT");
  for (const SeenRequest& r : seen) {
    EXPECT_EQ(Header(r, "authorization"), "") << "IMDS requests are not signed";
    EXPECT_EQ(Header(r, "user-agent"), "sitesync/test");
  }
}

TEST(InstanceCredentialsTest, ARefusedTokenIsReplacedOnce) {
  std::atomic<int> tokens{0};
  FakeHttpServer imds([&](const SeenRequest& r) -> CannedAnswer {
    if (r.method == "PUT") return {200, "T" + std::to_string(++tokens)};
    if (Header(r, "x-aws-ec2-metadata-token") != "T2") return {401, ""};  // the first token is "expired"
    if (r.target.ends_with("/security-credentials/")) return {200, "role"};
    return {200, kMetadataJson};
  });
  auto fetcher = NetworkCredentialFetcher(QuietTransport(),
                                          MapEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint()}}));
  auto got = fetcher->InstanceCredentials();
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(tokens.load(), 2);
}

TEST(InstanceCredentialsTest, ATokenRefusedTwiceIsACredentialsError) {
  FakeHttpServer imds([](const SeenRequest& r) -> CannedAnswer {
    if (r.method == "PUT") return {200, "T"};
    return {401, ""};
  });
  auto fetcher = NetworkCredentialFetcher(QuietTransport(),
                                          MapEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint()}}));
  auto got = fetcher->InstanceCredentials();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kCredentials);
  EXPECT_NE(got.error().message.find("refused"), std::string::npos) << got.error().message;
}

TEST(InstanceCredentialsTest, NoRoleDisabledOrNoAnswerMeanNotFound) {
  FakeHttpServer no_role([](const SeenRequest& r) -> CannedAnswer {
    if (r.method == "PUT") return {200, "T"};
    return {404, ""};
  });
  auto fetcher = NetworkCredentialFetcher(QuietTransport(),
                                          MapEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", no_role.endpoint()}}));
  auto got = fetcher->InstanceCredentials();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound) << got.error().message;

  auto disabled = NetworkCredentialFetcher(
      QuietTransport(), MapEnv({{"AWS_EC2_METADATA_DISABLED", "TRUE"},
                                {"AWS_EC2_METADATA_SERVICE_ENDPOINT", no_role.endpoint()}}));
  const auto before = no_role.seen().size();
  auto off = disabled->InstanceCredentials();
  ASSERT_FALSE(off);
  EXPECT_EQ(off.error().code, ErrorCode::kNotFound);
  EXPECT_EQ(no_role.seen().size(), before);  // not asked at all

  // A port nothing listens on: refused at once, and not found.
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof address);
  socklen_t length = sizeof address;
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&address), &length);
  const int port = ntohs(address.sin_port);
  ::close(fd);
  auto nobody = NetworkCredentialFetcher(
      QuietTransport(), MapEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:" + std::to_string(port)}}));
  const auto start = std::chrono::steady_clock::now();
  auto none = nobody->InstanceCredentials();
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code, ErrorCode::kNotFound) << none.error().message;
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(3));
}

TEST(InstanceCredentialsTest, FallsBackToImdsV1WhenTheTokenCallIsNotThere) {
  FakeHttpServer imds([](const SeenRequest& r) -> CannedAnswer {
    if (r.method == "PUT") return {405, ""};
    if (!Header(r, "x-aws-ec2-metadata-token").empty()) return {400, ""};
    if (r.target.ends_with("/security-credentials/")) return {200, "role"};
    return {200, kMetadataJson};
  });
  auto fetcher = NetworkCredentialFetcher(QuietTransport(),
                                          MapEnv({{"AWS_EC2_METADATA_SERVICE_ENDPOINT", imds.endpoint()}}));
  auto got = fetcher->InstanceCredentials();
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_NE(got->source.find("IMDSv1"), std::string::npos);
}

TEST(ContainerCredentialsTest, NotConfiguredIsNotFound) {
  auto fetcher = NetworkCredentialFetcher(QuietTransport(), MapEnv({}));
  auto got = fetcher->ContainerCredentials();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kNotFound);
}

TEST(ContainerCredentialsTest, RelativeUriGoesToTheOverriddenHost) {
  FakeHttpServer ecs([](const SeenRequest& r) -> CannedAnswer {
    if (r.target != "/v2/credentials/abc?x=1") return {404, ""};
    return {200, kMetadataJson};
  });
  auto fetcher = NetworkCredentialFetcher(
      QuietTransport(), MapEnv({{"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/credentials/abc?x=1"},
                                {std::string(kContainerHostOverrideEnv), ecs.endpoint()}}));
  auto got = fetcher->ContainerCredentials();
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->access_key_id, "ASIAFAKE");
  EXPECT_EQ(Header(ecs.seen().at(0), "accept"), "application/json");
}

TEST(ContainerCredentialsTest, FullUriSendsTheTokenFromTheFileReadOnEachFetch) {
  TempDir dir;
  const std::string token_file = dir.Write("token", "first-token\n");
  FakeHttpServer pod([](const SeenRequest& r) -> CannedAnswer {
    const std::string token = Header(r, "authorization");
    if (token != "first-token" && token != "second-token") return {401, R"({"message":"bad token"})"};
    return {200, kMetadataJson};
  });
  auto fetcher = NetworkCredentialFetcher(
      QuietTransport(), MapEnv({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", pod.endpoint() + "/creds"},
                                {"AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", token_file},
                                {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "ignored-when-a-file-is-given"}}));
  ASSERT_TRUE(fetcher->ContainerCredentials());
  dir.Write("token", "second-token");
  ASSERT_TRUE(fetcher->ContainerCredentials());
  dir.Write("token", "wrong-token");
  auto refused = fetcher->ContainerCredentials();
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kCredentials);
  EXPECT_NE(refused.error().message.find("refused the authorization token"), std::string::npos)
      << refused.error().message;
  EXPECT_EQ(refused.error().message.find("wrong-token"), std::string::npos);
  const auto seen = pod.seen();
  ASSERT_GE(seen.size(), 2u);
  EXPECT_EQ(Header(seen[0], "authorization"), "first-token");
  EXPECT_EQ(Header(seen[1], "authorization"), "second-token");
  EXPECT_EQ(seen[0].target, "/creds");
}

TEST(ContainerCredentialsTest, FullUriToAnotherHostOverHttpIsRefusedUnasked) {
  auto fetcher = NetworkCredentialFetcher(
      QuietTransport(), MapEnv({{"AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://203.0.113.7/creds"},
                                {"AWS_CONTAINER_AUTHORIZATION_TOKEN", "secret-token"}}));
  auto got = fetcher->ContainerCredentials();
  ASSERT_FALSE(got);
  EXPECT_EQ(got.error().code, ErrorCode::kConfig);
  EXPECT_NE(got.error().message.find("203.0.113.7"), std::string::npos);
  EXPECT_EQ(got.error().message.find("secret-token"), std::string::npos);
}

TEST(SsoRoleCredentialsTest, SendsTheBearerTokenAndReadsTheAnswer) {
  FakeHttpServer portal([](const SeenRequest& r) -> CannedAnswer {
    if (Header(r, "x-amz-sso_bearer_token") != "cached-token") {
      return {401, R"({"message":"Session token not found or invalid"})"};
    }
    if (r.target != "/federation/credentials?account_id=123456789012&role_name=Deploy") return {404, ""};
    return {200, R"({"roleCredentials":{"accessKeyId":"ASIASSO","secretAccessKey":"s3cr3t",)"
                 R"("sessionToken":"t","expiration":1796536800000}})"};
  });
  SsoParams params{portal.endpoint(), "eu-west-1", "123456789012", "Deploy", "cached-token", "dev"};
  auto fetcher = NetworkCredentialFetcher(QuietTransport(), MapEnv({}));
  auto got = fetcher->SsoRoleCredentials(params);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->access_key_id, "ASIASSO");
  EXPECT_EQ(Header(portal.seen().at(0), "authorization"), "") << "GetRoleCredentials is not signed";

  params.access_token = "expired-token";
  auto expired = fetcher->SsoRoleCredentials(params);
  ASSERT_FALSE(expired);
  EXPECT_EQ(expired.error().code, ErrorCode::kCredentials);
  EXPECT_NE(expired.error().message.find("run `aws sso login --profile dev`"), std::string::npos)
      << expired.error().message;
  EXPECT_EQ(expired.error().message.find("expired-token"), std::string::npos);
}

TEST(AssumeRoleTest, PostsTheFormSignedWithTheSourceAndReadsTheCredentials) {
  FakeHttpServer sts([](const SeenRequest& r) -> CannedAnswer {
    if (r.body.find("RoleArn=arn%3Aaws%3Aiam%3A%3A123456789012%3Arole%2Fdeploy") == std::string::npos) {
      return {400, "<ErrorResponse><Error><Code>ValidationError</Code><Message>x</Message></Error></ErrorResponse>"};
    }
    if (r.body.find("ExternalId=ext") == std::string::npos) {
      return {403, "<ErrorResponse><Error><Code>AccessDenied</Code><Message>not authorized</Message></Error>"
                   "</ErrorResponse>"};
    }
    return {200, kAssumeRoleXml};
  });
  Credentials source{"AKIASOURCEKEY0000001", "sourcesecret", "", "profile default", std::nullopt};
  AssumeRoleParams params{"arn:aws:iam::123456789012:role/deploy", "sitesync-1", "ext", "", "", 900};
  StsTarget target{sts.endpoint(), "eu-west-1"};
  auto fetcher = NetworkCredentialFetcher(QuietTransport(), MapEnv({}));
  auto got = fetcher->AssumeRole(source, params, target);
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->access_key_id, "ASIAEXAMPLEKEY00001");
  const SeenRequest first = sts.seen().at(0);
  EXPECT_EQ(first.method, "POST");
  EXPECT_EQ(Header(first, "content-type"), "application/x-www-form-urlencoded; charset=utf-8");
  EXPECT_NE(first.body.find("Action=AssumeRole&Version=2011-06-15"), std::string::npos);
  EXPECT_NE(first.body.find("DurationSeconds=900"), std::string::npos);
  EXPECT_NE(Header(first, "authorization").find("Credential=AKIASOURCEKEY0000001/"), std::string::npos);
  EXPECT_NE(Header(first, "authorization").find("/eu-west-1/sts/aws4_request"), std::string::npos);

  params.external_id.clear();
  auto denied = fetcher->AssumeRole(source, params, target);
  ASSERT_FALSE(denied);
  EXPECT_EQ(denied.error().code, ErrorCode::kCredentials);
  EXPECT_NE(denied.error().message.find("may not assume arn:aws:iam::123456789012:role/deploy: check the role's "
                                        "trust policy"),
            std::string::npos)
      << denied.error().message;
  EXPECT_EQ(denied.error().message.find("AKIASOURCEKEY0000001"), std::string::npos);
  EXPECT_EQ(denied.error().message.find("sourcesecret"), std::string::npos);
}

TEST(AssumeRoleTest, SendsTheMfaCodeAndNamesRefusedSourceKeys) {
  FakeHttpServer sts([](const SeenRequest& r) -> CannedAnswer {
    if (r.body.find("SerialNumber=arn%3Aaws%3Aiam%3A%3A123456789012%3Amfa%2Fme&TokenCode=123456") !=
        std::string::npos) {
      return {200, kAssumeRoleXml};
    }
    return {403, "<ErrorResponse><Error><Code>InvalidClientTokenId</Code><Message>The security token included in "
                 "the request is invalid.</Message></Error></ErrorResponse>"};
  });
  Credentials source{"AKIASOURCEKEY0000001", "sourcesecret", "", "profile base", std::nullopt};
  AssumeRoleParams params{"arn:aws:iam::123456789012:role/admin", "s", "", "arn:aws:iam::123456789012:mfa/me",
                          "123456", 0};
  auto fetcher = NetworkCredentialFetcher(QuietTransport(), MapEnv({}));
  auto got = fetcher->AssumeRole(source, params, StsTarget{sts.endpoint(), "us-east-1"});
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(sts.seen().at(0).body.find("DurationSeconds"), std::string::npos);  // 0: STS's default

  params.mfa_serial.clear();
  auto refused = fetcher->AssumeRole(source, params, StsTarget{sts.endpoint(), "us-east-1"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kCredentials);
  EXPECT_NE(refused.error().message.find("InvalidClientTokenId: STS refused the source credentials (profile base, "
                                         "access key ID ...0001): check the source profile's access key ID and "
                                         "secret key"),
            std::string::npos)
      << refused.error().message;
}

TEST(AssumeRoleWithWebIdentityTest, SendsTheTokenInTheFormAndReadsTheResult) {
  std::string xml = kAssumeRoleXml;
  for (std::string from = "AssumeRoleRe"; xml.find(from) != std::string::npos;) {
    xml.replace(xml.find(from), from.size(), "AssumeRoleWithWebIdentityRe");
  }
  FakeHttpServer sts([&](const SeenRequest& r) -> CannedAnswer {
    if (r.body.find("WebIdentityToken=oidc.jwt.token") == std::string::npos) {
      return {400, "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>no</Message></Error>"
                   "</ErrorResponse>"};
    }
    return {200, xml};
  });
  WebIdentityParams params{"arn:aws:iam::123456789012:role/ci", "gitlab", "oidc.jwt.token", "/run/token", 0};
  auto fetcher = NetworkCredentialFetcher(QuietTransport(), MapEnv({}));
  auto got = fetcher->AssumeRoleWithWebIdentity(params, StsTarget{sts.endpoint(), "us-east-1"});
  ASSERT_TRUE(got) << got.error().message;
  EXPECT_EQ(got->access_key_id, "ASIAEXAMPLEKEY00001");
  EXPECT_NE(sts.seen().at(0).body.find("Action=AssumeRoleWithWebIdentity"), std::string::npos);
  EXPECT_EQ(Header(sts.seen().at(0), "authorization"), "") << "AssumeRoleWithWebIdentity is not signed";
  EXPECT_EQ(Header(sts.seen().at(0), "x-amz-date"), "");

  params.token = "stale";
  auto refused = fetcher->AssumeRoleWithWebIdentity(params, StsTarget{sts.endpoint(), "us-east-1"});
  ASSERT_FALSE(refused);
  EXPECT_EQ(refused.error().code, ErrorCode::kCredentials);
  EXPECT_NE(refused.error().message.find("InvalidIdentityToken"), std::string::npos) << refused.error().message;
  EXPECT_EQ(refused.error().message.find("stale"), std::string::npos);
}

}  // namespace
}  // namespace sitesync::aws
