// The one libcurl multi loop that carries every request: a bounded number of transfers in flight, topped up as
// each finishes, every easy handle pointing at its transfer through CURLOPT_PRIVATE. The loop is libcurl's
// event-driven interface (curl_multi_socket_action over epoll): each wake-up touches only the connections that
// are ready, where curl_multi_perform would poll every transfer in flight, one syscall each. Retries, backoff
// and clock correction live here so that one 503 among thousands of uploads stays attached to its own transfer.
// When a server stops talking, the rules of aws/watchdog.h decide; this file only samples the transfers for them.
// File bodies come as descriptors the caller opened (beneath SOURCE, sync/): nothing here opens a file by name.
#include <curl/curl.h>
#include <libxml/parser.h>
#include <openssl/ssl.h>
#include <linux/sockios.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <deque>
#include <filesystem>
#include <optional>
#include <random>
#include <set>

#include <fmt/format.h>

#include "aws/aws.h"
#include "aws/c_handles.h"
#include "aws/in_flight.h"
#include "aws/watchdog.h"

namespace sitesync::aws {
namespace {

using Clock = WatchClock;

// Why the loop ended an attempt itself (curl did not).
enum class Cut { kNone, kIdle, kSilent };

struct Transfer {
  HttpRequest request;
  HttpClient::Callback done;
  int attempt = 0;  // attempts already finished
  bool prepared = false;

  CurlEasy easy;
  CurlSlist header_list;
  std::uint64_t body_sent = 0;
  bool in_place = false;  // the body was handed to curl as POSTFIELDS: body_sent is curl's count (Watch samples it)
  bool tls = false;       // this attempt's endpoint is https (its connection is counted by the HandshakeGate)
  std::uint64_t received = 0;  // response bytes of this attempt (status line, headers, body)
  bool body_error = false;
  std::string body_error_message;
  HttpResponse response;
  Clock::time_point started;
  IdleTimer idle;
  Cut cut = Cut::kNone;
  bool begun = false;  // counted by the SilenceRule (first attempt started) until its final answer
  curl_socket_t socket = CURL_SOCKET_BAD;  // this attempt's connection, as curl's socket callback names it
  char error_buffer[CURL_ERROR_SIZE] = {};
  // Credentials (ClientOptions::credential_provider): what this attempt was signed with, for messages; the
  // provider's refresh generation at that time; whether the next attempt asks the provider to fetch anew; whether
  // this request already had its one refresh after an ExpiredToken answer (that retry is not counted as an attempt).
  Credentials signed_with;
  std::uint64_t signed_generation = 0;
  bool force_refresh = false;
  bool refreshed = false;
  int free_attempts = 0;
  // The adaptive window: which decrease this attempt started after (InFlightController::Started); answers asking
  // to slow down so far; whether a retry goes to the front of the ready queue.
  std::uint64_t window_ticket = 0;
  int throttled = 0;
  bool retry_first = false;
  std::uint64_t ok_before = 0;  // the client's 2xx answers when the first attempt started
};

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string Trim(std::string_view s) {
  std::size_t b = 0, e = s.size();
  while (b < e && (s[b] == ' ' || s[b] == '\t' || s[b] == '\r' || s[b] == '\n')) ++b;
  while (e > b && (s[e - 1] == ' ' || s[e - 1] == '\t' || s[e - 1] == '\r' || s[e - 1] == '\n')) --e;
  return std::string(s.substr(b, e - b));
}

std::size_t OnWrite(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  t->response.body.append(data, size * count);
  t->received += size * count;
  return size * count;
}

std::size_t OnHeader(char* data, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * count);
  t->received += line.size();
  if (line.starts_with("HTTP/")) {
    t->response.headers.clear();  // a new response (after 100 Continue or a redirect)
  } else if (auto colon = line.find(':'); colon != std::string_view::npos) {
    t->response.headers.emplace_back(Lower(Trim(line.substr(0, colon))), Trim(line.substr(colon + 1)));
  }
  return size * count;
}

// Streams the body from memory or from the file with pread at the transfer's own offset, so retries and curl's
// rewinds only reset body_sent. Nothing here may throw: this runs inside libcurl.
std::size_t OnRead(char* buffer, std::size_t size, std::size_t count, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const Body& body = t->request.body;
  const std::uint64_t total = body.size();
  const std::uint64_t left = total - std::min(total, t->body_sent);
  const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(left, size * count));
  if (want == 0) return 0;
  if (body.kind == Body::Kind::kBytes) {
    std::memcpy(buffer, body.bytes.data() + t->body_sent, want);
    t->body_sent += want;
    return want;
  }
  ssize_t got;
  do {
    got = ::pread(body.file->get(), buffer, want, static_cast<off_t>(body.offset + t->body_sent));
  } while (got < 0 && errno == EINTR);
  if (got <= 0) {
    t->body_error = true;
    t->body_error_message = got < 0 ? std::strerror(errno) : "file shrank while it was being uploaded";
    return CURL_READFUNC_ABORT;
  }
  t->body_sent += static_cast<std::uint64_t>(got);
  return static_cast<std::size_t>(got);
}

// libcurl's SSL_CTX callback (OpenSSL backend only; see OpenSslUnderCurl): each TLS connection's read and write
// buffers (some 34 KiB together) are released while the connection waits, and taken again when it moves. With
// hundreds of connections waiting on a 20 ms answer, most of them hold none.
//
// It also reports each connection's handshake to the loop's HandshakeGate (aws/in_flight.h): the SSL_CTX carries
// the gate (libcurl 7.88 makes an SSL_CTX per connection), its info callback marks the SSL whose handshake is done,
// and the mark's free function tells the gate when that connection goes.
void OnReadySslFree(void*, void* gate, CRYPTO_EX_DATA*, int, long, void*) {  // NOLINT(google-runtime-int): OpenSSL's
  if (gate != nullptr) static_cast<HandshakeGate*>(gate)->ReadyClosed();
}

int GateIndexOfCtx() {
  static const int index = SSL_CTX_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

int ReadyIndexOfSsl() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, &OnReadySslFree);
  return index;
}

// A TLS 1.3 session is resumed by every new connection to its endpoint, not by one. At the end of a TLS 1.3
// handshake OpenSSL removes the session it offered from the client cache (SSL_CTX_remove_session), which marks
// that SSL_SESSION, the one curl keeps in its cache and hands every new connection, not resumable: RFC 8446
// advises a client to use a ticket once, so that an observer cannot link its connections. Every connection of a
// run is one client signing with one key to one bucket: there is nothing to unlink. And single use cost a full
// handshake (the server's certificate chain sent, parsed and verified; a signature by the server's key) on
// every connection opened before the next ticket came, which is read with the answer a round trip later: 98 of
// the 256 connections of a first upload of the medium site over HTTPS, where the in-flight count grows in steps.
// So from the ServerHello of a TLS 1.3 handshake to its end the SSL_CTX (libcurl 7.88 makes one per connection)
// has SSL_SESS_CACHE_CLIENT cleared, which skips that removal; it is set again when the handshake is done, before
// the server's tickets are read, so that OpenSSL still hands them to curl's new-session callback (it does only
// with that bit set). TLS 1.2 is left alone: its session is cached at the end of the handshake.
enum class SessionKeep : std::intptr_t { kUntouched = 0, kCleared = 1, kDone = 2 };

int SessionKeepIndexOfSsl() {
  static const int index = SSL_get_ex_new_index(0, nullptr, nullptr, nullptr, nullptr);
  return index;
}

SessionKeep KeepStateOf(const SSL* ssl) {
  return static_cast<SessionKeep>(reinterpret_cast<std::intptr_t>(SSL_get_ex_data(ssl, SessionKeepIndexOfSsl())));
}

