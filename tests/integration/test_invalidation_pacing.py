"""Integration tests of issue 14 point 7's last parts: `watch.invalidate_interval_s` (the owed paths of several
watch batches gathered into one CreateInvalidation at most every N seconds, and at exit; kept in the journal
meanwhile, so a `kill -9` loses nothing) and plan's cost line (this month's invalidation paths of the
distribution, read with ListInvalidations / GetInvalidation, plus the plan's, against the 1,000 free ones).

Real binary against moto_server with SigV4 checking on (harness.py; moto_server_fixed.py makes the signed
CloudFront GETs verify). The invalidations are read back with boto3 (list_invalidations / get_invalidation); the
expected path sets come from test_cdn.expected_paths (CLI.md "Invalidation paths"), never from sitesync.

    SITESYNC_BIN=$PWD/build/cli/sitesync python3 -m unittest -v tests/integration/test_invalidation_pacing.py
"""

from __future__ import annotations

import os
import signal
import sys
import time
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import harness  # noqa: E402
from test_cdn import CdnCase, events_of, expected_paths, needs_sitesync  # noqa: E402
from test_watch import WatchCase, needs_watch, write  # noqa: E402

SITE = {"index.html": "<p>home</p>", "a/index.html": "<p>a</p>", "b.html": "<p>b</p>", "c.css": "c{}"}


def summaries(events):
    return [e for e in events if e.get("event") == "summary"]


