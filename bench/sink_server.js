#!/usr/bin/env node
// sink_server.js: an in-memory S3 subset for benchmarks. Node, no dependencies.
//
// Keeps key/size/ETag/Content-Type per object and discards bodies, so it costs almost no CPU or memory.
// Every answer (and every "100 Continue") is delayed by a fixed latency (setTimeout), and every request is
// counted by S3 operation. Path-style addressing only; keep-alive on; no signature checking.
//
// Operations: ListBuckets, CreateBucket, HeadBucket, DeleteBucket, GetBucketLocation, ListObjectsV2 and V1
// (S3 byte order, max-keys <= 1000, prefix, delimiter, start-after, marker, encoding-type=url, stable
// stateless continuation tokens), PutObject (ETag = Content-MD5 when sent, else MD5 of the body; an
// x-amz-checksum-* header sent is echoed in the answer, as S3 does, unverified; aws-chunked
// bodies decoded), HeadObject, GetObject (the body is zeros: contents are not kept), DeleteObject,
// DeleteObjects, CopyObject, multipart (create, upload part, complete, abort, list parts, list uploads).
//
// Bench endpoints (not S3):
//   GET  /_bench/stats                  -> {"latency_ms":N,"ops":{"PutObject":N,...},"bytes_in":N,"requests":N,
//                                           "expect_100_continue":N (requests that sent Expect: 100-continue),
//                                           "cpu_ms":N (the server's CPU since the last reset)}
//   POST /_bench/reset                  zero the counters
//   POST /_bench/config  {"latency_ms":N}  (sink: also {"max_rps":N,"burst":B,"rps_prefix_depth":D}, see below)
//   POST /_bench/load?bucket=B[&replace=1]  body: JSON [{"key":..,"size":..,"etag":..}], creates B if needed
//   POST /_bench/drop?bucket=B          forget bucket B and its objects
//   GET  /_bench/dump?bucket=B          -> JSON [{"key","size","etag","content_type","content_encoding"}] in byte order
//
// Throttling (sink only, off by default): --max-rps N answers S3 requests above N a second with S3's
// "503 SlowDown", after the same latency as any answer, the request body read and discarded (the connection
// stays open). A token bucket per partition: N tokens a second, at most B (--burst, default N/10: 100 ms of
// burst); a request takes a token or is throttled. The partition is the bucket (S3: one partition until it
// splits a busy bucket), or with --rps-prefix-depth D the bucket and the first D '/'-separated segments of the
// key (of the listing's prefix for bucket requests). /_bench/* is never throttled. Stats add "throttled" (503s
// sent) and "throttled_ops" (by S3 operation); the throttled requests are counted in "requests"/"ops" too.
//
// Usage: node sink_server.js [--port N|0] [--host 127.0.0.1] [--latency-ms N] [--port-file FILE]
//        [--continue-delay same|0] [--parent-pid PID] [--max-rps N] [--burst B] [--rps-prefix-depth D]
//        [--tls-cert FILE --tls-key FILE [--tls-port N|0] [--tls-port-file FILE]]
// With a certificate it also serves HTTPS on a second port (tls_listener.js: same handler, same counters, plus
// connection and TLS handshake counters in /_bench/stats).
'use strict';

const http = require('http');
const crypto = require('crypto');
const fs = require('fs');
const { countConnections, startTls, takeTlsArgs } = require('./tls_listener');

// ---------------------------------------------------------------------------------------------------------
// Shared helpers (also used by s3rver_server.js)

// Names the S3 operation a path-style request is. `url` is the raw request target.
function classify(method, url, headers) {
  const qi = url.indexOf('?');
  const path = qi < 0 ? url : url.slice(0, qi);
  const q = new URLSearchParams(qi < 0 ? '' : url.slice(qi + 1));
  if (path.startsWith('/_bench/')) return 'bench';
  const parts = path.split('/');  // ['', bucket, key...]
  const bucket = parts[1] || '';
  const hasKey = parts.length > 2 && parts.slice(2).join('/') !== '';
  if (!bucket) return method === 'GET' ? 'ListBuckets' : 'other';
  if (!hasKey) {
    switch (method) {
      case 'GET':
        if (q.has('location')) return 'GetBucketLocation';
        if (q.has('uploads')) return 'ListMultipartUploads';
        if (q.has('versioning')) return 'GetBucketVersioning';
        if (q.has('versions')) return 'ListObjectVersions';
        if (q.get('list-type') === '2') return 'ListObjectsV2';
        for (const sub of ['acl', 'cors', 'policy', 'website', 'lifecycle', 'tagging', 'encryption', 'logging',
                           'notification', 'replication', 'requestPayment', 'accelerate', 'object-lock',
                           'ownershipControls', 'publicAccessBlock']) {
          if (q.has(sub)) return 'GetBucket:' + sub;
        }
        return 'ListObjects';
      case 'HEAD': return 'HeadBucket';
      case 'PUT': return q.toString() === '' ? 'CreateBucket' : 'PutBucketConfig';
      case 'DELETE': return 'DeleteBucket';
      case 'POST': return q.has('delete') ? 'DeleteObjects' : 'other';
      default: return 'other';
    }
  }
  switch (method) {
    case 'PUT':
      if (q.has('uploadId') && q.has('partNumber')) {
        return headers['x-amz-copy-source'] ? 'UploadPartCopy' : 'UploadPart';
      }
      if (headers['x-amz-copy-source']) return 'CopyObject';
      if (q.has('acl') || q.has('tagging')) return 'PutObjectConfig';
      return 'PutObject';
    case 'POST':
      if (q.has('uploads')) return 'CreateMultipartUpload';
      if (q.has('uploadId')) return 'CompleteMultipartUpload';
      return 'other';
    case 'DELETE':
      return q.has('uploadId') ? 'AbortMultipartUpload' : 'DeleteObject';
    case 'HEAD': return 'HeadObject';
    case 'GET':
      if (q.has('uploadId')) return 'ListParts';
      if (q.has('acl') || q.has('tagging')) return 'GetObjectConfig';
      return 'GetObject';
    default: return 'other';
  }
}

