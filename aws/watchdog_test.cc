#include "aws/watchdog.h"

#include <gtest/gtest.h>

namespace sitesync::aws {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const WatchClock::time_point kT0{};  // the fake clock's start; every time below is kT0 + something

TEST(IdleTimer, ExpiresWhenNothingMovesForTheLimit) {
  IdleTimer timer(kT0, seconds(15));
  EXPECT_FALSE(timer.Expired(kT0 + milliseconds(14999)));
  EXPECT_TRUE(timer.Expired(kT0 + seconds(15)));
}

TEST(IdleTimer, AnyMovementRestartsIt) {
  IdleTimer timer(kT0, seconds(15));
  // A slow upload: a few bytes every 10 s for two minutes, never cut.
  TransferProgress p;
  for (int i = 1; i <= 12; ++i) {
    p.body_sent += 1000;
    timer.Observe(p, kT0 + seconds(10 * i));
    EXPECT_FALSE(timer.Expired(kT0 + seconds(10 * i + 14))) << "at " << 10 * i + 14 << " s";
  }
  // The whole body is with the kernel; the peer acknowledges it slowly: the send queue drains, and that is
  // movement too.
  p.send_queue = 900'000;
  timer.Observe(p, kT0 + seconds(121));
  p.send_queue = 10;
  timer.Observe(p, kT0 + seconds(135));
  EXPECT_FALSE(timer.Expired(kT0 + seconds(149)));
  // The body is acknowledged; then no response byte for 15 s.
  p.send_queue = 0;
  timer.Observe(p, kT0 + seconds(140));
  timer.Observe(p, kT0 + seconds(150));  // the same sample: nothing moved
  EXPECT_FALSE(timer.Expired(kT0 + seconds(154)));
  EXPECT_TRUE(timer.Expired(kT0 + seconds(155)));
}

TEST(IdleTimer, ResponseBytesCount) {
  IdleTimer timer(kT0, seconds(15));
  TransferProgress p;
  p.received = 1;
  timer.Observe(p, kT0 + seconds(14));
  EXPECT_FALSE(timer.Expired(kT0 + seconds(28)));
  EXPECT_TRUE(timer.Expired(kT0 + seconds(29)));
  EXPECT_EQ(timer.Last().received, 1u);
}

TEST(SilenceRule, GivesUpOnAnEndpointThatNeverAnswered) {
  SilenceRule rule(seconds(50));
  const std::string e = "http://127.0.0.1:9";
  ASSERT_TRUE(rule.MayAttempt(e, kT0));
  rule.Attempt(e, true, kT0);
  rule.Attempt(e, true, kT0);  // a second request in flight
  EXPECT_TRUE(rule.Check(kT0 + seconds(15)).empty());
  rule.Attempt(e, false, kT0 + seconds(15));  // retries after the idle cut
  rule.Attempt(e, false, kT0 + seconds(16));
  EXPECT_TRUE(rule.Check(kT0 + milliseconds(49999)).empty());
  EXPECT_EQ(rule.Check(kT0 + seconds(50)), std::vector<std::string>{e});
  EXPECT_TRUE(rule.Check(kT0 + seconds(51)).empty()) << "given up once, reported once";
  EXPECT_EQ(rule.Message(e, "--endpoint"),
            "no answer from http://127.0.0.1:9 in 50 s (4 attempts): check --endpoint and the network");
  // While given up, nothing more is tried: requests fail at once.
  EXPECT_FALSE(rule.MayAttempt(e, kT0 + seconds(60)));
  rule.Done(e);
  rule.Done(e);
  EXPECT_FALSE(rule.MayAttempt(e, kT0 + seconds(99)));
  // After the hold-off the endpoint gets a fresh chance (a watch's later batch, a server that came up).
  EXPECT_TRUE(rule.MayAttempt(e, kT0 + seconds(100)));
  rule.Attempt(e, true, kT0 + seconds(100));
  EXPECT_TRUE(rule.Check(kT0 + seconds(149)).empty());
  EXPECT_EQ(rule.Check(kT0 + seconds(150)).size(), 1u);
  EXPECT_EQ(rule.Message(e, "--cloudfront-endpoint"),
            "no answer from http://127.0.0.1:9 in 50 s (1 attempt): check --cloudfront-endpoint and the network");
}

TEST(SilenceRule, AnEndpointThatAnsweredIsNeverGivenUp) {
  SilenceRule rule(seconds(50));
  const std::string e = "https://s3.us-east-1.amazonaws.com";
  rule.Attempt(e, true, kT0);
  rule.Answered(e);
  rule.Attempt(e, true, kT0 + seconds(1));  // a long, slow upload: no answer byte for minutes
  EXPECT_TRUE(rule.Check(kT0 + seconds(600)).empty());
  EXPECT_TRUE(rule.MayAttempt(e, kT0 + seconds(600)));
}

TEST(SilenceRule, EndpointsAreJudgedApart) {
  SilenceRule rule(seconds(50));
  rule.Attempt("http://s3", true, kT0);
  rule.Attempt("http://cloudfront", true, kT0 + seconds(30));
  rule.Answered("http://s3");
  EXPECT_TRUE(rule.Check(kT0 + seconds(79)).empty());
  EXPECT_EQ(rule.Check(kT0 + seconds(80)), std::vector<std::string>{"http://cloudfront"});
  EXPECT_TRUE(rule.MayAttempt("http://s3", kT0 + seconds(80)));
  EXPECT_FALSE(rule.MayAttempt("http://cloudfront", kT0 + seconds(80)));
}

TEST(SilenceRule, TimeWithNothingOutstandingIsNotSilence) {
  SilenceRule rule(seconds(50));
  const std::string e = "http://127.0.0.1:9";
  rule.Attempt(e, true, kT0);
  rule.Done(e);  // failed fast (connection refused), nothing else to do
  // A watch waits for the next edit: an hour without requests.
  EXPECT_TRUE(rule.Check(kT0 + seconds(3600)).empty());
  rule.Attempt(e, true, kT0 + seconds(3600));
  EXPECT_TRUE(rule.Check(kT0 + seconds(3649)).empty()) << "the stretch starts with the next request";
  EXPECT_EQ(rule.Check(kT0 + seconds(3650)).size(), 1u);
  EXPECT_EQ(rule.Message(e, "--endpoint"),
            "no answer from http://127.0.0.1:9 in 50 s (1 attempt): check --endpoint and the network");
}

}  // namespace
}  // namespace sitesync::aws
