#!/usr/bin/env python3
"""Check the benchmark servers' listings against moto (python3 -m moto.server), the reference.

    bench/check_server.py [--keys 1500] [--servers sink,s3rver,s3rver-raw]

Puts the same >1000 keys with tricky names (punctuation that sorts around '/', '+', '%', spaces, accents,
CJK, a 4-byte emoji next to a U+FFxx character, which sort differently in UTF-16 and UTF-8) into a bucket on
each server through boto3, then lists them with boto3's paginators: ListObjectsV2 (pages of 1000 and of 97),
with Delimiter='/' at the top and under a prefix, with a Prefix, V1 ListObjects (marker / NextMarker), and a
raw V2 call with encoding-type=url. Each listing must equal moto's exactly (same keys, same common prefixes,
same order, no duplicates) and moto's must equal the keys sorted by UTF-8 bytes.

Exit status 0 when sink and s3rver (patched) agree with moto; s3rver-raw (unpatched s3rver 3.7.1) is expected
to disagree and is reported, not failed on.
"""
import argparse
import random
import sys
from concurrent.futures import ThreadPoolExecutor

import servers

TRICKY = ["a", "a-b", "a.b", "a_b", "a b", "a+b", "a%2Fb", "a=b", "a&b", "a@b", "a!b", "a(b)", "a,b", "a;b",
          "a~b", "a'b", "a$b", "a:b", "A", "Z", "0", "9", "é", "e\u0301", "ü", "中文", "日本語", "😀", "ｆ", "ß",
          "a/b", "a/b/c", "a-/x", "a./x", "a0/x", "dir/", "dir-x", "dir.x", "dir_x", "dir/sub", "dir/sub-x",
          "index.html", "index.html.bak", "index", "page/1/index.html", "page/10/index.html", "page/2/index.html",
          "tags/c++/index.html", "tags/c/index.html", "tags/c-sharp/index.html", "tags/café/index.html"]


def key_set(n, seed=7):
    rng = random.Random(seed)
    keys = set()
    for t in TRICKY:
        if not t.endswith("/"):
            keys.add(t)
        for s in TRICKY[:30]:
            if not t.endswith("/"):
                keys.add(f"{t}/{s}")
    parts = ["posts", "post", "posts-old", "posts.v2", "tags", "tag", "img", "img-2", "img.x", "é", "😀x", "ｆx"]
    while len(keys) < n:
        depth = rng.randint(1, 4)
        k = "/".join(rng.choice(parts) if rng.random() < 0.5 else rng.choice(TRICKY) for _ in range(depth))
        k += rng.choice(["", "/index.html", ".jpg", "-1", " 2"])
        if "//" in k or k.endswith("/") or k.startswith("/"):
            continue
        keys.add(k)
    return sorted(keys, key=lambda k: k.encode())


def put_all(client, bucket, keys):
    client.create_bucket(Bucket=bucket)
    with ThreadPoolExecutor(16) as ex:
        list(ex.map(lambda k: client.put_object(Bucket=bucket, Key=k, Body=k.encode()), keys))


def page_items(page):
    """A page's keys and common prefixes merged in byte order (S3 returns them as two lists)."""
    items = [("K", o["Key"]) for o in page.get("Contents", [])]
    items += [("P", p["Prefix"]) for p in page.get("CommonPrefixes", [])]
    return sorted(items, key=lambda x: x[1].encode())


LISTINGS = {  # name -> (API, kwargs): model() computes the S3 answer for each
    "v2 pages of 1000": ("v2", {}),
    "v2 pages of 97": ("v2", {"PaginationConfig": {"PageSize": 97}}),
    "v2 delimiter=/ pages of 7": ("v2", {"Delimiter": "/", "PaginationConfig": {"PageSize": 7}}),
    "v2 prefix=a/ delimiter=/ pages of 5": ("v2", {"Prefix": "a/", "Delimiter": "/",
                                                   "PaginationConfig": {"PageSize": 5}}),
    "v2 prefix=posts pages of 50": ("v2", {"Prefix": "posts", "PaginationConfig": {"PageSize": 50}}),
    "v1 marker pages of 113": ("v1", {"PaginationConfig": {"PageSize": 113}}),
    "v1 delimiter=/ pages of 5": ("v1", {"Delimiter": "/", "PaginationConfig": {"PageSize": 5}}),
}


