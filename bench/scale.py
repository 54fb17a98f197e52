#!/usr/bin/env python3
"""How sitesync's memory and listing time grow with the number of objects in the bucket.

    bench/scale.py [--counts 10000,50000,100000,200000] [--latency 0,20] [--reps 3] [--sitesync PATH]
    bench/scale.py --check      # the test: two counts, asserts the memory per listed object (ctest runs this)

For each object count N, a bucket on the sink server (bench/sink_server.js) is bulk-loaded with N keys of a
Hugo-like layout (24 top-level sections; pages as SECTION/YEAR/SLUG/index.html, plus images), no PUTs. Then
`sitesync plan EMPTY_DIR s3://BUCKET` lists the whole bucket and diffs it against an empty site: what is
measured is the listing and the in-memory remote state, nothing else. Also at each N, floor.js walks the same
listing one page at a time (the trivial client's time). Measures per run: wall seconds, peak RSS
(/usr/bin/time), ListObjectsV2 requests (server counter).

Memory per listed object = the slope of peak RSS over N (least squares over the counts), so the fixed cost
(the binary, its libraries, buffers) is left out; the extrapolation to 1,000,000 objects is
RSS(0) + slope x 1,000,000. The same slope is what --check asserts (at most --max-bytes-per-object, default
400), from 20,000 and 100,000 objects.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
sys.path.insert(0, BENCH)
import servers  # noqa: E402

SECTIONS = [f"section-{i:02d}" for i in range(24)]


def manifest(n):
    """N objects, deterministic: 80 % pages (SECTION/YEAR/SLUG/index.html), 20 % images beside them."""
    out = []
    i = 0
    while len(out) < n:
        section = SECTIONS[i % len(SECTIONS)]
        year = 2010 + (i // len(SECTIONS)) % 15
        slug = f"a-post-about-things-number-{i:07d}"
        out.append({"key": f"{section}/{year}/{slug}/index.html", "size": 8000 + i % 30000,
                    "etag": f"{i:032x}"})
        if len(out) < n and i % 4 == 0:
            out.append({"key": f"{section}/{year}/{slug}/cover-{i:07d}.jpg", "size": 20000 + i % 100000,
                        "etag": f"{i + 1:032x}"})
        i += 1
    return out


def timed(argv, env):
    t = subprocess.run(["/usr/bin/time", "-f", "%e %M"] + argv, env=env, stdout=subprocess.PIPE,
                       stderr=subprocess.PIPE, text=True, timeout=600)
    last = t.stderr.strip().splitlines()[-1].split()
    return t.returncode, float(last[0]), int(last[1]) * 1024, t


def measure(srv, sitesync, n, latency, reps, empty, env):
    bucket = f"scale-{n}"
    srv.load(bucket, manifest(n))
    srv.set_latency(latency)
    rows = []
    for _ in range(reps):
        srv.reset()
        rc, wall, rss, t = timed([sitesync, "plan", empty, f"s3://{bucket}", "--endpoint", srv.url, "--json"], env)
        if rc != 0:
            raise SystemExit(f"sitesync failed at N={n}: rc={rc}\n{t.stderr[-2000:]}")
        summary = json.loads(t.stdout.strip().splitlines()[-1])
        if summary.get("event") != "summary" or summary.get("unchanged") != 0 or summary.get("uploaded") != 0:
            raise SystemExit(f"unexpected summary at N={n}: {summary}")
        lists = srv.stats()["ops"].get("ListObjectsV2", 0)
        srv.reset()
        f = subprocess.run(["node", os.path.join(BENCH, "floor.js"), "--endpoint", srv.url, "--bucket", bucket,
                            "--list"], stdout=subprocess.PIPE, text=True, timeout=600, check=True)
        floor = json.loads(f.stdout.strip().splitlines()[-1])
        if floor["listed"] != n:
            raise SystemExit(f"floor listed {floor['listed']} of {n}")
        rows.append({"wall": wall, "rss": rss, "lists": lists, "floor": floor["seconds"]})
    srv.drop(bucket)
    return {"n": n, "latency": latency, "wall": statistics.median(r["wall"] for r in rows),
            "wall_min": min(r["wall"] for r in rows), "wall_max": max(r["wall"] for r in rows),
            "rss": statistics.median(r["rss"] for r in rows), "lists": rows[0]["lists"],
            "floor": statistics.median(r["floor"] for r in rows)}


def slope(points):
    xs = [p[0] for p in points]
    ys = [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    b = sum((x - mx) * (y - my) for x, y in points) / sum((x - mx) ** 2 for x in xs)
    return b, my - b * mx


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--counts", default="10000,50000,100000,200000")
    ap.add_argument("--latency", default="0,20")
    ap.add_argument("--reps", type=int, default=3)
    ap.add_argument("--sitesync", default=os.environ.get("SITESYNC_BIN", os.path.join(ROOT, "build/cli/sitesync")))
    ap.add_argument("--check", action="store_true", help="the test: 20,000 and 100,000 objects, 0 ms, 1 rep")
    ap.add_argument("--max-bytes-per-object", type=float, default=400)
    a = ap.parse_args()
    if a.check:
        a.counts, a.latency, a.reps = "20000,100000", "0", 1
    counts = [int(x) for x in a.counts.split(",")]
    latencies = [int(x) for x in a.latency.split(",")]
    env = dict(os.environ, AWS_ACCESS_KEY_ID="AKIDSCALEBENCH", AWS_SECRET_ACCESS_KEY="scale-bench-secret-not-real",
               AWS_REGION="us-east-1", XDG_STATE_HOME=tempfile.mkdtemp(prefix="sitesync-scale-state-"))
    results = []
    with tempfile.TemporaryDirectory(prefix="sitesync-scale-") as empty, servers.Server("sink", 0) as srv:
        print(f"sink server {srv.url} (pid {srv.pid}); sitesync {a.sitesync}", file=sys.stderr)
        for lat in latencies:
            for n in counts:
                r = measure(srv, a.sitesync, n, lat, a.reps, empty, env)
                results.append(r)
                print(f"  N={n:>7} {lat:>2} ms: {r['wall']:.2f} s ({r['wall_min']:.2f}-{r['wall_max']:.2f}), "
                      f"floor {r['floor']:.2f} s, RSS {r['rss'] / 2**20:.1f} MiB, {r['lists']} list requests",
                      file=sys.stderr, flush=True)

    print(f"| objects | latency | sitesync wall s median (min-max) | listing floor s | × floor | list requests "
          f"| peak RSS MiB |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(f"| {r['n']:,} | {r['latency']} ms | {r['wall']:.2f} ({r['wall_min']:.2f}-{r['wall_max']:.2f}) "
              f"| {r['floor']:.2f} | {r['wall'] / r['floor']:.2f} | {r['lists']} | {r['rss'] / 2**20:.1f} |")
    per_object, base = slope([(r["n"], r["rss"]) for r in results if r["latency"] == latencies[0]])
    print(f"\nMemory per listed object (slope of peak RSS over N): {per_object:.0f} bytes; fixed part "
          f"{base / 2**20:.1f} MiB; extrapolated to 1,000,000 objects: "
          f"{(base + per_object * 1_000_000) / 2**20:.0f} MiB.")
    for lat in latencies:
        rs = [r for r in results if r["latency"] == lat]
        if len(rs) >= 2:
            t_per, t0 = slope([(r["n"], r["wall"]) for r in rs])
            print(f"Listing time at {lat} ms: {t0:.2f} s + {t_per * 1e6:.1f} ms per 1,000 objects "
                  f"(extrapolated to 1,000,000 objects: {t0 + t_per * 1e6:.0f} s)")
    if a.check and per_object > a.max_bytes_per_object:
        print(f"FAIL: {per_object:.0f} bytes per listed object, more than {a.max_bytes_per_object:.0f}",
              file=sys.stderr)
        return 1
    if a.check:
        print(f"ok: {per_object:.0f} bytes per listed object (limit {a.max_bytes_per_object:.0f})", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