bool SetKeepState(const SSL* ssl, SessionKeep state) {
  return SSL_set_ex_data(const_cast<SSL*>(ssl), SessionKeepIndexOfSsl(),
                         reinterpret_cast<void*>(static_cast<std::intptr_t>(state))) == 1;
}

void KeepTls13Session(const SSL* ssl, int where) {
  if (SessionKeepIndexOfSsl() < 0) return;
  const SessionKeep state = KeepStateOf(ssl);
  if (state == SessionKeep::kDone) return;
  SSL_CTX* ctx = SSL_get_SSL_CTX(ssl);
  const long mode = SSL_CTX_get_session_cache_mode(ctx);  // NOLINT(google-runtime-int): OpenSSL's type
  if (where & SSL_CB_HANDSHAKE_DONE) {
    if (state == SessionKeep::kCleared) SSL_CTX_set_session_cache_mode(ctx, mode | SSL_SESS_CACHE_CLIENT);
    SetKeepState(ssl, SessionKeep::kDone);
    return;
  }
  if (state == SessionKeep::kUntouched && (where & SSL_CB_LOOP) && SSL_version(ssl) == TLS1_3_VERSION &&
      (mode & SSL_SESS_CACHE_CLIENT) != 0 && SetKeepState(ssl, SessionKeep::kCleared)) {
    SSL_CTX_set_session_cache_mode(ctx, mode & ~SSL_SESS_CACHE_CLIENT);
  }
}

void OnTlsInfo(const SSL* ssl, int where, int) {
  KeepTls13Session(ssl, where);
  // In TLS 1.3 a session ticket after the handshake is reported as a handshake again: the mark counts it once.
  if (!(where & SSL_CB_HANDSHAKE_DONE) || SSL_get_ex_data(ssl, ReadyIndexOfSsl()) != nullptr) return;
  auto* gate = static_cast<HandshakeGate*>(SSL_CTX_get_ex_data(SSL_get_SSL_CTX(ssl), GateIndexOfCtx()));
  if (gate == nullptr) return;
  if (SSL_set_ex_data(const_cast<SSL*>(ssl), ReadyIndexOfSsl(), gate) == 1) gate->HandshakeDone();
}

CURLcode OnSslCtx(CURL*, void* ssl_ctx, void* gate) {
  auto* ctx = static_cast<SSL_CTX*>(ssl_ctx);
  SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
  if (GateIndexOfCtx() >= 0 && ReadyIndexOfSsl() >= 0) SSL_CTX_set_ex_data(ctx, GateIndexOfCtx(), gate);
  SSL_CTX_set_info_callback(ctx, &OnTlsInfo);
  return CURLE_OK;
}

// The sockets of connections to https endpoints, counted for the HandshakeGate (set only on their transfers).
curl_socket_t OnOpenTlsSocket(void* gate, curlsocktype, curl_sockaddr* address) {
  const int fd = ::socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
  if (fd < 0) return CURL_SOCKET_BAD;
  static_cast<HandshakeGate*>(gate)->SocketOpened();
  return fd;
}

int OnCloseTlsSocket(void* gate, curl_socket_t fd) {
  static_cast<HandshakeGate*>(gate)->SocketClosed();
  return ::close(fd);
}

// Whether libcurl's TLS is OpenSSL's, whose SSL_CTX OnSslCtx may touch (another backend would hand it something
// else).
bool OpenSslUnderCurl() {
  const curl_version_info_data* info = curl_version_info(CURLVERSION_NOW);
  return info != nullptr && info->ssl_version != nullptr && std::string_view(info->ssl_version).starts_with("OpenSSL/");
}

// Whether the CAs come from one PEM file and nothing else, with libcurl's CA directory turned off. libcurl keeps
// the certificate store it loads from a file in the multi handle and gives it to every connection; with a CA
// directory as well (Debian builds libcurl with --with-ca-path=/etc/ssl/certs) it loads the whole file again into
// each connection's own store: about 140 certificates (200 KB of PEM) parsed and kept per connection, 256 times
// when 256 transfers are in flight. The file is `ca_bundle` when one is set: the AWS CLI trusts the bundle alone
// then, and so does sitesync. Otherwise it is libcurl's default bundle (on Debian the same certificates
// update-ca-certificates puts in the directory), when it exists; on a system without one, libcurl's own defaults
// stay.
bool TrustOneCaFile(const std::string& ca_bundle) {
  if (!ca_bundle.empty()) return true;
  CurlEasy probe(curl_easy_init());
  char* default_file = nullptr;
  if (!probe || curl_easy_getinfo(probe.get(), CURLINFO_CAINFO, &default_file) != CURLE_OK || default_file == nullptr) {
    return false;
  }
  std::error_code ec;
  return std::filesystem::is_regular_file(default_file, ec);
}

int OnSeek(void* user, curl_off_t offset, int origin) {
  auto* t = static_cast<Transfer*>(user);
  if (origin != SEEK_SET || offset < 0) return CURL_SEEKFUNC_CANTSEEK;
  t->body_sent = static_cast<std::uint64_t>(offset);
  return CURL_SEEKFUNC_OK;
}

bool IsRetryableCurlCode(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_WEIRD_SERVER_REPLY:
      return true;
    default:
      return false;
  }
}

bool IsRetryableServiceCode(std::string_view code) {
  static constexpr std::string_view kCodes[] = {
      "SlowDown",          "Throttling",       "ThrottlingException", "RequestLimitExceeded",
      "RequestTimeout",    "ServiceUnavailable", "InternalError",     "TooManyRequestsException",
      "RequestThrottled", "TooManyInvalidationsInProgress", "PriorRequestNotComplete"};
  return std::find(std::begin(kCodes), std::end(kCodes), code) != std::end(kCodes);
}

// A TLS failure that is about the server's certificate or the CA bundle: retrying cannot help, the fix is a CA.
bool IsCertificateCurlCode(CURLcode code) {
  switch (code) {
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_CRL_BADFILE:
      return true;
    default:
      return false;
  }
}

// The answers that mean "the session token has expired; fetch credentials again and sign anew". The AWS SDKs
// refresh on ExpiredToken (S3 400, STS/CloudFront 403) and ExpiredTokenException (JSON protocols); S3 also
// documents 400 TokenRefreshRequired ("The provided token must be refreshed"). S3's InvalidToken usually means a
// malformed token ("The provided token is malformed or otherwise invalid"): only one whose message says it expired
// is a refresh case.
bool IsExpiredTokenAnswer(long status, std::string_view code, std::string_view message) {
  if (status != 400 && status != 403) return false;
  if (code == "ExpiredToken" || code == "ExpiredTokenException" || code == "TokenRefreshRequired") return true;
  return code == "InvalidToken" && Lower(message).find("expired") != std::string::npos;
}

// A refusal by policy (IAM, the bucket policy, an SCP) of a request whose signature the server accepted.
bool IsAccessDeniedCode(std::string_view code) {
  return code == "AccessDenied" || code == "AccessDeniedException" || code == "UnauthorizedOperation" ||
         code == "AllAccessDisabled";
}

bool HasQuery(const HttpRequest& r, std::string_view name) {
  return std::any_of(r.query.begin(), r.query.end(), [&](const auto& q) { return q.first == name; });
}

bool IsCredentialCode(std::string_view code) {
  static constexpr std::string_view kCodes[] = {
      "SignatureDoesNotMatch", "InvalidAccessKeyId", "InvalidClientTokenId", "ExpiredToken",
      "InvalidToken",          "TokenRefreshRequired", "AccessDenied",      "AuthFailure",
      "MissingAuthenticationToken", "UnrecognizedClientException", "IncompleteSignature"};
  return std::find(std::begin(kCodes), std::end(kCodes), code) != std::end(kCodes);
}

