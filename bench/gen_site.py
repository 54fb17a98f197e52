#!/usr/bin/env python3
"""Seeded generator of a Hugo-like static site for the benchmarks (python3 stdlib only).

    gen_site.py --size small|medium|large [--seed N] OUT_DIR

small 326 files (19 MB), medium 5,400 files (298 MB) with seed 1: post pages posts/<slug>/index.html (8-40 KB),
page bundles with images, global images/ (20 KB - 2 MB, most small), tag and category pages with pagination
and Hugo's page/1/ alias stubs, per-section index.xml feeds, rss.xml, sitemap.xml, css/, js/, fonts/, a
search index.json. Two realistic non-ASCII-safe names are in: tags/c++/ and tags/café/ (--ascii leaves them out).
large  50,000 tiny files (60-400 bytes) in docs/<section>/<topic>/<page>/index.html: the listing-only tree.

The same seed and size give the same bytes (file names, sizes, contents). Scenario variants for the runner
(derive_edited: 5 post pages + rss.xml change size; derive_removed: 10 files gone) are made from a base
tree with hard links, so they cost no copies.
"""
import argparse
import hashlib
import json
import os
import random
import shutil
import sys

SIZES = {
    # posts, fraction of posts with a page bundle, global images, tags, categories
    "small": dict(posts=80, bundle_frac=0.3, images=30, tags=24, categories=5),
    "medium": dict(posts=1830, bundle_frac=0.3, images=420, tags=380, categories=12),
}
LARGE_SECTIONS, LARGE_TOPICS, LARGE_PAGES = 50, 20, 50  # 50 * 20 * 50 = 50,000

SYLLABLES = ("ka to ri na mo se lu fa ve di po re sa ti ga no be ku ma zo la pe ri ho ne wi ta "
             "qu ex ul ar in on er at il ys").split()


def make_words(rng, n=600):
    words = set()
    while len(words) < n:
        words.add("".join(rng.choice(SYLLABLES) for _ in range(rng.choice((1, 2, 2, 3, 3, 4)))))
    return sorted(words)


class Text:
    """A deterministic corpus: page text is cut from it at seeded offsets (fast, looks like prose)."""

    def __init__(self, rng, size=3 << 20):
        words = make_words(rng)
        paras, total = [], 0
        while total < size:
            sents = []
            for _ in range(rng.randint(3, 7)):
                w = [rng.choice(words) for _ in range(rng.randint(6, 18))]
                sents.append(w[0].capitalize() + " " + " ".join(w[1:]) + rng.choice(".....?!"))
            p = "<p>" + " ".join(sents) + "</p>\n"
            paras.append(p)
            total += len(p)
        self.corpus = "".join(paras)
        self.words = words

    def cut(self, rng, n):
        start = rng.randrange(0, len(self.corpus) - n - 1)
        s = self.corpus[start:start + n]
        i = s.find("<p>")
        return s[i:] if i >= 0 else s

    def title(self, rng, k=(3, 7)):
        return " ".join(rng.choice(self.words) for _ in range(rng.randint(*k))).capitalize()


def head(title, css, js):
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width,initial-scale=1">'
            f'<title>{title}</title><link rel="stylesheet" href="/{css}">'
            f'<link rel="alternate" type="application/rss+xml" href="/rss.xml">'
            f'<script defer src="/{js}"></script></head>\n<body><header><nav><a href="/">Home</a> '
            f'<a href="/posts/">Posts</a> <a href="/tags/">Tags</a> <a href="/categories/">Categories</a> '
            f'<a href="/about/">About</a></nav></header>\n<main>\n')


FOOT = '</main>\n<footer><p>&copy; Example Blog. Built with Hugo.</p></footer></body></html>\n'


def write(root, rel, data):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode("utf-8"))


def image_bytes(rng, size, ext):
    magic = {"jpg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00", "png": b"\x89PNG\r\n\x1a\n",
             "webp": b"RIFF\x00\x00\x00\x00WEBPVP8 "}[ext]
    return magic + rng.randbytes(size - len(magic))


