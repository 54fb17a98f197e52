#!/usr/bin/env python3
"""Where the CPU goes during a first upload: sitesync's, the server's and the whole machine's, every 100 ms.

    bench/cpu_timeline.py [--server sink|s3rver] [--proto https|http] [--size medium] [--latency 20]
                          [--reps 2] [--sitesync build/cli/sitesync] [-- EXTRA SITESYNC ARGS]

Starts the server (stopped by its PID at the end), uploads the site to an empty bucket REPS times and prints,
for the last repetition, the share of a core that sitesync and the server used in each 100 ms (from
/proc/PID/stat, sampled every 20 ms) and the machine's busy share of all its cores (/proc/stat). A server near
100 % of one core while sitesync is well below it means the server's single event loop, not the client, sets
the wall time (both Node servers are single-threaded).
"""
import argparse
import os
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import run  # noqa: E402  (its Site: the generated site, made once per work folder)
import servers  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def process_cpu(pid):
    """User+system seconds of PID, or None once it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / TICK


def machine_busy():
    """(busy seconds, total seconds) of all cores since boot."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return (sum(values) - idle) / TICK, sum(values) / TICK


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--server", default="sink", choices=["sink", "s3rver"])
    ap.add_argument("--proto", default="https", choices=["http", "https"])
    ap.add_argument("--size", default="medium")
    ap.add_argument("--latency", type=int, default=20)
    ap.add_argument("--reps", type=int, default=2)
    ap.add_argument("--sitesync", default=os.path.join(os.path.dirname(__file__), "..", "build", "cli", "sitesync"))
    ap.add_argument("--work", default=os.path.join(tempfile.gettempdir(), "sitesync-bench-work"))
    ap.add_argument("extra", nargs="*")
    args = ap.parse_args()

    site = run.Site(args.work, args.size, 1).base
    with servers.Server(args.server, latency_ms=args.latency, tls=args.proto == "https") as server:
        base = server.url_for("http")
        for _ in range(max(1, args.reps)):
            urllib.request.urlopen(urllib.request.Request(base + "/_bench/load?bucket=bench1&replace=1", data=b"[]",
                                                          method="POST"), timeout=60).read()
            cache = tempfile.mkdtemp(prefix="sitesync-cpu-timeline-")
            env = dict(os.environ, AWS_ACCESS_KEY_ID=servers.CREDS[0], AWS_SECRET_ACCESS_KEY=servers.CREDS[1],
                       XDG_CACHE_HOME=cache)
            cmd = [args.sitesync, "sync", site, "s3://bench1", "--endpoint", server.url_for(args.proto), "--json",
                   "--max-deletes", "-1"]
            if args.proto == "https":
                cmd += ["--ca-bundle", server.ca_file]
            cmd += args.extra
            start = time.monotonic()
            proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            samples = []
            deadline = start + 600
            while proc.poll() is None and time.monotonic() < deadline:
                samples.append((time.monotonic() - start, process_cpu(proc.pid), process_cpu(server.pid),
                                machine_busy()))
                time.sleep(0.02)
            if proc.poll() is None:
                proc.kill()
            proc.wait()
            wall = time.monotonic() - start
        print(f"{args.server} · {args.proto} · {args.size} · {args.latency} ms: wall {wall:.2f} s, exit {proc.returncode}")
        print("   t s   sitesync %  server %  machine % (of 100 x cores)")
        previous = samples[0]
        for sample in samples[5::5]:
            if sample[1] is None or previous[1] is None:
                break
            dt = sample[0] - previous[0]
            busy, total = sample[3][0] - previous[3][0], sample[3][1] - previous[3][1]
            print(f"{sample[0]:6.2f}  {(sample[1] - previous[1]) / dt * 100:9.0f}  {(sample[2] - previous[2]) / dt * 100:8.0f}"
                  f"  {busy / total * 100 * os.cpu_count() if total else 0:9.0f}")
            previous = sample
    return 0 if proc.returncode == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