// The bucket's region as an S3 error answer states it: the x-amz-bucket-region header (sent with 301
// PermanentRedirect and with 400 AuthorizationHeaderMalformed), else the <Region> element of the error body (400
// AuthorizationHeaderMalformed has it); empty when the answer does not say.
std::string BucketRegionOf(const HttpResponse& response) {
  std::string region = response.Header("x-amz-bucket-region");
  if (!region.empty() || response.body.empty()) return region;
  auto doc = ParseXml(response.body);
  if (!doc || doc->name != "Error") return {};
  return doc->ChildText("Region");
}

std::string HostHeader(std::string_view endpoint) {
  std::string_view rest = endpoint;
  bool https = true;
  if (auto p = rest.find("://"); p != std::string_view::npos) {
    https = rest.substr(0, p) == "https";
    rest.remove_prefix(p + 3);
  }
  if (auto slash = rest.find('/'); slash != std::string_view::npos) rest = rest.substr(0, slash);
  // Default ports are not part of Host (curl leaves them out too; the signature must match what is sent).
  if (https && rest.ends_with(":443")) rest.remove_suffix(4);
  if (!https && rest.ends_with(":80")) rest.remove_suffix(3);
  return Lower(rest);
}

class CurlClient final : public HttpClient {
 public:
  CurlClient(ClientOptions options, CurlShare share, CurlMulti multi, UniqueFd epoll)
      : options_(std::move(options)),
        share_(std::move(share)),
        multi_(std::move(multi)),
        epoll_(std::move(epoll)),
        rng_(std::random_device{}()),
        silence_(options_.silent_timeout),
        window_(InFlightOptions{options_.adaptive_in_flight, options_.max_in_flight, options_.in_flight_min,
                                options_.in_flight_start, options_.in_flight_max, true}) {
    curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, &CurlClient::OnSocket);
    curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETDATA, this);
    curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, &CurlClient::OnTimer);
    curl_multi_setopt(multi_.get(), CURLMOPT_TIMERDATA, this);
  }

  ~CurlClient() override {
    // The connection cache is closed after this body, when the members go: no callbacks into them by then.
    curl_multi_setopt(multi_.get(), CURLMOPT_SOCKETFUNCTION, nullptr);
    curl_multi_setopt(multi_.get(), CURLMOPT_TIMERFUNCTION, nullptr);
    // Transfers still attached (only if Run was abandoned) are detached before their easy handles go.
    for (Transfer* t : running_) {
      curl_multi_remove_handle(multi_.get(), t->easy.get());
      delete t;
    }
  }

  void Submit(HttpRequest request, Callback done) override {
    auto t = std::make_unique<Transfer>();
    t->request = std::move(request);
    t->done = std::move(done);
    ready_.push_back(std::move(t));
  }

  void Run() override {
    while (!ready_.empty() || !waiting_.empty() || !running_.empty()) {
      Watch();
      PromoteDue();
      bool gated = false;
      while (Occupied() < window_.Window() && !ready_.empty()) {
        if (openssl_ && IsHttps(ready_.front()->request) && !gate_.MayStart(RunningTls())) {
          gated = true;  // new connections wait until some of those in their handshakes are through
          break;
        }
        std::unique_ptr<Transfer> t = std::move(ready_.front());
        ready_.pop_front();
        Start(std::move(t));
      }
      if (timer_due_ && *timer_due_ <= Clock::now()) {
        timer_due_.reset();
        SocketAction(CURL_SOCKET_TIMEOUT, 0);
        continue;
      }
      if (!ready_.empty() && Occupied() < window_.Window() && !gated) continue;
      if (running_.empty() && waiting_.empty()) continue;
      std::array<epoll_event, 64> events;
      const int n = epoll_wait(epoll_.get(), events.data(), static_cast<int>(events.size()), WaitMs());
      // Nothing ready and no timer of curl's: let curl look at its transfers anyway (at most once a second while
      // idle), so that a transfer can never wait on an event that was not asked for.
      if (n == 0 && !timer_due_) SocketAction(CURL_SOCKET_TIMEOUT, 0);
      for (int i = 0; i < n; ++i) {
        int flags = 0;
        if (events[i].events & EPOLLIN) flags |= CURL_CSELECT_IN;
        if (events[i].events & EPOLLOUT) flags |= CURL_CSELECT_OUT;
        if (events[i].events & (EPOLLERR | EPOLLHUP)) flags |= CURL_CSELECT_ERR;
        SocketAction(events[i].data.fd, flags);
      }
    }
  }

  ClientStats Stats() const override {
    ClientStats s = stats_;
    s.in_flight_lowest = window_.Lowest();
    s.in_flight_highest = window_.Highest();
    s.in_flight_final = window_.Window();
    return s;
  }

 private:
  // Samples every running attempt for the rules of aws/watchdog.h (a few times a second at most: the limits are
  // seconds long), then cuts the attempts that sat idle and gives up on endpoints that never answered.
  void Watch() {
    const auto now = Clock::now();
    if (now - last_watch_ < std::chrono::milliseconds(200)) return;
    last_watch_ = now;
    std::vector<Transfer*> idle;
    for (Transfer* t : running_) {
      if (t->in_place) {
        curl_off_t up = 0;
        if (curl_easy_getinfo(t->easy.get(), CURLINFO_SIZE_UPLOAD_T, &up) == CURLE_OK && up > 0) {
          t->body_sent = static_cast<std::uint64_t>(up);
        }
      }
      const TransferProgress& last = t->idle.Last();
      TransferProgress p{t->body_sent, last.send_queue, t->received};
      if (t->received > 0) silence_.Answered(t->request.endpoint);
      // Counters unchanged: a body may still be draining from the kernel's send buffer (megabytes on a fast
      // link) to a slow peer. That is movement too; only then is the socket asked.
      if (t->request.body.size() > 0 && p.body_sent == last.body_sent && p.received == last.received) {
        p.send_queue = SendQueue(*t);
      }
      t->idle.Observe(p, now);
      if (t->idle.Expired(now)) idle.push_back(t);
    }
    for (Transfer* t : idle) CutRunning(t, Cut::kIdle);
    for (const std::string& endpoint : silence_.Check(now)) GiveUp(endpoint);
  }

  // Bytes of this attempt's connection the kernel still holds for the peer (SIOCOUTQ); 0 when unknown.
  // (CURLINFO_ACTIVESOCKET does not name the connection of a transfer in progress: the socket callback does.)
  static std::uint64_t SendQueue(const Transfer& t) {
    if (t.socket == CURL_SOCKET_BAD) return 0;
    int queued = 0;
    if (::ioctl(t.socket, SIOCOUTQ, &queued) != 0 || queued < 0) return 0;
    return static_cast<std::uint64_t>(queued);
  }

  // Ends a running attempt from outside curl's callbacks (allowed: curl_multi_remove_handle) and finishes it as
  // a timeout, retried or not per `why`.
  void CutRunning(Transfer* raw, Cut why) {
    curl_multi_remove_handle(multi_.get(), raw->easy.get());
    running_.erase(std::find(running_.begin(), running_.end(), raw));
    std::unique_ptr<Transfer> t(raw);
    t->cut = why;
    Finish(std::move(t), CURLE_OPERATION_TIMEDOUT);
  }

  // Fails every request to `endpoint` that is in flight or waiting for a retry; those not started yet fail when
  // they would start (MayAttempt).
  void GiveUp(const std::string& endpoint) {
    std::vector<Transfer*> cut;
    for (Transfer* t : running_) {
      if (t->request.endpoint == endpoint) cut.push_back(t);
    }
    std::vector<std::unique_ptr<Transfer>> waiting;
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->second->request.endpoint == endpoint) {
        if (it->second->retry_first) --backing_off_;
        waiting.push_back(std::move(it->second));
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
    Trace("{}", silence_.Message(endpoint, EndpointOption(endpoint)));
    for (Transfer* t : cut) CutRunning(t, Cut::kSilent);
    for (auto& t : waiting) {
      Error error = SilentError(t->request);
      Abandon(std::move(t), std::move(error));
    }
  }

  std::string EndpointOption(std::string_view endpoint) const {
    return endpoint.find("cloudfront") != std::string_view::npos || cloudfront_endpoints_.contains(endpoint)
               ? "--cloudfront-endpoint"
               : "--endpoint";
  }

  Error SilentError(const HttpRequest& r) const {
    return Error{ErrorCode::kNetwork,
                 fmt::format("{}: {}", r.what, silence_.Message(r.endpoint, EndpointOption(r.endpoint))), false, 0,
                 {}};
  }

  // The final answer of a request that will not be attempted again.
  void Abandon(std::unique_ptr<Transfer> t, Error error) {
    if (t->begun) silence_.Done(t->request.endpoint);
    error.message = RedactKeyId(std::move(error.message), options_.credentials.access_key_id);
    error.message = RedactKeyId(std::move(error.message), latest_key_id_);
    for (const std::string& id : earlier_key_ids_) error.message = RedactKeyId(std::move(error.message), id);
    Callback done = std::move(t->done);
    done(std::unexpected(std::move(error)));
  }

  // Slots of the window taken: the attempts running, and the throttled requests waiting out a backoff (adaptive:
  // each keeps its slot, so that the window bounds the request rate too, even where answers take a millisecond).
  int Occupied() const { return static_cast<int>(running_.size() + backing_off_); }

  static bool IsHttps(const HttpRequest& r) { return r.endpoint.starts_with("https://"); }
  int RunningTls() const {
    return static_cast<int>(std::count_if(running_.begin(), running_.end(), [](const Transfer* t) { return t->tls; }));
  }

  void PromoteDue() {
    const auto now = Clock::now();
    for (auto it = waiting_.begin(); it != waiting_.end();) {
      if (it->first <= now) {
        if (it->second->retry_first) {
          --backing_off_;
          ready_.push_front(std::move(it->second));
        } else {
          ready_.push_back(std::move(it->second));
        }
        it = waiting_.erase(it);
      } else {
        ++it;
      }
    }
  }

  // libcurl's socket callback: which connections to watch, and for what.
  static int OnSocket(CURL* easy, curl_socket_t socket, int what, void* user, void* watched) {
    auto* self = static_cast<CurlClient*>(user);
    // Which connection the transfer uses, for SendQueue (a reused connection is announced for each transfer).
    Transfer* t = nullptr;
    if (easy != nullptr && curl_easy_getinfo(easy, CURLINFO_PRIVATE, &t) == CURLE_OK && t != nullptr) {
      if (what != CURL_POLL_REMOVE) {
        t->socket = socket;
      } else if (t->socket == socket) {
        t->socket = CURL_SOCKET_BAD;
      }
    }
    if (what == CURL_POLL_REMOVE) {
      epoll_ctl(self->epoll_.get(), EPOLL_CTL_DEL, socket, nullptr);  // fails harmlessly if already closed
      return 0;
    }
    epoll_event ev{};
    ev.data.fd = socket;
    if (what & CURL_POLL_IN) ev.events |= EPOLLIN;
    if (what & CURL_POLL_OUT) ev.events |= EPOLLOUT;
    // A socket curl announces for the first time (its socketp is still null; curl forgets it on REMOVE) is added
    // and marked; one it announced before is modified. Should the mark be wrong either way, the other call is made.
    if (watched == nullptr) {
      if (epoll_ctl(self->epoll_.get(), EPOLL_CTL_ADD, socket, &ev) != 0 && errno == EEXIST) {
        epoll_ctl(self->epoll_.get(), EPOLL_CTL_MOD, socket, &ev);
      }
      curl_multi_assign(self->multi_.get(), socket, self);
    } else if (epoll_ctl(self->epoll_.get(), EPOLL_CTL_MOD, socket, &ev) != 0 && errno == ENOENT) {
      epoll_ctl(self->epoll_.get(), EPOLL_CTL_ADD, socket, &ev);
    }
    return 0;
  }

  // libcurl's timer callback: when to call it back with CURL_SOCKET_TIMEOUT (-1: never).
  static int OnTimer(CURLM*, long timeout_ms, void* user) {
    auto* self = static_cast<CurlClient*>(user);
    if (timeout_ms < 0) {
      self->timer_due_.reset();
    } else {
      self->timer_due_ = Clock::now() + std::chrono::milliseconds(timeout_ms);
    }
    return 0;
  }

  void SocketAction(curl_socket_t socket, int flags) {
    int still_running = 0;
    curl_multi_socket_action(multi_.get(), socket, flags, &still_running);
    gate_.CurlRan();
    CollectDone();
  }

  // How long epoll may sleep: until curl's timer or the next retry is due, at most a second; rounded up so that
  // a due time a fraction of a millisecond away does not spin.
  int WaitMs() const {
    const auto now = Clock::now();
    auto due = now + std::chrono::seconds(1);
    if (timer_due_) due = std::min(due, *timer_due_);
    for (const auto& [at, t] : waiting_) due = std::min(due, at);
    if (due <= now) return 0;
    return static_cast<int>(std::chrono::ceil<std::chrono::milliseconds>(due - now).count());
  }

  CurlEasy TakeEasy() {
    if (!idle_.empty()) {
      CurlEasy e = std::move(idle_.back());
      idle_.pop_back();
      curl_easy_reset(e.get());
      return e;
    }
    return CurlEasy(curl_easy_init());
  }

  std::string NowAmzDate() const {
    return AmzDate(std::chrono::system_clock::now() + clock_offset_);
  }

  // Fails the transfer before it reaches curl (a prepare step or a local file failed).
  void FailEarly(std::unique_ptr<Transfer> t, Error error) { Abandon(std::move(t), std::move(error)); }

  void Start(std::unique_ptr<Transfer> t) {
    HttpRequest& r = t->request;
    if (r.service == "cloudfront") cloudfront_endpoints_.emplace(r.endpoint);
    const auto now = Clock::now();
    if (!silence_.MayAttempt(r.endpoint, now)) return FailEarly(std::move(t), SilentError(r));
    if (!t->prepared) {
      t->prepared = true;
      if (r.prepare) {
        if (auto ok = r.prepare(r); !ok) return FailEarly(std::move(t), std::move(ok.error()));
      }
      if (r.payload_hash.empty()) {
        r.payload_hash = r.body.kind == Body::Kind::kFile ? "UNSIGNED-PAYLOAD" : Sha256Hex(r.body.bytes);
      }
      // A header value is one line of text: a CR or LF would end it and start another header (the config checks
      // its rules; this holds for every request).
      for (const auto& [name, value] : r.headers) {
        if (auto problem = HeaderValueProblem(value)) {
          return FailEarly(std::move(t), Error{ErrorCode::kInput,
                                               fmt::format("{}: header {} not sent: its value {}", r.what, name,
                                                           *problem),
                                               false, 0, {}});
        }
      }
    }
    if (r.body.kind == Body::Kind::kFile && (!r.body.file || !*r.body.file)) {
      return FailEarly(std::move(t), Error{ErrorCode::kInternal,
                                           fmt::format("{}: no open file for the body of {}", r.what,
                                                       r.body.file_path),
                                           false, 0, {}});
    }
    t->body_sent = 0;
    t->received = 0;
    t->body_error = false;
    t->cut = Cut::kNone;
    t->socket = CURL_SOCKET_BAD;
    t->response = HttpResponse{};
    t->error_buffer[0] = '\0';

    // Sign this attempt: the date (corrected by any clock offset learnt) is new each time, and so are the
    // credentials when a provider hands them out (it caches them and fetches again only near their expiry, or when
    // told to after an ExpiredToken answer).
    SignableRequest s;
    s.method = r.method;
    s.path = r.path;
    s.query = r.query;
    s.payload_hash = r.payload_hash;
    std::string authorization;
    if (r.sign) {
      if (options_.credential_provider) {
        const bool force = t->force_refresh;
        t->force_refresh = false;
        auto credentials = options_.credential_provider->Get(force);
        if (!credentials) {
          Error error = std::move(credentials.error());
          if (error.message.find(r.what) == std::string::npos) {
            error.message = fmt::format("{}: {}", r.what, error.message);
          }
          return FailEarly(std::move(t), std::move(error));
        }
        t->signed_with = std::move(*credentials);
        if (t->signed_with.access_key_id != latest_key_id_) {
          if (!latest_key_id_.empty()) earlier_key_ids_.insert(latest_key_id_);
          latest_key_id_ = t->signed_with.access_key_id;
        }
      } else {
        t->signed_with = options_.credentials;
      }
      t->signed_generation = refresh_generation_;
      const std::string amz_date = NowAmzDate();
      s.headers.emplace_back("host", HostHeader(r.endpoint));
      s.headers.emplace_back("x-amz-date", amz_date);
      if (r.service == "s3") s.headers.emplace_back("x-amz-content-sha256", r.payload_hash);
      if (!t->signed_with.session_token.empty()) {
        s.headers.emplace_back("x-amz-security-token", t->signed_with.session_token);
      }
      for (const auto& h : r.headers) s.headers.push_back(h);
      authorization = Authorization(s, r.mode, t->signed_with, amz_date,
                                    r.region.empty() ? options_.region : r.region, r.service);
    } else {
      // Unsigned (IMDS, the container endpoint, the SSO portal, AssumeRoleWithWebIdentity): only the caller's
      // headers; curl sends Host itself.
      s.headers = r.headers;
    }

    curl_slist* list = nullptr;
    for (const auto& [name, value] : s.headers) {
      if (!r.sign && Lower(name) == "host") continue;
      list = curl_slist_append(list, (name + ": " + value).c_str());
    }
    if (r.sign) list = curl_slist_append(list, ("authorization: " + authorization).c_str());
    list = curl_slist_append(list, "Expect:");  // no 100-continue round trip per upload
    const bool in_place_put = r.method == "PUT" && r.body.kind == Body::Kind::kBytes &&
                              r.body.bytes.size() <= 64 * 1024 && r.endpoint.starts_with("http://");
    if ((r.method == "POST" || in_place_put) && !HasHeader(r.headers, "content-type")) {
      list = curl_slist_append(list, "Content-Type:");  // curl would add an unsigned form type
    }
    t->header_list.reset(list);

    std::string url = r.endpoint + CanonicalUri(r.path, r.mode);
    if (!r.query.empty()) url += "?" + CanonicalQuery(r.query);

    t->tls = IsHttps(r);
    t->easy = TakeEasy();
    CURL* e = t->easy.get();
    curl_easy_setopt(e, CURLOPT_URL, url.c_str());
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, t->header_list.get());
    curl_easy_setopt(e, CURLOPT_PRIVATE, t.get());
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, &OnWrite);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, t.get());
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, &OnHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, t.get());
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, t->error_buffer);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(options_.connect_timeout.count()));
    // No CURLOPT_LOW_SPEED_*: it judges an upload by its speed and would cut a slow one that keeps moving. The
    // idle rule (Watch) cuts an attempt only when nothing moves at all.
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_1_1);
    // 64 transfers in flight each hold curl's upload buffer (64 KiB by default): 16 KiB keeps the memory of a
    // full loop small, and the kernel's socket buffer is what keeps a fast link busy anyway.
    curl_easy_setopt(e, CURLOPT_UPLOAD_BUFFERSIZE, 16L * 1024);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    // TLS sessions are kept in one cache for every handle (libcurl 7.88 keeps them per easy handle otherwise):
    // a new connection to an endpoint resumes a session any earlier one made instead of a full handshake.
    if (share_) curl_easy_setopt(e, CURLOPT_SHARE, share_.get());
    if (openssl_) {
      curl_easy_setopt(e, CURLOPT_SSL_CTX_FUNCTION, &OnSslCtx);
      curl_easy_setopt(e, CURLOPT_SSL_CTX_DATA, &gate_);
      if (t->tls) {
        curl_easy_setopt(e, CURLOPT_OPENSOCKETFUNCTION, &OnOpenTlsSocket);
        curl_easy_setopt(e, CURLOPT_OPENSOCKETDATA, &gate_);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETFUNCTION, &OnCloseTlsSocket);
        curl_easy_setopt(e, CURLOPT_CLOSESOCKETDATA, &gate_);
      }
    }
    // The receive buffer is held by every handle (curl's default is 16 KiB). An answer to a PUT or a HEAD is a few
    // hundred bytes of headers (an error adds a few hundred of XML): 1 KiB, curl's minimum, holds it in one read,
    // and saves 0.75 MiB at 256 in flight. Other answers but listings get 4 KiB.
    if (r.method == "PUT" || r.method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 1024L);
    } else if (!(r.method == "GET" && r.body.size() == 0 && HasQuery(r, "list-type"))) {
      curl_easy_setopt(e, CURLOPT_BUFFERSIZE, 4L * 1024);
    }
    // Server logs name the client (RGW, S3 access logs, CloudTrail's userAgent).
    curl_easy_setopt(e, CURLOPT_USERAGENT, options_.user_agent.c_str());
    // TLS: the CA bundle replaces the system's CAs (as AWS_CA_BUNDLE does for the AWS CLI). Proxies are left to
    // curl, which reads HTTPS_PROXY, HTTP_PROXY, ALL_PROXY and NO_PROXY from the environment itself: no
    // CURLOPT_PROXY or CURLOPT_NOPROXY is set here, since either would override them.
    if (!options_.ca_bundle.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, options_.ca_bundle.c_str());
    if (one_ca_file_) curl_easy_setopt(e, CURLOPT_CAPATH, nullptr);
    if (!options_.verify_tls) {
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
      curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
    }
    const auto body_size = static_cast<curl_off_t>(r.body.size());
    // Over plain HTTP, a PUT body in memory up to 64 KiB (libcurl 7.88's MAX_INITIAL_POST_SIZE) is handed to curl
    // in place, as POSTFIELDS under a PUT: curl sends it in the same write as the headers, with no read callback and
    // no upload buffer (16 KiB) held by the transfer; rewinds for a retry need nothing either. Over HTTPS curl
    // copies such a body into its upload buffer and keeps a second copy with the headers, so the read callback
    // is cheaper there.
    const bool in_place = in_place_put;
    t->in_place = in_place;
    if (r.method == "GET") {
      curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (r.method == "HEAD") {
      curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (r.method == "PUT" && in_place) {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, "PUT");
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, body_size);
      curl_easy_setopt(e, CURLOPT_POSTFIELDS, r.body.bytes.data());
    } else if (r.method == "PUT") {
      curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
      curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, body_size);
    } else if (r.method == "POST") {
      curl_easy_setopt(e, CURLOPT_POST, 1L);
      curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, body_size);
    } else {
      curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r.method.c_str());
    }
    if ((r.method == "PUT" && !in_place) || r.method == "POST") {
      curl_easy_setopt(e, CURLOPT_READFUNCTION, &OnRead);
      curl_easy_setopt(e, CURLOPT_READDATA, t.get());
      curl_easy_setopt(e, CURLOPT_SEEKFUNCTION, &OnSeek);
      curl_easy_setopt(e, CURLOPT_SEEKDATA, t.get());
    }
    t->started = now;
    t->window_ticket = window_.Started();
    if (t->attempt == 0) t->ok_before = ok_answers_;
    t->retry_first = false;
    t->idle = IdleTimer(now, options_.idle_timeout);
    silence_.Attempt(r.endpoint, !t->begun, now);
    t->begun = true;
    ++stats_.requests_by_method[r.method];
    if (t->tls && openssl_) gate_.Started(RunningTls());
    curl_multi_add_handle(multi_.get(), e);
    running_.push_back(t.release());
  }

  static bool HasHeader(const HeaderList& headers, std::string_view name) {
    return std::any_of(headers.begin(), headers.end(), [&](const auto& h) { return Lower(h.first) == name; });
  }

  void CollectDone() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_.get(), &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      Transfer* raw = nullptr;
      curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &raw);
      const CURLcode code = msg->data.result;
      curl_multi_remove_handle(multi_.get(), msg->easy_handle);
      running_.erase(std::find(running_.begin(), running_.end(), raw));
      std::unique_ptr<Transfer> t(raw);
      Finish(std::move(t), code);
    }
  }

  std::chrono::milliseconds Backoff(int attempt, std::string_view service_code) {
    // Full jitter (AWS Architecture Blog, "Exponential Backoff And Jitter"); SlowDown asks for more room.
    long long cap = options_.base_backoff.count() << std::min(attempt, 20);
    if (service_code == "SlowDown" || service_code == "Throttling") cap *= 2;
    cap = std::min<long long>(cap, options_.max_backoff.count());
    std::uniform_int_distribution<long long> pick(cap / 4, std::max<long long>(cap, 1));
    return std::chrono::milliseconds(pick(rng_));
  }

  void Finish(std::unique_ptr<Transfer> t, CURLcode code) {
    HttpRequest& r = t->request;
    ++t->attempt;
    long status = 0;
    curl_easy_getinfo(t->easy.get(), CURLINFO_RESPONSE_CODE, &status);
    t->response.status = status;
    const auto elapsed_ms =
        std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - t->started).count();
    curl_easy_setopt(t->easy.get(), CURLOPT_PRIVATE, nullptr);  // detached: no callback may reach `t` through it
    idle_.push_back(std::move(t->easy));
    if (t->received > 0) silence_.Answered(r.endpoint);

    Error error;
    bool retry_now = false;
    if (t->cut == Cut::kSilent) {
      Trace("{} -> given up after {} ms (attempt {}): the endpoint never answered", r.what, elapsed_ms, t->attempt);
      return Abandon(std::move(t), SilentError(r));
    }
    if (t->cut == Cut::kIdle) {
      const auto limit = std::chrono::duration_cast<std::chrono::seconds>(options_.idle_timeout).count();
      const std::string detail =
          t->received > 0                ? fmt::format("the answer from {} stalled: no byte for {} s", r.endpoint, limit)
          : t->body_sent < r.body.size() ? fmt::format("the upload to {} stalled: no byte moved for {} s", r.endpoint,
                                                       limit)
                                         : fmt::format("no answer from {} for {} s after the request was sent",
                                                       r.endpoint, limit);
      error = Error{ErrorCode::kNetwork, fmt::format("{}: {}", r.what, detail), true, 0, {}};
      Trace("{} -> cut after {} ms (attempt {}): {}", r.what, elapsed_ms, t->attempt, detail);
    } else if (code != CURLE_OK) {
      if (t->body_error) {
        error = Error{ErrorCode::kIo,
                      fmt::format("{}: reading {} failed: {}", r.what, r.body.file_path, t->body_error_message),
                      false, 0, {}};
      } else if (IsCertificateCurlCode(code)) {
        // Not retried: the same certificate would fail the same way. A config error (exit 2): the first request
        // to an endpoint fails in the TLS handshake, before anything reached the server, and the fix is a setting.
        std::string detail = t->error_buffer[0] != '\0' ? t->error_buffer : curl_easy_strerror(code);
        std::string fix =
            code == CURLE_SSL_CACERT_BADFILE && !options_.ca_bundle.empty()
                ? fmt::format("the CA bundle {} could not be read as PEM certificates: give a PEM file of the CA "
                              "that signed the server's certificate (--ca-bundle FILE, ca_bundle, AWS_CA_BUNDLE)",
                              options_.ca_bundle)
                : "pass --ca-bundle FILE or set AWS_CA_BUNDLE to the CA that signed the server's certificate";
        error = Error{ErrorCode::kConfig,
                      fmt::format("{}: TLS certificate verification of {} failed: {}; {}", r.what, r.endpoint,
                                  detail, fix),
                      false, 0, {}};
      } else {
        std::string detail = t->error_buffer[0] != '\0' ? t->error_buffer : curl_easy_strerror(code);
        error = Error{ErrorCode::kNetwork, fmt::format("{}: {} ({})", r.what, detail, r.endpoint),
                      IsRetryableCurlCode(code), 0, {}};
      }
      Trace("{} -> {} after {} ms (attempt {})", r.what, curl_easy_strerror(code), elapsed_ms, t->attempt);
    } else if (status >= 200 && status < 300) {
      Trace("{} -> {} in {} ms (attempt {})", r.what, status, elapsed_ms, t->attempt);
      ObserveWindow(*t, AttemptAnswer::kOk);
      ++ok_answers_;
      silence_.Done(r.endpoint);
      Callback done = std::move(t->done);
      done(std::move(t->response));
      return;
    } else {
      auto [service_code, message] = ParseErrorBody(t->response.body);
      Trace("{} -> {} {} in {} ms (attempt {})", r.what, status, service_code, elapsed_ms, t->attempt);
      error.http_status = static_cast<int>(status);
      error.service_code = service_code;
      if (r.service == "s3") error.bucket_region = BucketRegionOf(t->response);
      std::string what = fmt::format("{} {}", status, service_code.empty() ? "error" : service_code);
      if (!message.empty()) what += ": " + message;
      // A wrong region is answered with a redirect or a 400 that only name the right one in a header or element.
      const std::string& signed_region = r.region.empty() ? options_.region : r.region;
      if ((status / 100 == 3 || status == 400) && !error.bucket_region.empty() &&
          error.bucket_region != signed_region) {
        what += fmt::format(" (the bucket is in region {}, not {})", error.bucket_region, signed_region);
      }
      if (service_code == "RequestTimeTooSkewed" && CorrectClock(t->response)) {
        error.code = ErrorCode::kHttp;
        error.message = fmt::format("{}: {}; the local clock is off, correct it (e.g. with NTP)", r.what, what);
        error.retryable = true;
        retry_now = true;
      } else if (status >= 500 || status == 429 || IsRetryableServiceCode(service_code) ||
                 IsThrottlingAnswer(status, service_code)) {
        error.code = ErrorCode::kHttp;
        error.message = fmt::format("{}: {}", r.what, what);
        error.retryable = true;
      } else if (IsExpiredTokenAnswer(status, service_code, message)) {
        const Credentials& c = t->signed_with;
        if (options_.credential_provider && !t->refreshed) {
          // One refresh and an immediate retry, not counted as an attempt (the AWS SDKs do the same): a request
          // signed before another one's refresh takes what that refresh brought instead of fetching again.
          t->refreshed = true;
          t->force_refresh = t->signed_generation == refresh_generation_;
          if (t->force_refresh) ++refresh_generation_;  // answers collected with this one take its refresh
          ++t->free_attempts;
          ++stats_.retries;
          Trace("{} -> {} {}: credentials from {} {}, retrying", r.what, status, service_code, c.source,
                t->force_refresh ? "fetched again" : "already fetched again by another request");
          waiting_.emplace_back(Clock::now(), std::move(t));
          return;
        }
        error.code = ErrorCode::kCredentials;
        while (what.ends_with('.')) what.pop_back();
        error.message =
            options_.credential_provider
                ? fmt::format("{}: {}. The credentials from {} (access key ID {}) were fetched again and the server "
                              "still says they have expired: {} hands out expired credentials; check the local "
                              "clock and that source",
                              r.what, what, c.source, ShortKeyId(c.access_key_id), c.source)
                : fmt::format("{}: {}. The session token from {} (access key ID {}) has expired: get fresh "
                              "temporary credentials (aws sso login, or a new aws sts assume-role) and give them "
                              "again",
                              r.what, what, c.source, ShortKeyId(c.access_key_id));
      } else if (IsAccessDeniedCode(service_code)) {
        // The signature was accepted (a bad one gives SignatureDoesNotMatch or InvalidAccessKeyId): the key is
        // fine, and a policy (IAM, the bucket's, an SCP or a KMS key's) does not allow the action.
        const Credentials& c = t->signed_with;
        error.code = ErrorCode::kCredentials;
        while (what.ends_with('.')) what.pop_back();
        const std::string action = IamAction(r);
        error.message = fmt::format(
            "{}: {}. The signature was accepted, but IAM or the bucket policy refuses {} to the credentials from {} "
            "(access key ID {}): allow {} in the identity's IAM policy (and in the bucket policy, if it restricts "
            "access)",
            r.what, what, action.empty() ? std::string("this request") : action, c.source,
            ShortKeyId(c.access_key_id), action.empty() ? std::string("the action") : action);
      } else if (IsCredentialCode(service_code) || status == 401) {
        const Credentials& c = t->signed_with;
        error.code = ErrorCode::kCredentials;
        while (what.ends_with('.')) what.pop_back();  // the server's message ends with one already
        error.message = fmt::format(
            "{}: {}. The server refused the credentials from {} (access key ID {}): check the secret key, the "
            "session token and the key's permissions",
            r.what, what, c.source, ShortKeyId(c.access_key_id));
      } else if (status == 404) {
        error.code = ErrorCode::kNotFound;
        error.message = fmt::format("{}: {}", r.what, what);
      } else {
        error.code = ErrorCode::kHttp;
        error.message = fmt::format("{}: {}", r.what, what);
      }
    }

    // An answer asking to slow down while the server kept accepting other requests (since this request's first
    // attempt, at least as many others got a 2xx as this one got such answers): the server is busy, not broken
    // (nor is only this request refused), and the request is retried on a budget of its own
    // (max_throttled_attempts), not counted against max_attempts, so that a long throttled run fails nothing. When
    // adaptive, the window was just halved (or will be, once per round trip) and that is the backoff: the request
    // goes first in line at once, unless the window is at its floor or the request was throttled before (then it
    // waits, below). When fixed, exponential backoff with full jitter. A server that throttles everything (an
    // outage) is retried like any 5xx.
    const bool throttled = error.retryable && error.http_status != 0 &&
                           IsThrottlingAnswer(error.http_status, error.service_code);
    ObserveWindow(*t, throttled ? AttemptAnswer::kThrottled : AttemptAnswer::kOther);
    if (throttled) ++stats_.throttled;
    if (throttled && ok_answers_ - t->ok_before > static_cast<std::uint64_t>(t->throttled)) {
      if (++t->throttled <= options_.max_throttled_attempts) {
        ++t->free_attempts;
        ++stats_.retries;
        if (window_.Adaptive() && !window_.AtFloor() && t->throttled == 1) {
          ready_.push_front(std::move(t));
          return;
        }
        std::chrono::milliseconds delay;
        if (window_.Adaptive()) {
          // At the floor, or this request was throttled again after the window shrank: the window alone does not
          // slow the client enough (a server admitting fewer requests a second than the floor sends, at its
          // latency), so this request waits, a quarter of base_backoff doubling with each such answer, at most a
          // second, full jitter, keeping its slot (Occupied); then it goes first in line.
          const long long cap = std::min<long long>(
              1000, std::max<long long>(options_.base_backoff.count() / 4, 1) << std::min(t->throttled - 1, 10));
          std::uniform_int_distribution<long long> pick(0, cap);
          delay = std::chrono::milliseconds(pick(rng_));
          t->retry_first = true;
          ++backing_off_;
        } else {
          delay = Backoff(t->throttled - 1, error.service_code);
        }
        waiting_.emplace_back(Clock::now() + delay, std::move(t));
        return;
      }
      error.message = fmt::format("{} (gave up after {} attempts, {} of them answered by a request to slow down "
                                  "while the server accepted others)",
                                  error.message, t->attempt, t->throttled);
      return Abandon(std::move(t), std::move(error));
    }
    if (error.retryable && t->attempt < options_.max_attempts + t->free_attempts) {
      ++stats_.retries;
      const auto delay = retry_now ? std::chrono::milliseconds(0) : Backoff(t->attempt - 1, error.service_code);
      waiting_.emplace_back(Clock::now() + delay, std::move(t));
      return;
    }
    if (error.retryable) {
      error.message = fmt::format("{} (gave up after {} attempts)", error.message, t->attempt);
    }
    Abandon(std::move(t), std::move(error));
  }

  // Tells the window how an attempt ended, and traces the change it made (-v).
  void ObserveWindow(const Transfer& t, AttemptAnswer answer) {
    const WindowChange change = window_.Done(t.started, Clock::now(), t.window_ticket, answer,
                                             t.body_sent + t.received, !ready_.empty());
    if (change.to != change.from) {
      Trace("in flight {} -> {}: {}", change.from, change.to, change.reason);
    }
  }

  // S3 answers RequestTimeTooSkewed when x-amz-date is more than 15 minutes off its clock; its Date header
  // says what time it thinks it is, and signing with that offset makes the retry pass.
  bool CorrectClock(const HttpResponse& response) {
    std::string date = response.Header("date");
    if (date.empty()) return false;
    time_t server = curl_getdate(date.c_str(), nullptr);
    if (server <= 0) return false;
    auto now = std::chrono::system_clock::now();
    clock_offset_ = std::chrono::duration_cast<std::chrono::seconds>(
        std::chrono::system_clock::from_time_t(server) - now);
    ++stats_.clock_corrections;
    Trace("clock corrected by {} s from the server's Date header", clock_offset_.count());
    return true;
  }

  // Formats only when tracing is on: this runs once per request.
  template <class... Args>
  void Trace(fmt::format_string<Args...> format, Args&&... args) {
    if (options_.trace) options_.trace(fmt::format(format, std::forward<Args>(args)...));
  }

  ClientOptions options_;
  // Declared before the multi and the easy handles, so that it goes after them (a share in use cannot go).
  CurlShare share_;
  const bool openssl_ = OpenSslUnderCurl();
  // Before the multi handle too: its connections report to the gate until they are closed, when it goes.
  HandshakeGate gate_;
  const bool one_ca_file_ = TrustOneCaFile(options_.ca_bundle);
  CurlMulti multi_;
  UniqueFd epoll_;
  std::optional<Clock::time_point> timer_due_;  ///< libcurl's timer, when it has one.
  std::mt19937_64 rng_;
  SilenceRule silence_;
  InFlightController window_;  ///< How many transfers may run at once.
  std::uint64_t ok_answers_ = 0;  ///< 2xx answers so far.
  std::size_t backing_off_ = 0;   ///< Entries of waiting_ with retry_first: throttled, keeping their slots.
  Clock::time_point last_watch_{};
  std::set<std::string, std::less<>> cloudfront_endpoints_;  ///< For messages: which option names an endpoint.
  std::deque<std::unique_ptr<Transfer>> ready_;
  std::vector<std::pair<Clock::time_point, std::unique_ptr<Transfer>>> waiting_;
  std::vector<Transfer*> running_;  // owned; released to curl while in flight
  std::vector<CurlEasy> idle_;
  std::chrono::seconds clock_offset_{0};
  ClientStats stats_;
  // Credentials from the provider: how many forced refreshes were asked for (a request signed before the latest
  // one is retried with what that refresh brought, without another fetch), and the access key IDs seen, so that
  // messages never carry one in full (a refresh may bring a new one).
  std::uint64_t refresh_generation_ = 0;
  std::string latest_key_id_;
  std::set<std::string, std::less<>> earlier_key_ids_;
};

}  // namespace