// The server's own CPU (user + system) in ms: next to a client's wall time it shows who the limit was.
function CpuMs(usage) { return Math.round((usage.user + usage.system) / 1000); }

class Stats {
  constructor() { this.reset(); }
  reset() {
    this.ops = {}; this.requests = 0; this.bytesIn = 0; this.expect100 = 0; this.since = Date.now();
    this.throttled = 0; this.throttledOps = {};
    this.cpu = process.cpuUsage();
  }
  count(op) { this.ops[op] = (this.ops[op] || 0) + 1; this.requests++; }
  countThrottled(op) { this.throttledOps[op] = (this.throttledOps[op] || 0) + 1; this.throttled++; }
  toJSON(latencyMs) {
    return { latency_ms: latencyMs, requests: this.requests, bytes_in: this.bytesIn, ops: this.ops,
             expect_100_continue: this.expect100, throttled: this.throttled, throttled_ops: this.throttledOps,
             since_ms: Date.now() - this.since, cpu_ms: CpuMs(process.cpuUsage(this.cpu)) };
  }
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    req.on('data', c => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

// S3 byte order: compare UTF-8 bytes. A latin1 view of the UTF-8 bytes compares the same with plain `<`.
function byteKey(s) { return Buffer.from(s, 'utf8').toString('latin1'); }

const XML_HEAD = '<?xml version="1.0" encoding="UTF-8"?>\n';
const NS = 'http://s3.amazonaws.com/doc/2006-03-01/';

function xmlEscape(s) {
  return String(s).replace(/[&<>"'\r]/g, c => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;',
                                                 "'": '&apos;', '\r': '&#13;' }[c]));
}
function xmlUnescape(s) {
  return s.replace(/&(#x[0-9a-fA-F]+|#[0-9]+|amp|lt|gt|quot|apos);/g, (m, e) => {
    if (e[0] === '#') {
      return String.fromCodePoint(e[1] === 'x' ? parseInt(e.slice(2), 16) : parseInt(e.slice(1), 10));
    }
    return { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" }[e];
  });
}
// encoding-type=url: like S3, percent-encode everything but unreserved characters and '/'.
function urlEncodeKey(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, c => '%' + c.charCodeAt(0).toString(16).toUpperCase())
    .replace(/%2F/g, '/');
}

module.exports = { classify, Stats, readBody, byteKey, xmlEscape, xmlUnescape, urlEncodeKey };

// ---------------------------------------------------------------------------------------------------------
// The sink server

class Bucket {
  constructor(name) {
    this.name = name;
    this.created = new Date();
    this.objects = new Map();   // key -> {size, etag, ct, mtime}
    this.sorted = null;         // cached [[byteKey, key], ...] in byte order
    this.uploads = new Map();   // uploadId -> {key, ct, parts: Map(partNumber -> {size, etag})}
  }
  put(key, obj) { if (!this.objects.has(key)) this.sorted = null; this.objects.set(key, obj); }
  del(key) { if (this.objects.delete(key)) this.sorted = null; }
  sortedKeys() {
    if (!this.sorted) {
      this.sorted = [...this.objects.keys()].map(k => [byteKey(k), k]);
      this.sorted.sort((a, b) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0));
    }
    return this.sorted;
  }
  // index of the first key whose byte key is > bk
  upperBound(bk) {
    const a = this.sortedKeys();
    let lo = 0, hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid][0] <= bk) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  // index of the first key whose byte key is >= bk
  lowerBound(bk) {
    const a = this.sortedKeys();
    let lo = 0, hi = a.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (a[mid][0] < bk) lo = mid + 1; else hi = mid;
    }
    return lo;
  }
  // S3 listing: keys (and common prefixes, which count toward maxKeys) after `after` in byte order.
  // Returns {contents:[[key,obj]], prefixes:[p], truncated, last} where `last` is the last key or prefix
  // returned (the next page starts after it; after a common prefix, after every key under it).
  list({ prefix = '', delimiter = '', after = '', maxKeys = 1000 }) {
    const a = this.sortedKeys();
    const bPrefix = byteKey(prefix);
    let i = Math.max(this.lowerBound(bPrefix), after ? this.upperBound(byteKey(after)) : 0);
    // resuming after a common prefix: skip everything under it
    if (after && delimiter && after.endsWith(delimiter) && after.startsWith(prefix)) {
      const bAfter = byteKey(after);
      while (i < a.length && a[i][0].startsWith(bAfter)) i++;
    }
    const contents = [], prefixes = [];
    let truncated = false, last = '';
    while (i < a.length) {
      const [bk, key] = a[i];
      if (!bk.startsWith(bPrefix)) break;
      if (contents.length + prefixes.length >= maxKeys) { truncated = true; break; }
      if (delimiter) {
        const idx = key.indexOf(delimiter, prefix.length);
        if (idx >= 0) {
          const cp = key.slice(0, idx + delimiter.length);
          prefixes.push(cp);
          last = cp;
          const bcp = byteKey(cp);
          while (i < a.length && a[i][0].startsWith(bcp)) i++;
          continue;
        }
      }
      contents.push([key, this.objects.get(key)]);
      last = key;
      i++;
    }
    return { contents, prefixes, truncated, last };
  }
}