def model(keys, Prefix="", Delimiter="", **_):
    """What S3 returns, pages concatenated: keys under Prefix in UTF-8 byte order, each common prefix once."""
    out, seen = [], set()
    for k in sorted(keys, key=lambda k: k.encode()):
        if not k.startswith(Prefix):
            continue
        i = k.find(Delimiter, len(Prefix)) if Delimiter else -1
        if i >= 0:
            cp = k[:i + len(Delimiter)]
            if cp not in seen:
                seen.add(cp)
                out.append(("P", cp))
        else:
            out.append(("K", k))
    return out


def listings(client, bucket):
    """name -> list of ('K', key) / ('P', prefix), pages concatenated in the order the server returned them."""
    out = {}
    for name, (api, kw) in LISTINGS.items():
        seq = []
        paginator = client.get_paginator("list_objects_v2" if api == "v2" else "list_objects")
        for page in paginator.paginate(Bucket=bucket, **kw):
            seq += page_items(page)
        out[name] = seq
    return out



def compare(ref, got):
    if ref == got:
        return "ok"
    rs, gs = [x[1] for x in ref], [x[1] for x in got]
    missing = len(set(rs) - set(gs))
    dups = len(gs) - len(set(gs))
    extra = len(set(gs) - set(rs))
    i = next((j for j, (a, b) in enumerate(zip(ref, got)) if a != b), min(len(ref), len(got)))
    order = "" if sorted(gs, key=lambda k: k.encode()) == gs else ", not in byte order"
    return (f"MISMATCH: {len(got)} items vs {len(ref)}; {missing} missing, {extra} extra, {dups} repeated{order}; "
            f"first difference at #{i}: {ref[i] if i < len(ref) else None!r} vs {got[i] if i < len(got) else None!r}")


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--keys", type=int, default=1500)
    ap.add_argument("--servers", default="sink,s3rver,s3rver-raw")
    a = ap.parse_args()
    keys = key_set(a.keys)
    print(f"{len(keys)} keys, e.g. {keys[:3]} ... {keys[-3:]}")
    bucket = "check-listing"
    expected = {name: model(keys, **kw) for name, (api, kw) in LISTINGS.items()}
    with servers.Server("moto") as moto:
        c = servers.boto3_client(moto.url)
        put_all(c, bucket, keys)
        got = listings(c, bucket)
    # the reference: moto's answer where it agrees with the byte-order model, else the model (moto bug)
    ref = {}
    print("moto (python3 -m moto.server) against the S3 model (UTF-8 byte order, each common prefix once):")
    for name, seq in got.items():
        res = compare(expected[name], seq)
        ref[name] = seq if res == "ok" else expected[name]
        print(f"  {name:40s} {res}{'' if res == 'ok' else '  <- moto bug: the model is the reference here'}")
    failed = False
    for mode in a.servers.split(","):
        with servers.Server(mode) as srv:
            c = servers.boto3_client(srv.url)
            put_all(c, bucket, keys)
            got = listings(c, bucket)
        print(f"\n{mode}:")
        bad = 0
        for name, seq in ref.items():
            res = compare(seq, got.get(name, []))
            bad += res != "ok"
            print(f"  {name:40s} {res}")
        if bad and mode != "s3rver-raw":
            failed = True
        if mode == "s3rver-raw":
            print(f"  (unpatched s3rver: {bad} of {len(ref)} listings wrong - expected, see README)")
    print("\nresult:", "FAILED" if failed else "sink and patched s3rver list exactly like moto")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