std::optional<std::string> HeaderValueProblem(std::string_view value) {
  for (std::size_t i = 0; i < value.size(); ++i) {
    const auto c = static_cast<unsigned char>(value[i]);
    if (c >= 0x20 && c != 0x7F) continue;
    if (c == '\t') continue;
    const char* name = c == '\r'   ? "a carriage return (CR)"
                       : c == '\n' ? "a line feed (LF)"
                       : c == 0    ? "a NUL byte"
                       : c == 0x7F ? "a DEL character (0x7F)"
                                   : nullptr;
    return fmt::format("contains {} at byte {}: a header value must be one line of printable text",
                       name != nullptr ? std::string(name) : fmt::format("the control character 0x{:02X}", c), i + 1);
  }
  return std::nullopt;
}

std::string IamAction(const HttpRequest& r) {
  const auto has_header = [&](std::string_view name) {
    return std::any_of(r.headers.begin(), r.headers.end(), [&](const auto& h) { return Lower(h.first) == name; });
  };
  const auto header = [&](std::string_view name) {
    for (const auto& [n, v] : r.headers) {
      if (Lower(n) == name) return v;
    }
    return std::string();
  };
  if (r.service == "s3") {
    // The actions of the S3 API reference's "Permissions" sections, chosen by the subresource in the query.
    if (HasQuery(r, "list-type")) return "s3:ListBucket";
    if (HasQuery(r, "location")) return "s3:GetBucketLocation";
    if (HasQuery(r, "delete")) return "s3:DeleteObject";  // DeleteObjects checks s3:DeleteObject per key
    if (HasQuery(r, "uploads")) return r.method == "GET" ? "s3:ListBucketMultipartUploads" : "s3:PutObject";
    if (HasQuery(r, "uploadId")) {
      if (r.method == "DELETE") return "s3:AbortMultipartUpload";
      if (r.method == "GET") return "s3:ListMultipartUploadParts";
      return "s3:PutObject";  // UploadPart, CompleteMultipartUpload
    }
    if (HasQuery(r, "tagging")) return r.method == "GET" ? "s3:GetObjectTagging" : "s3:PutObjectTagging";
    if (HasQuery(r, "acl")) return r.method == "GET" ? "s3:GetObjectAcl" : "s3:PutObjectAcl";
    if (r.method == "PUT") {
      std::string action = "s3:PutObject";
      if (has_header("x-amz-copy-source")) action += " (and s3:GetObject on the copy source)";
      if (has_header("x-amz-acl")) action += " (and s3:PutObjectAcl, for the acl)";
      if (header("x-amz-server-side-encryption").starts_with("aws:kms")) {
        action += " (and kms:GenerateDataKey on the KMS key)";
      }
      return action;
    }
    if (r.method == "GET" && r.path == "/") return "s3:ListBucket";  // ListObjects (v1), virtual-hosted
    if (r.method == "GET" || r.method == "HEAD") return "s3:GetObject";
    if (r.method == "DELETE") return "s3:DeleteObject";
    return {};
  }
  if (r.service == "cloudfront") {
    // CloudFront's REST paths: /2020-05-31/distribution[/ID[/config|/invalidation[/ID]]].
    const std::string_view path = r.path;
    if (const auto at = path.find("/invalidation"); at != std::string_view::npos) {
      if (r.method == "POST") return "cloudfront:CreateInvalidation";
      return path.size() == at + std::string_view("/invalidation").size() ? "cloudfront:ListInvalidations"
                                                                          : "cloudfront:GetInvalidation";
    }
    if (path.ends_with("/config")) return "cloudfront:GetDistributionConfig";
    if (path.ends_with("/distribution")) return "cloudfront:ListDistributions";
    if (path.find("/distribution/") != std::string_view::npos) return "cloudfront:GetDistribution";
    return {};
  }
  // Query protocols (STS): the Action parameter, in the query or the form-encoded body.
  for (const auto& [name, value] : r.query) {
    if (name == "Action") return r.service + ":" + value;
  }
  if (r.body.kind == Body::Kind::kBytes) {
    std::string_view body = r.body.bytes;
    for (std::size_t at = 0; at < body.size();) {
      std::size_t end = body.find('&', at);
      if (end == std::string_view::npos) end = body.size();
      const std::string_view pair = body.substr(at, end - at);
      if (pair.starts_with("Action=")) return r.service + ":" + std::string(pair.substr(7));
      at = end + 1;
    }
  }
  return {};
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return v;
  }
  return {};
}