function decodeAwsChunked(buf) {
  // <hex-size>[;chunk-signature=...]\r\n<data>\r\n ... 0[;...]\r\n[trailers]\r\n
  const out = [];
  let pos = 0;
  while (pos < buf.length) {
    const eol = buf.indexOf('\r\n', pos);
    if (eol < 0) break;
    const size = parseInt(buf.slice(pos, eol).toString('latin1').split(';')[0], 16);
    if (!(size > 0)) break;
    out.push(buf.slice(eol + 2, eol + 2 + size));
    pos = eol + 2 + size + 2;
  }
  return Buffer.concat(out);
}

// S3's request-rate limit as a token bucket per partition: `maxRps` tokens a second, at most `burst` kept
// (default maxRps/10). A request that finds no whole token is throttled. 0 = off.
class Throttle {
  constructor({ maxRps = 0, burst = 0, prefixDepth = 0 } = {}) { this.configure({ maxRps, burst, prefixDepth }); }
  configure({ maxRps = this.maxRps, burst, prefixDepth = this.prefixDepth }) {
    this.maxRps = Math.max(0, Number(maxRps) || 0);
    const b = Number(burst);
    this.burst = b > 0 ? b : Math.max(1, this.maxRps / 10);
    this.prefixDepth = Math.max(0, Math.floor(Number(prefixDepth) || 0));
    this.reset();
  }
  reset() { this.partitions = new Map(); }   // partition -> {tokens, at (ms)}; a new one starts full
  // The partition of a request: the bucket, plus the first prefixDepth segments of the key (for a bucket
  // request, of its listing prefix).
  partition(bucket, key) {
    if (!this.prefixDepth) return bucket;
    return bucket + '/' + key.split('/').slice(0, this.prefixDepth).join('/');
  }
  // true: the request may go on (a token was taken); false: answer 503 SlowDown.
  admit(part, nowMs) {
    if (!this.maxRps) return true;
    let p = this.partitions.get(part);
    if (!p) { p = { tokens: this.burst, at: nowMs }; this.partitions.set(part, p); }
    p.tokens = Math.min(this.burst, p.tokens + (nowMs - p.at) * this.maxRps / 1000);
    p.at = nowMs;
    if (p.tokens < 1) return false;
    p.tokens -= 1;
    return true;
  }
  toJSON() { return { max_rps: this.maxRps, burst: this.maxRps ? this.burst : 0, rps_prefix_depth: this.prefixDepth }; }
}

function nowMs() { return Number(process.hrtime.bigint()) / 1e6; }