@needs_watch
class PacingTest(WatchCase):
    def config(self, text):
        path = os.path.join(self.tmp, "sitesync.yaml")
        with open(path, "w", encoding="utf-8") as f:
            f.write(text)
        return path

    def burst(self, w, rel, body):
        """Writes one file and waits for the batch that uploads it; returns that batch's summary."""
        mark = w.mark()
        write(os.path.join(self.src, rel), body)
        idx, _t = w.wait_keys("upload", [rel], mark)
        return w.since(idx, idx + 1)[0]

    def test_interval_gathers_three_bursts_into_one_invalidation_and_the_rest_goes_at_exit(self):
        src = self.site(SITE)
        cfg = self.config("watch:\n  invalidate_interval_s: 3\n")
        w = self.start_watch(src, "--config", cfg, "--debounce", "200")
        self.assertEqual(self.invs0, 1, "the initial sync (batch 0) invalidates at once, as a sync does")
        # Three bursts 1 s apart, each its own batch: none of them invalidates.
        t0 = time.monotonic()
        burst_keys = ["b.html", "a/index.html", "new/index.html"]
        for i, key in enumerate(burst_keys):
            delay = t0 + i - time.monotonic()
            if delay > 0:
                time.sleep(delay)  # the bursts' spacing is the stimulus, not a wait for sitesync
            s = self.burst(w, key, f"<p>burst {i}</p>".encode())
            self.assertEqual(s["invalidation_paths"], 0, f"batch of {key} defers its invalidation: {s}")
            self.assertEqual(s["uploaded"], 1, s)
        self.assertEqual(self.new_invs(), [], "nothing submitted inside the interval")
        self.assertIn("gathered", w.stderr_text(), "a human line says the paths are gathered")
        # The interval ends with no new event: the loop wakes and submits the union, once.
        mark = w.mark()
        _i, t_sub, flush = w.wait_for(lambda e: e.get("event") == "summary" and e.get("invalidation_paths", 0) > 0,
                                      mark, timeout=15, what="the gathered invalidation")
        self.assertGreaterEqual(t_sub - t0, 2.9, "not before the interval")
        want = expected_paths(burst_keys)
        new = self.new_invs()
        self.assertEqual(len(new), 1, new)
        self.assertEqual(set(new[0]["Paths"]), want)
        self.assertEqual(flush["invalidation_paths"], len(new[0]["Paths"]))
        self.assertEqual((flush["uploaded"], flush["failed"]), (0, 0), flush)
        inv_events = events_of(w.since(mark), "invalidate")
        self.assertEqual([e.get("id") for e in inv_events], [new[0]["Id"]])
        self.assertEqual(self.proxy.count("CreateInvalidation", "POST"), 1, self.proxy.counts())
        # A last burst, then SIGINT inside its interval: what it owes is submitted at exit.
        s = self.burst(w, "c.css", b"c{color:red}")
        self.assertEqual(s["invalidation_paths"], 0, s)
        self.assertEqual(len(self.new_invs()), 1)
        w.signal(signal.SIGINT)
        w.proc.wait(timeout=20)
        self.assertEqual(w.proc.returncode, 0, w.describe())
        new = self.new_invs()
        self.assertEqual(len(new), 2, new)
        self.assertEqual(set(new[1]["Paths"]), expected_paths(["c.css"]))
        self.assertEqual(self.journal_paths()[0], [], "nothing stays owed")

    def test_interval_zero_is_one_invalidation_per_batch(self):
        src = self.site(SITE)
        cfg = self.config("watch:\n  invalidate_interval_s: 0\n")
        w = self.start_watch(src, "--config", cfg, "--debounce", "200")
        for i, key in enumerate(["b.html", "a/index.html", "c.css"]):
            before = len(self.invs())
            s = self.burst(w, key, f"<p>v{i}</p>".encode())
            new = self.invs()[before:]
            self.assertEqual(len(new), 1, new)
            self.assertEqual(set(new[0]["Paths"]), expected_paths([key]))
            self.assertEqual(s["invalidation_paths"], len(new[0]["Paths"]))
        self.assertEqual(self.proxy.count("CreateInvalidation", "POST"), 3, self.proxy.counts())
        self.assertAlive()

    def test_a_failed_gathered_submission_stays_owed_and_is_tried_again(self):
        src = self.site(SITE)
        cfg = self.config("watch:\n  invalidate_interval_s: 1\n")
        w = self.start_watch(src, "--config", cfg, "--debounce", "200")
        # Every attempt of the first gathered CreateInvalidation fails (5 attempts per request).
        self.proxy.inject(status=503, op="CreateInvalidation", count=5)
        s = self.burst(w, "b.html", b"<p>b3</p>")
        self.assertEqual(s["invalidation_paths"], 0, s)
        mark = w.mark()
        _i, _t, failed = w.wait_for(lambda e: e.get("event") == "summary", mark, timeout=60,
                                    what="the failed gathered submission")
        self.assertEqual((failed["failed"], failed["invalidation_paths"]), (1, 0), failed)
        self.assertEqual(self.new_invs(), [])
        owed, text = self.journal_paths()
        self.assertEqual(set(owed), expected_paths(["b.html"]), text)
        # The pacer tries again after max(interval, 5 s), with no new event.
        _i, _t, ok = w.wait_for(lambda e: e.get("event") == "summary", _i + 1, timeout=30,
                                what="the retried submission")
        new = self.new_invs()
        self.assertEqual(len(new), 1, new)
        self.assertEqual(set(new[0]["Paths"]), expected_paths(["b.html"]))
        self.assertEqual((ok["failed"], ok["invalidation_paths"]), (0, len(new[0]["Paths"])), ok)
        self.assertEqual(self.journal_paths()[0], [])
        self.assertAlive()

    def test_a_negative_interval_is_a_config_error_and_changes_nothing(self):
        src = self.site(SITE)
        cfg = self.config("watch:\n  invalidate_interval_s: -5\n")
        res = harness.run_sitesync(["watch", src, self.dest(), "--endpoint", self.proxy.endpoint, "--distribution",
                                    self.dist, "--cloudfront-endpoint", self.proxy.endpoint, "--config", cfg],
                                   server=self.server, home=self.home, timeout=60)
        self.assertEqual(res.returncode, 2, res.describe())
        self.assertIn("watch.invalidate_interval_s", res.stderr)
        self.assertEqual(self.remote(), {})
        self.assertEqual(self.invs(), [])

    def test_kill_9_inside_the_interval_loses_nothing_the_next_run_submits_the_owed_paths(self):
        src = self.site(SITE)
        cfg = self.config("watch:\n  invalidate_interval_s: 60\n")
        w = self.start_watch(src, "--config", cfg, "--debounce", "200")
        self.burst(w, "b.html", b"<p>b2</p>")
        self.burst(w, "a/index.html", b"<p>a2</p>")
        want = expected_paths(["b.html", "a/index.html"])
        owed, text = self.journal_paths()
        self.assertEqual(set(owed), want, text)
        w.proc.kill()  # SIGKILL, this process's own PID: no exit handler runs
        w.proc.wait(timeout=20)
        self.assertEqual(self.new_invs(), [], "killed inside the interval: nothing was submitted")
        before = len(self.invs())
        res = harness.run_sitesync(["sync", src, self.dest(), "--endpoint", self.proxy.endpoint, "--distribution",
                                    self.dist, "--cloudfront-endpoint", self.proxy.endpoint, "--json"],
                                   server=self.server, home=self.home)
        self.assertEqual(res.returncode, 0, res.describe())
        new = self.invs()[before:]
        self.assertEqual(len(new), 1, new)
        self.assertEqual(set(new[0]["Paths"]), want)
        s = harness.summary_of(harness.parse_json_lines(res.stdout))
        self.assertEqual((s["uploaded"], s["invalidation_paths"]), (0, len(new[0]["Paths"])), s)
        self.assertEqual(self.journal_paths()[0], [])