Result<HttpResponse> HttpClient::Send(HttpRequest request) {
  std::optional<Result<HttpResponse>> out;
  Submit(std::move(request), [&out](Result<HttpResponse> r) { out = std::move(r); });
  Run();
  if (!out) return Fail(ErrorCode::kInternal, "request did not complete");
  return std::move(*out);
}

Result<std::unique_ptr<HttpClient>> HttpClient::Create(ClientOptions options) {
  CurlMulti multi(curl_multi_init());
  if (!multi) return Fail(ErrorCode::kInternal, "curl_multi_init failed");
  options.max_in_flight = std::max(1, options.max_in_flight);
  options.max_attempts = std::max(1, options.max_attempts);
  options.max_throttled_attempts = std::max(0, options.max_throttled_attempts);
  options.in_flight_min = std::max(1, options.in_flight_min);
  options.in_flight_max = std::max(options.in_flight_min, options.in_flight_max);
  // Keep a connection per transfer in flight alive between requests so that they are reused (as many as the
  // adaptive window may grow to).
  const long connections = options.adaptive_in_flight ? options.in_flight_max : options.max_in_flight;
  curl_multi_setopt(multi.get(), CURLMOPT_MAXCONNECTS, connections);
  curl_multi_setopt(multi.get(), CURLMOPT_MAX_HOST_CONNECTIONS, connections);
  UniqueFd epoll(epoll_create1(EPOLL_CLOEXEC));
  if (!epoll) return Fail(ErrorCode::kInternal, fmt::format("epoll_create1 failed: {}", std::strerror(errno)));
  // One loop thread uses it: no lock functions. Without it (not built), each handle keeps its own sessions.
  CurlShare share(curl_share_init());
  if (share && curl_share_setopt(share.get(), CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK) {
    share.reset();
  }
  return std::unique_ptr<HttpClient>(
      new CurlClient(std::move(options), std::move(share), std::move(multi), std::move(epoll)));
}

void GlobalInit() {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  xmlInitParser();
}

}  // namespace sitesync::aws