def image_size(rng):
    # 20 KB - 2 MB, skewed small (median ~30 KB, mean ~165 KB): thumbnails plus a few photos
    return int(20_000 * 100 ** (rng.random() ** 3.5))


def alias(target):
    return (f'<!DOCTYPE html><html lang="en"><head><title>{target}</title><link rel="canonical" '
            f'href="{target}"><meta charset="utf-8"><meta http-equiv="refresh" content="0; url={target}">'
            f'</head></html>\n')


def gen_blog(root, size, seed, ascii_only=False):
    p = SIZES[size]
    rng = random.Random(f"{seed}/{size}")
    text = Text(rng)
    h8 = lambda s: hashlib.sha256(s.encode()).hexdigest()[:16]  # noqa: E731
    css = f"css/main.{h8(str(seed) + 'css')}.min.css"
    js = f"js/main.{h8(str(seed) + 'js')}.min.js"

    # static assets
    write(root, css, text.cut(rng, 60_000).replace("<p>", ".c{").replace("</p>", "}"))
    write(root, "css/syntax.css", text.cut(rng, 9_000).replace("<p>", ".s{").replace("</p>", "}"))
    write(root, "css/fonts.css", "@font-face{font-family:x;src:url(/fonts/x.woff2)}\n" * 40)
    write(root, js, text.cut(rng, 110_000).replace("<p>", "f(").replace("</p>", ");"))
    for name in ("search", "lightbox", "katex.min", "mermaid.min", "instantpage", "theme-toggle"):
        write(root, f"js/{name}.js", text.cut(rng, rng.randint(3_000, 200_000)).replace("<p>", "g(")
              .replace("</p>", ");"))
    for name in ("inter-regular", "inter-bold", "inter-italic", "jetbrains-mono"):
        write(root, f"fonts/{name}.woff2", b"wOF2" + rng.randbytes(rng.randint(20_000, 90_000)))
    write(root, "favicon.ico", rng.randbytes(15_086))
    write(root, "apple-touch-icon.png", image_bytes(rng, 24_000, "png"))
    write(root, "robots.txt", "User-agent: *\nAllow: /\nSitemap: https://example.org/sitemap.xml\n")
    write(root, "site.webmanifest", json.dumps({"name": "Example Blog", "icons": [{"src": "/apple-touch-icon.png"}]}))

    # taxonomy names (two realistic tricky ones unless --ascii)
    tags = sorted({"-".join(rng.choice(text.words) for _ in range(rng.choice((1, 1, 2))))
                   for _ in range(p["tags"] * 2)})
    rng.shuffle(tags)
    tags = tags[:p["tags"] - (0 if ascii_only else 2)] + ([] if ascii_only else ["c++", "café"])
    cats = sorted({rng.choice(text.words) for _ in range(p["categories"] * 3)})[:p["categories"]]
    tag_weights = [1.0 / (i + 1) ** 0.9 for i in range(len(tags))]  # Zipf-ish popularity

    # posts
    posts = []
    slugs = set()
    for i in range(p["posts"]):
        title = text.title(rng)
        slug = "-".join(title.lower().split()[:5])
        while slug in slugs:
            slug += "-" + str(rng.randint(2, 9))
        slugs.add(slug)
        ptags = sorted(set(rng.choices(tags, weights=tag_weights, k=rng.randint(1, 4))))
        posts.append(dict(slug=slug, title=title, tags=ptags, cat=rng.choice(cats),
                          date=f"20{10 + i * 14 // max(1, p['posts'])}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}",
                          summary=text.cut(rng, rng.randint(200, 400))))
    posts.sort(key=lambda x: x["date"], reverse=True)

    for post in posts:
        imgs = []
        if rng.random() < p["bundle_frac"]:
            for k in range(rng.choice((1, 1, 2, 2, 3, 4))):
                ext = rng.choice(("jpg", "jpg", "png", "webp"))
                name = f"{rng.choice(text.words)}-{k}.{ext}"
                write(root, f"posts/{post['slug']}/{name}", image_bytes(rng, image_size(rng), ext))
                imgs.append(name)
        target = int(rng.triangular(8_000, 40_000, 14_000))
        body = [head(post["title"], css, js), f"<article><h1>{post['title']}</h1><time>{post['date']}</time>\n"]
        body += [f'<figure><img src="{n}" alt=""></figure>\n' for n in imgs]
        size_now = sum(len(b) for b in body) + len(FOOT) + 400
        body.append(text.cut(rng, max(1000, target - size_now)))
        body.append("<ul class=tags>" + "".join(f'<li><a href="/tags/{t}/">{t}</a></li>' for t in post["tags"])
                    + "</ul></article>\n")
        body.append(FOOT)
        write(root, f"posts/{post['slug']}/index.html", "".join(body))

    for k in range(p["images"]):
        ext = rng.choice(("jpg", "jpg", "jpg", "png", "webp"))
        write(root, f"images/{2010 + k % 14}/{rng.choice(text.words)}-{k}.{ext}",
              image_bytes(rng, image_size(rng), ext))

    def listing(base, title, items, per=10):
        """Hugo list pages: base/index.html, base/page/N/index.html, base/page/1/ alias, base/index.xml."""
        pages = [items[i:i + per] for i in range(0, max(1, len(items)), per)] or [[]]
        for n, chunk in enumerate(pages, 1):
            body = [head(f"{title} - page {n}", css, js), f"<h1>{title}</h1>\n"]
            for it in chunk:
                body.append(f'<article><h2><a href="/posts/{it["slug"]}/">{it["title"]}</a></h2>'
                            f'<time>{it["date"]}</time>{it["summary"]}</article>\n')
            body.append(f'<nav class=pagination>{" ".join(f"<a href=/{base}page/{m}/>{m}</a>" for m in range(1, len(pages) + 1))}</nav>\n')
            body.append(FOOT)
            write(root, f"{base}index.html" if n == 1 else f"{base}page/{n}/index.html", "".join(body))
        write(root, f"{base}page/1/index.html", alias(f"/{base}"))
        feed = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel>'
                f'<title>{title}</title><link>https://example.org/{base}</link>\n']
        for it in items[:20]:
            feed.append(f'<item><title>{it["title"]}</title><link>https://example.org/posts/{it["slug"]}/</link>'
                        f'<pubDate>{it["date"]}</pubDate><description>{it["summary"]}</description></item>\n')
        feed.append("</channel></rss>\n")
        write(root, f"{base}index.xml", "".join(feed))

    listing("", "Example Blog", posts)
    listing("posts/", "Posts", posts)
    for t in tags:
        listing(f"tags/{t}/", f"Tag {t}", [x for x in posts if t in x["tags"]])
    for c in cats:
        listing(f"categories/{c}/", f"Category {c}", [x for x in posts if x["cat"] == c])
    write(root, "tags/index.html", head("Tags", css, js) + "".join(f'<a href="/tags/{t}/">{t}</a> ' for t in tags) + FOOT)
    write(root, "categories/index.html", head("Categories", css, js) + "".join(f'<a href="/categories/{c}/">{c}</a> ' for c in cats) + FOOT)
    write(root, "about/index.html", head("About", css, js) + text.cut(rng, 9_000) + FOOT)
    write(root, "404.html", head("Not found", css, js) + "<h1>404</h1>" + FOOT)

    # rss.xml: the site feed (full content of the 30 newest posts)
    feed = ['<?xml version="1.0" encoding="utf-8"?>\n<rss version="2.0"><channel><title>Example Blog</title>\n']
    for it in posts[:30]:
        feed.append(f'<item><title>{it["title"]}</title><link>https://example.org/posts/{it["slug"]}/</link>'
                    f'<pubDate>{it["date"]}</pubDate><description><![CDATA[{text.cut(rng, 3000)}]]></description></item>\n')
    feed.append("</channel></rss>\n")
    write(root, "rss.xml", "".join(feed))
    sm = ['<?xml version="1.0" encoding="utf-8"?>\n<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9">\n']
    sm += [f'<url><loc>https://example.org/posts/{x["slug"]}/</loc><lastmod>{x["date"]}</lastmod></url>\n' for x in posts]
    sm += [f'<url><loc>https://example.org/tags/{t}/</loc></url>\n' for t in tags]
    sm.append("</urlset>\n")
    write(root, "sitemap.xml", "".join(sm))
    write(root, "index.json", json.dumps([{"t": x["title"], "u": f"/posts/{x['slug']}/", "s": x["summary"][:200]}
                                          for x in posts]))