function createSink(opts = {}) {
  let latencyMs = Number(opts.latencyMs || 0);
  const continueDelay = opts.continueDelay === undefined ? 'same' : opts.continueDelay;
  const stats = new Stats();
  const buckets = new Map();
  const throttle = new Throttle({ maxRps: opts.maxRps, burst: opts.burst, prefixDepth: opts.rpsPrefixDepth });

  // Admits a request against the rate limit. A throttled one is counted and answered 503 SlowDown after the
  // usual latency, its body read and discarded first (keep-alive goes on); returns false then. `beforeBody`:
  // the request waits for "100 Continue" (its body is not sent yet): answered at once, and the connection is
  // closed after the answer, so no client can send the next request where the server waits for this body.
  function admitted(req, res, op, rawPath, q, beforeBody = false) {
    if (!throttle.maxRps) return true;
    const parts = rawPath.split('/');
    const bucketName = decodeURIComponent(parts[1] || '');
    const key = parts.length > 2 ? decodeURIComponent(parts.slice(2).join('/')) : (q.get('prefix') || '');
    if (throttle.admit(throttle.partition(bucketName, key), nowMs())) return true;
    stats.countThrottled(op);
    const slowDown = () => send(res, 503, `${XML_HEAD}<Error><Code>SlowDown</Code><Message>Please reduce your ` +
      'request rate.</Message><RequestId>sink</RequestId><HostId>sink</HostId></Error>',
      beforeBody ? { Connection: 'close' } : {});
    if (beforeBody) slowDown();
    else consume(req, { hash: false }).then(slowDown, () => res.destroy());
    return false;
  }

  function later(fn) {
    if (latencyMs > 0) setTimeout(fn, latencyMs); else setImmediate(fn);
  }
  function send(res, status, body, headers = {}) {
    const h = { 'x-amz-request-id': 'sink', 'Date': new Date().toUTCString(), ...headers };
    if (body === undefined || body === null) body = '';
    if (typeof body === 'string' && body.startsWith('<?xml')) h['Content-Type'] = h['Content-Type'] || 'application/xml';
    if (!('Content-Length' in h)) h['Content-Length'] = Buffer.byteLength(body);
    later(() => {
      res.writeHead(status, h);
      res.end(res.req.method === 'HEAD' ? undefined : body);
    });
  }
  function error(res, status, code, message, extra = '') {
    send(res, status, `${XML_HEAD}<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message>${extra}` +
      `<RequestId>sink</RequestId></Error>`);
  }
  function etagOf(body, headers) {
    const cmd5 = headers['content-md5'];
    if (cmd5) {
      const hex = Buffer.from(cmd5, 'base64').toString('hex');
      if (hex.length === 32) return hex;
    }
    return crypto.createHash('md5').update(body).digest('hex');
  }
  // Counts bytes and, if needed, hashes them, without keeping the body (except aws-chunked and XML bodies).
  function consume(req, { keep = false, hash = true } = {}) {
    return new Promise((resolve, reject) => {
      const chunked = /aws-chunked/.test(req.headers['content-encoding'] || '') ||
        /^STREAMING-/.test(req.headers['x-amz-content-sha256'] || '');
      const md5 = hash && !chunked ? crypto.createHash('md5') : null;
      const chunks = [];
      let size = 0;
      req.on('data', c => {
        size += c.length;
        if (md5) md5.update(c);
        if (keep || chunked) chunks.push(c);
      });
      req.on('end', () => {
        stats.bytesIn += size;
        if (chunked) {
          const body = decodeAwsChunked(Buffer.concat(chunks));
          resolve({ size: body.length, md5: hash ? crypto.createHash('md5').update(body).digest('hex') : null,
                    body });
        } else {
          resolve({ size, md5: md5 ? md5.digest('hex') : null, body: keep ? Buffer.concat(chunks) : null });
        }
      });
      req.on('error', reject);
    });
  }

  function listXml(bucket, q, v2) {
    const prefix = q.get('prefix') || '';
    const delimiter = q.get('delimiter') || '';
    const enc = q.get('encoding-type') === 'url';
    const E = s => xmlEscape(enc ? urlEncodeKey(s) : s);
    let maxKeys = q.has('max-keys') ? parseInt(q.get('max-keys'), 10) : 1000;
    if (!(maxKeys >= 0)) maxKeys = 1000;
    maxKeys = Math.min(maxKeys, 1000);
    let after = '';
    const token = q.get('continuation-token');
    if (v2) {
      if (token) after = Buffer.from(token, 'base64').toString('utf8');
      else after = q.get('start-after') || '';
    } else {
      after = q.get('marker') || '';
    }
    const r = maxKeys === 0 ? { contents: [], prefixes: [], truncated: false, last: '' }
      : bucket.list({ prefix, delimiter, after, maxKeys });
    const out = [XML_HEAD, `<ListBucketResult xmlns="${NS}"><Name>${xmlEscape(bucket.name)}</Name>`,
                 `<Prefix>${E(prefix)}</Prefix>`];
    if (v2) {
      if (token) out.push(`<ContinuationToken>${xmlEscape(token)}</ContinuationToken>`);
      if (q.get('start-after')) out.push(`<StartAfter>${E(q.get('start-after'))}</StartAfter>`);
      out.push(`<KeyCount>${r.contents.length + r.prefixes.length}</KeyCount>`);
      if (r.truncated) {
        out.push(`<NextContinuationToken>${Buffer.from(r.last, 'utf8').toString('base64')}</NextContinuationToken>`);
      }
    } else {
      out.push(`<Marker>${E(after)}</Marker>`);
      if (r.truncated && delimiter) out.push(`<NextMarker>${E(r.last)}</NextMarker>`);
    }
    out.push(`<MaxKeys>${maxKeys}</MaxKeys>`);
    if (delimiter) out.push(`<Delimiter>${E(delimiter)}</Delimiter>`);
    if (enc) out.push('<EncodingType>url</EncodingType>');
    out.push(`<IsTruncated>${r.truncated}</IsTruncated>`);
    const owner = '<Owner><ID>sink</ID><DisplayName>sink</DisplayName></Owner>';
    for (const [key, o] of r.contents) {
      out.push(`<Contents><Key>${E(key)}</Key><LastModified>${o.mtime.toISOString()}</LastModified>` +
               `<ETag>&quot;${o.etag}&quot;</ETag><Size>${o.size}</Size>` +
               `${!v2 || q.get('fetch-owner') === 'true' ? owner : ''}<StorageClass>STANDARD</StorageClass></Contents>`);
    }
    for (const p of r.prefixes) out.push(`<CommonPrefixes><Prefix>${E(p)}</Prefix></CommonPrefixes>`);
    out.push('</ListBucketResult>');
    return out.join('');
  }

  function objectHeaders(o) {
    const h = { 'ETag': `"${o.etag}"`, 'Last-Modified': o.mtime.toUTCString(), 'Content-Type': o.ct,
                'Content-Length': o.size, 'Accept-Ranges': 'bytes' };
    if (o.ce) h['Content-Encoding'] = o.ce;
    return h;
  }
  // The Content-Encoding the object keeps: the request's, without aws-chunked (a transfer framing S3 strips).
  function storedEncoding(headers) {
    const ce = (headers['content-encoding'] || '').split(',').map(x => x.trim())
      .filter(x => x && x !== 'aws-chunked').join(',');
    return ce || undefined;
  }

  async function bench(req, res, path, q) {
    const json = (status, obj) => {
      const body = JSON.stringify(obj);
      res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
      res.end(body);
    };
    const op = path.slice('/_bench/'.length);
    if (op === 'stats') return json(200, { ...stats.toJSON(latencyMs), ...throttle.toJSON() });
    if (op === 'reset') { await readBody(req); stats.reset(); throttle.reset(); return json(200, { ok: true }); }
    if (op === 'config') {
      const cfg = JSON.parse((await readBody(req)).toString() || '{}');
      if (cfg.latency_ms !== undefined) latencyMs = Number(cfg.latency_ms);
      if (cfg.max_rps !== undefined || cfg.burst !== undefined || cfg.rps_prefix_depth !== undefined) {
        throttle.configure({ maxRps: cfg.max_rps, burst: cfg.burst, prefixDepth: cfg.rps_prefix_depth });
      }
      return json(200, { ok: true, latency_ms: latencyMs, ...throttle.toJSON() });
    }
    const name = q.get('bucket');
    if (op === 'load') {
      const list = JSON.parse((await readBody(req)).toString() || '[]');
      let b = buckets.get(name);
      if (!b || q.get('replace') === '1') { b = new Bucket(name); buckets.set(name, b); }
      const now = new Date();
      for (const e of list) {
        b.objects.set(e.key, { size: Number(e.size), etag: String(e.etag || '').replace(/"/g, '') ||
          'd41d8cd98f00b204e9800998ecf8427e', ct: e.content_type || 'application/octet-stream', mtime: now });
      }
      b.sorted = null;
      return json(200, { ok: true, objects: b.objects.size });
    }
    if (op === 'drop') { await readBody(req); buckets.delete(name); return json(200, { ok: true }); }
    if (op === 'dump') {
      const b = buckets.get(name);
      if (!b) return json(404, { error: 'NoSuchBucket' });
      return json(200, b.sortedKeys().map(([, k]) => {
        const o = b.objects.get(k);
        return { key: k, size: o.size, etag: o.etag, content_type: o.ct, content_encoding: o.ce || null };
      }));
    }
    return json(404, { error: 'unknown bench endpoint' });
  }

  async function handle(req, res) {
    const url = req.url;
    const qi = url.indexOf('?');
    const rawPath = qi < 0 ? url : url.slice(0, qi);
    const q = new URLSearchParams(qi < 0 ? '' : url.slice(qi + 1));
    if (rawPath.startsWith('/_bench/')) return bench(req, res, rawPath, q);
    const op = classify(req.method, url, req.headers);
    stats.count(op);
    if (!req.throttleChecked && !admitted(req, res, op, rawPath, q)) return;
    const parts = rawPath.split('/');
    const bucketName = decodeURIComponent(parts[1] || '');
    const key = parts.length > 2 ? decodeURIComponent(parts.slice(2).join('/')) : '';
    const bucket = buckets.get(bucketName);
    const noBucket = () => error(res, 404, 'NoSuchBucket', 'The specified bucket does not exist',
                                 `<BucketName>${xmlEscape(bucketName)}</BucketName>`);

    switch (op) {
      case 'ListBuckets': {
        await consume(req, { hash: false });
        const items = [...buckets.values()].map(b =>
          `<Bucket><Name>${xmlEscape(b.name)}</Name><CreationDate>${b.created.toISOString()}</CreationDate></Bucket>`);
        return send(res, 200, `${XML_HEAD}<ListAllMyBucketsResult xmlns="${NS}"><Owner><ID>sink</ID>` +
          `<DisplayName>sink</DisplayName></Owner><Buckets>${items.join('')}</Buckets></ListAllMyBucketsResult>`);
      }
      case 'CreateBucket':
        await consume(req, { hash: false });
        if (!bucket) buckets.set(bucketName, new Bucket(bucketName));
        return send(res, 200, '', { Location: '/' + bucketName });
      case 'HeadBucket':
        return bucket ? send(res, 200, '', { 'x-amz-bucket-region': 'us-east-1' }) : send(res, 404, '');
      case 'DeleteBucket':
        if (!bucket) return noBucket();
        if (bucket.objects.size) return error(res, 409, 'BucketNotEmpty', 'The bucket you tried to delete is not empty');
        buckets.delete(bucketName);
        return send(res, 204, '');
      case 'GetBucketLocation':
        if (!bucket) return noBucket();
        return send(res, 200, `${XML_HEAD}<LocationConstraint xmlns="${NS}"/>`);
      case 'GetBucketVersioning':
        if (!bucket) return noBucket();
        return send(res, 200, `${XML_HEAD}<VersioningConfiguration xmlns="${NS}"/>`);
      case 'ListObjectsV2':
      case 'ListObjects':
        if (!bucket) return noBucket();
        return send(res, 200, listXml(bucket, q, op === 'ListObjectsV2'));
      case 'ListMultipartUploads': {
        if (!bucket) return noBucket();
        const ups = [...bucket.uploads.entries()].map(([id, u]) =>
          `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${id}</UploadId><Initiated>${u.started.toISOString()}` +
          `</Initiated><StorageClass>STANDARD</StorageClass></Upload>`);
        return send(res, 200, `${XML_HEAD}<ListMultipartUploadsResult xmlns="${NS}"><Bucket>${xmlEscape(bucketName)}` +
          `</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><MaxUploads>1000</MaxUploads>` +
          `<IsTruncated>false</IsTruncated>${ups.join('')}</ListMultipartUploadsResult>`);
      }
      case 'DeleteObjects': {
        const { body } = await consume(req, { keep: true, hash: false });
        if (!bucket) return noBucket();
        const xml = body.toString('utf8');
        const quiet = /<Quiet>\s*true\s*<\/Quiet>/i.test(xml);
        const out = [];
        for (const m of xml.matchAll(/<Object>([\s\S]*?)<\/Object>/g)) {
          const km = /<Key>([\s\S]*?)<\/Key>/.exec(m[1]);
          if (!km) continue;
          const k = xmlUnescape(km[1]);
          bucket.del(k);
          if (!quiet) out.push(`<Deleted><Key>${xmlEscape(k)}</Key></Deleted>`);
        }
        return send(res, 200, `${XML_HEAD}<DeleteResult xmlns="${NS}">${out.join('')}</DeleteResult>`);
      }
      case 'PutObject': {
        const { size, md5 } = await consume(req, { hash: !req.headers['content-md5'] });
        if (!bucket) return noBucket();
        const etag = md5 || etagOf(null, req.headers);
        bucket.put(key, { size, etag, ct: req.headers['content-type'] || 'binary/octet-stream',
                          ce: storedEncoding(req.headers), mtime: new Date() });
        // S3 answers a PutObject that carried an x-amz-checksum-* header with that checksum, as it verified it;
        // the sink echoes it unverified (as it takes a Content-MD5 for the ETag unverified), so that tools which
        // check the echo (sitesync falls back to Content-MD5 without it) behave as they do against S3.
        const echo = { ETag: `"${etag}"` };
        for (const alg of ['crc32', 'crc32c', 'crc64nvme', 'sha1', 'sha256']) {
          const v = req.headers[`x-amz-checksum-${alg}`];
          if (v) echo[`x-amz-checksum-${alg}`] = v;
        }
        return send(res, 200, '', echo);
      }
      case 'CopyObject': {
        await consume(req, { hash: false });
        if (!bucket) return noBucket();
        let src = decodeURIComponent(req.headers['x-amz-copy-source'].split('?')[0]).replace(/^\//, '');
        const si = src.indexOf('/');
        const sb = buckets.get(src.slice(0, si));
        const so = sb && sb.objects.get(src.slice(si + 1));
        if (!so) return error(res, 404, 'NoSuchKey', 'The specified key does not exist.');
        const replace = req.headers['x-amz-metadata-directive'] === 'REPLACE';
        const ct = replace ? (req.headers['content-type'] || so.ct) : so.ct;
        const o = { ...so, ct, ce: replace ? storedEncoding(req.headers) : so.ce, mtime: new Date() };
        bucket.put(key, o);
        return send(res, 200, `${XML_HEAD}<CopyObjectResult><LastModified>${o.mtime.toISOString()}</LastModified>` +
          `<ETag>&quot;${o.etag}&quot;</ETag></CopyObjectResult>`);
      }
      case 'HeadObject':
      case 'GetObject': {
        await consume(req, { hash: false });
        if (!bucket) return noBucket();
        const o = bucket.objects.get(key);
        if (!o) {
          if (op === 'HeadObject') return send(res, 404, '');
          return error(res, 404, 'NoSuchKey', 'The specified key does not exist.', `<Key>${xmlEscape(key)}</Key>`);
        }
        if (op === 'HeadObject') return send(res, 200, '', objectHeaders(o));
        const h = objectHeaders(o);
        let start = 0, end = o.size - 1, status = 200;
        const range = /^bytes=(\d*)-(\d*)$/.exec(req.headers.range || '');
        if (range && o.size > 0) {
          if (range[1] === '') { start = Math.max(0, o.size - Number(range[2])); }
          else { start = Number(range[1]); if (range[2] !== '') end = Math.min(end, Number(range[2])); }
          status = 206;
          h['Content-Range'] = `bytes ${start}-${end}/${o.size}`;
        }
        const len = Math.max(0, end - start + 1);
        h['Content-Length'] = len;
        return later(() => {
          res.writeHead(status, h);
          // contents are not kept: stream zeros
          const zero = Buffer.alloc(Math.min(len, 1 << 16));
          let left = len;
          const pump = () => {
            while (left > 0) {
              const n = Math.min(left, zero.length);
              left -= n;
              if (!res.write(n === zero.length ? zero : zero.subarray(0, n))) return res.once('drain', pump);
            }
            res.end();
          };
          pump();
        });
      }
      case 'DeleteObject':
        await consume(req, { hash: false });
        if (!bucket) return noBucket();
        bucket.del(key);
        return send(res, 204, '');
      case 'CreateMultipartUpload': {
        await consume(req, { hash: false });
        if (!bucket) return noBucket();
        const id = crypto.randomBytes(12).toString('hex');
        bucket.uploads.set(id, { key, ct: req.headers['content-type'] || 'binary/octet-stream',
                                 ce: storedEncoding(req.headers), parts: new Map(),
                                 started: new Date() });
        return send(res, 200, `${XML_HEAD}<InitiateMultipartUploadResult xmlns="${NS}"><Bucket>${xmlEscape(bucketName)}` +
          `</Bucket><Key>${xmlEscape(key)}</Key><UploadId>${id}</UploadId></InitiateMultipartUploadResult>`);
      }
      case 'UploadPart': {
        const { size, md5 } = await consume(req, { hash: true });
        if (!bucket) return noBucket();
        const u = bucket.uploads.get(q.get('uploadId'));
        if (!u) return error(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
        u.parts.set(Number(q.get('partNumber')), { size, etag: md5 });
        return send(res, 200, '', { ETag: `"${md5}"` });
      }
      case 'ListParts': {
        await consume(req, { hash: false });
        if (!bucket) return noBucket();
        const u = bucket.uploads.get(q.get('uploadId'));
        if (!u) return error(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
        const ps = [...u.parts.entries()].sort((a, b) => a[0] - b[0]).map(([n, p]) =>
          `<Part><PartNumber>${n}</PartNumber><ETag>&quot;${p.etag}&quot;</ETag><Size>${p.size}</Size></Part>`);
        return send(res, 200, `${XML_HEAD}<ListPartsResult xmlns="${NS}"><Bucket>${xmlEscape(bucketName)}</Bucket>` +
          `<Key>${xmlEscape(u.key)}</Key><UploadId>${q.get('uploadId')}</UploadId><IsTruncated>false</IsTruncated>` +
          `${ps.join('')}</ListPartsResult>`);
      }
      case 'CompleteMultipartUpload': {
        const { body } = await consume(req, { keep: true, hash: false });
        if (!bucket) return noBucket();
        const id = q.get('uploadId');
        const u = bucket.uploads.get(id);
        if (!u) return error(res, 404, 'NoSuchUpload', 'The specified upload does not exist.');
        const xml = body.toString('utf8');
        const nums = [...xml.matchAll(/<PartNumber>\s*(\d+)\s*<\/PartNumber>/g)].map(m => Number(m[1]));
        let size = 0;
        const md5s = [];
        for (const n of nums) {
          const p = u.parts.get(n);
          if (!p) return error(res, 400, 'InvalidPart', `Part ${n} was not uploaded.`);
          size += p.size;
          md5s.push(Buffer.from(p.etag, 'hex'));
        }
        const etag = crypto.createHash('md5').update(Buffer.concat(md5s)).digest('hex') + '-' + nums.length;
        bucket.uploads.delete(id);
        bucket.put(u.key, { size, etag, ct: u.ct, ce: u.ce, mtime: new Date() });
        return send(res, 200, `${XML_HEAD}<CompleteMultipartUploadResult xmlns="${NS}"><Location>/${xmlEscape(bucketName)}/` +
          `${xmlEscape(u.key)}</Location><Bucket>${xmlEscape(bucketName)}</Bucket><Key>${xmlEscape(u.key)}</Key>` +
          `<ETag>&quot;${etag}&quot;</ETag></CompleteMultipartUploadResult>`);
      }
      case 'AbortMultipartUpload':
        await consume(req, { hash: false });
        if (!bucket) return noBucket();
        bucket.uploads.delete(q.get('uploadId'));
        return send(res, 204, '');
      default:
        await consume(req, { hash: false });
        if (bucketName && !bucket) return noBucket();
        return error(res, 501, 'NotImplemented', `sink_server does not implement ${req.method} ${rawPath}?${q}`);
    }
  }

  const server = http.createServer({ keepAlive: true }, (req, res) => {
    handle(req, res).catch(err => {
      console.error('sink_server error:', err && err.stack || err);
      if (!res.headersSent) { res.writeHead(500); res.end(); }
    });
  });
  server.keepAliveTimeout = 120000;
  server.headersTimeout = 125000;
  server.requestTimeout = 0;
  // Expect: 100-continue is a round trip too: delay the interim answer like any other.
  server.on('checkContinue', (req, res) => {
    stats.expect100++;
    // A throttled request is refused before its body is sent, as S3 does: 503 in place of "100 Continue".
    // The client then either sends the body anyway (discarded) or closes the connection.
    const url = req.url, qi = url.indexOf('?');
    const rawPath = qi < 0 ? url : url.slice(0, qi);
    if (!rawPath.startsWith('/_bench/')) {
      const op = classify(req.method, url, req.headers);
      if (!admitted(req, res, op, rawPath, new URLSearchParams(qi < 0 ? '' : url.slice(qi + 1)), true)) {
        stats.count(op);
        return;
      }
      req.throttleChecked = true;
    }
    const go = () => { res.writeContinue(); server.emit('request', req, res); };
    if (continueDelay === 'same' && latencyMs > 0) setTimeout(go, latencyMs); else go();
  });
  return { server, stats, buckets, throttle, get latencyMs() { return latencyMs; } };
}

function parseArgs(argv) {
  const a = { port: 0, host: '127.0.0.1', latencyMs: 0, portFile: '', continueDelay: 'same', parentPid: 0 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--port': a.port = Number(v); i++; break;
      case '--host': a.host = v; i++; break;
      case '--latency-ms': a.latencyMs = Number(v); i++; break;
      case '--port-file': a.portFile = v; i++; break;
      case '--continue-delay': a.continueDelay = v; i++; break;
      case '--parent-pid': a.parentPid = Number(v); i++; break;
      case '--max-rps': a.maxRps = Number(v); i++; break;
      case '--burst': a.burst = Number(v); i++; break;
      case '--rps-prefix-depth': a.rpsPrefixDepth = Number(v); i++; break;
      default: console.error(`unknown argument ${argv[i]}`); process.exit(2);
    }
  }
  return a;
}

// Exits when the parent process goes away, so a crashed runner never leaves a server behind.
function watchParent(pid) {
  if (!pid) return;
  setInterval(() => {
    try { process.kill(pid, 0); } catch (e) { process.exit(0); }
  }, 1000).unref();
}

function writePortFile(file, port) {
  if (!file) return;
  fs.writeFileSync(file + '.tmp', String(port));
  fs.renameSync(file + '.tmp', file);
}

module.exports.createSink = createSink;
module.exports.Throttle = Throttle;
module.exports.watchParent = watchParent;
module.exports.writePortFile = writePortFile;

if (require.main === module) {
  const tlsArgs = {};
  const a = parseArgs(takeTlsArgs(process.argv.slice(2), tlsArgs));
  const { server, stats, throttle } = createSink({ latencyMs: a.latencyMs, continueDelay: a.continueDelay,
                                                   maxRps: a.maxRps, burst: a.burst, rpsPrefixDepth: a.rpsPrefixDepth });
  countConnections(server, stats, 'http');
  startTls(server, stats, tlsArgs, a.host, 'sink_server', writePortFile);
  server.listen(a.port, a.host, () => {
    const port = server.address().port;
    writePortFile(a.portFile, port);
    console.log(`sink_server listening on http://${a.host}:${port} latency=${a.latencyMs}ms` +
                (throttle.maxRps ? ` max-rps=${throttle.maxRps} burst=${throttle.burst}` : ''));
  });
  watchParent(a.parentPid);
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
}