@needs_sitesync
class PlanCostTest(CdnCase):
    def plan(self, src, *extra):
        return self.sitesync("plan", src, self.dest(), "--endpoint", self.proxy.endpoint, "--distribution", self.dist,
                             "--cloudfront-endpoint", self.proxy.endpoint, *extra)

    def test_cost_line_counts_this_months_invalidations_plus_the_plans_paths(self):
        src = self.site(SITE)
        self.ok_sync(src)  # first publication: one invalidation
        harness.make_site(src, {"b.html": "<p>b, second version</p>", "d/index.html": "<p>d</p>"})
        self.ok_sync(src)  # a second one
        invs = self.invs()
        self.assertEqual(len(invs), 2, invs)
        submitted = sum(len(i["Paths"]) for i in invs)
        harness.make_site(src, {"c.css": "c{color:blue}", "e.html": "<p>e</p>"})
        self.proxy.reset_counts()
        res = self.plan(src, "--json")
        self.assertExit(res, 0)
        events = harness.parse_json_lines(res.stdout)
        planned = events_of(events, "invalidate")
        self.assertEqual(len(planned), 1, planned)
        self.assertEqual(set(planned[0]["paths"]), expected_paths(["c.css", "e.html"]))
        cost = events_of(events, "cost")
        self.assertEqual(len(cost), 1, events)
        c = cost[0]
        self.assertEqual(c["distribution"], self.dist)
        self.assertEqual(c["month"], time.strftime("%Y-%m", time.gmtime()))
        self.assertEqual(c["invalidations"], 2)
        self.assertEqual(c["submitted_paths"], submitted)
        self.assertEqual(c["planned_paths"], len(planned[0]["paths"]))
        self.assertEqual(c["total_paths"], submitted + len(planned[0]["paths"]))
        self.assertEqual((c["free_paths"], c["above_free"], c["price_usd"]), (1000, 0, 0))
        self.assertEqual(events[-1]["event"], "summary", "the summary stays the last line")
        self.assertEqual(len(self.invs()), 2, "plan creates nothing")
        self.assertEqual(self.proxy.count("ListInvalidations", "GET"), 1, self.proxy.counts())
        self.assertEqual(self.proxy.count("GetInvalidation", "GET"), 2, self.proxy.counts())
        # The human line, on stdout with the plan.
        human = self.plan(src)
        self.assertExit(human, 0)
        total = submitted + len(planned[0]["paths"])
        self.assertIn(f"{submitted} paths submitted to {self.dist} + {len(planned[0]['paths'])} in this plan = "
                      f"{total}: within the 1,000 free, $0.00", human.stdout)
        self.assertIn("per AWS account", human.stdout)

    def test_access_denied_for_list_invalidations_is_a_warning_not_a_failed_plan(self):
        src = self.site(SITE)
        self.proxy.inject(status=403, code="AccessDenied", op="ListInvalidations", count=1)
        res = self.plan(src, "--json")
        self.assertExit(res, 0)
        events = harness.parse_json_lines(res.stdout)
        self.assertEqual(events_of(events, "cost"), [])
        self.assertEqual(len(events_of(events, "invalidate")), 1)
        self.assertIn("cloudfront:ListInvalidations", res.stderr)
        self.assertIn("AccessDenied", res.stderr)
        self.assertEqual(harness.summary_of(events)["failed"], 0)


if __name__ == "__main__":
    unittest.main(verbosity=2)