def gen_large(root, seed):
    """The listing-only tree: 50,000 tiny pages."""
    rng = random.Random(f"{seed}/large")
    words = make_words(rng, 2000)
    sections = sorted(set(rng.sample(words, LARGE_SECTIONS)))
    n = 0
    for s in sections:
        topics = sorted(set(rng.sample(words, LARGE_TOPICS)))
        for t in topics:
            for k in range(LARGE_PAGES):
                page = f"{rng.choice(words)}-{k:02d}"
                body = f"<!DOCTYPE html><title>{s} {t} {page}</title>" + "x" * rng.randint(0, 330) + "\n"
                write(root, f"docs/{s}/{t}/{page}/index.html", body)
                n += 1
    return n


def generate(out, size, seed=1, ascii_only=False):
    if os.path.exists(out):
        shutil.rmtree(out)
    os.makedirs(out)
    if size == "large":
        gen_large(out, seed)
    else:
        gen_blog(out, size, seed, ascii_only)
    return out


def walk(root):
    """Relative '/'-separated paths of every file under root, sorted."""
    out = []
    for d, dirs, files in os.walk(root):
        for f in files:
            out.append(os.path.relpath(os.path.join(d, f), root).replace(os.sep, "/"))
    return sorted(out)


def manifest(root):
    """[{key, size, etag}] of every file (ETag = MD5 hex), sorted by key."""
    out = []
    for rel in walk(root):
        h = hashlib.md5()
        with open(os.path.join(root, rel), "rb") as f:
            for chunk in iter(lambda: f.read(1 << 20), b""):
                h.update(chunk)
        out.append({"key": rel, "size": os.path.getsize(os.path.join(root, rel)), "etag": h.hexdigest()})
    return out


def _link_copy(base, dst):
    if os.path.exists(dst):
        shutil.rmtree(dst)
    shutil.copytree(base, dst, copy_function=os.link)


def derive_edited(base, dst, seed=1):
    """dst = base with 5 post pages and rss.xml edited (each changes size). Returns the changed keys."""
    _link_copy(base, dst)
    rng = random.Random(f"{seed}/edit")
    pages = [k for k in walk(dst) if k.startswith("posts/") and k.endswith("/index.html") and "/page/" not in k
             and k.count("/") == 2]
    changed = sorted(rng.sample(pages, 5)) + ["rss.xml"]
    for rel in changed:
        path = os.path.join(dst, rel)
        with open(path, "rb") as f:
            data = f.read()
        os.unlink(path)  # break the hard link: never touch the base tree
        extra = ("<p>Update: " + "edited " * rng.randint(20, 120) + "</p>\n").encode()
        if rel == "rss.xml":
            i = data.index(b"<item>")
        else:
            i = data.index(b"</article>")
        with open(path, "wb") as f:
            f.write(data[:i] + extra + data[i:])
    return changed


def derive_removed(base, dst, seed=1):
    """dst = base less 10 files (pages and images, never the home page or rss.xml). Returns the removed keys."""
    _link_copy(base, dst)
    rng = random.Random(f"{seed}/remove")
    candidates = [k for k in walk(dst) if k not in ("index.html", "rss.xml")]
    removed = sorted(rng.sample(candidates, 10))
    for rel in removed:
        os.unlink(os.path.join(dst, rel))
    return removed


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--size", choices=("small", "medium", "large"), default="small")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--ascii", action="store_true", help="leave out the tags c++ and café")
    a = ap.parse_args()
    generate(a.out, a.size, a.seed, a.ascii)
    files = walk(a.out)
    total = sum(os.path.getsize(os.path.join(a.out, f)) for f in files)
    print(f"{a.out}: {len(files)} files, {total / 1e6:.1f} MB", file=sys.stderr)


if __name__ == "__main__":
    main()
