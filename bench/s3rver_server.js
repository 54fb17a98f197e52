#!/usr/bin/env node
// s3rver_server.js: s3rver 3.7.1 (bench/node_modules) for benchmarks, with a latency knob, request counting
// and bulk loading in front of it, and its listing fixed (unless --no-fix).
//
// Run it as `node --openssl-legacy-provider bench/s3rver_server.js ...`: unpatched s3rver encrypts its
// ListObjectsV2 continuation tokens with DES, which Node 17+ (OpenSSL 3) only has with the legacy provider.
//
// What s3rver 3.7.1 gets wrong, and what this launcher patches at load time (see bench/README.md):
//   1. Order: it walks the bucket folder depth-first (readdir order of the encoded file names, e.g.
//      "a-b._S3rver_object" sorts before "a._S3rver_object" and folder "a" before file "a-c..."), so keys come
//      out in directory order, not S3's UTF-8 byte order. Because the next page starts "after the last key
//      returned", a paginated listing skips keys (those that sort lower than a key already returned but were
//      not reached yet) and can repeat them.
//   2. Pagination with a delimiter: the continuation token / NextMarker is the last *object* key of the page,
//      so a page that ends in a common prefix resumes inside it (repeats), and a page of only common
//      prefixes crashes the handler. KeyCount leaves out the common prefixes.
//   3. Tokens: DES-encrypted (needs --openssl-legacy-provider on Node 17+).
// The patch replaces FilesystemStore.listObjects with a byte-ordered listing over a cached, incrementally
// updated key set (object metadata is still read from s3rver's files, as before, for the keys of the page)
// and bucketCtrl.getBucket with one that returns stable base64 tokens (the last key or common prefix of the
// page), NextMarker for V1, KeyCount including common prefixes, and encoding-type=url.
// s3rver does not verify SigV4 signatures (it checks only that the access key exists: S3RVER/S3RVER).
//
// The front (same process, no second HTTP hop) counts each request by S3 operation, delays it by the
// latency (and the "100 Continue" answer too), then hands it to s3rver's Koa handler. Bench endpoints are the
// same as sink_server.js: /_bench/stats, /_bench/reset, /_bench/config, /_bench/load (writes s3rver's files
// directly: sparse object file, .md5 and metadata.json), /_bench/drop, /_bench/dump.
//
// Usage: node --openssl-legacy-provider s3rver_server.js [--port N|0] [--host H] [--latency-ms N]
//        [--port-file FILE] [--directory DIR] [--no-fix] [--continue-delay same|0] [--parent-pid PID]
//        [--tls-cert FILE --tls-key FILE [--tls-port N|0] [--tls-port-file FILE]]
// With a certificate the front also serves HTTPS on a second port (tls_listener.js, as sink_server.js does).
'use strict';

const http = require('http');
const fs = require('fs');
const fsp = require('fs/promises');
const os = require('os');
const path = require('path');
const { format } = require('util');

const { classify, Stats, readBody, byteKey, urlEncodeKey, watchParent, writePortFile } = require('./sink_server');
const { countConnections, startTls, takeTlsArgs } = require('./tls_listener');

const S3rver = require('s3rver');
const FilesystemStore = require('s3rver/lib/stores/filesystem');
const bucketCtrl = require('s3rver/lib/controllers/bucket');
const S3Object = require('s3rver/lib/models/object');
const S3Error = require('s3rver/lib/models/error');
const { DUMMY_ACCOUNT } = require('s3rver/lib/models/account');
const { walk } = require('s3rver/lib/utils');

const OBJECT_SUFFIX = format('%s._S3rver_%s', '', 'object');

function parseArgs(argv) {
  const a = { port: 0, host: '127.0.0.1', latencyMs: 0, portFile: '', directory: '', fix: true,
              continueDelay: 'same', parentPid: 0 };
  for (let i = 0; i < argv.length; i++) {
    const v = argv[i + 1];
    switch (argv[i]) {
      case '--port': a.port = Number(v); i++; break;
      case '--host': a.host = v; i++; break;
      case '--latency-ms': a.latencyMs = Number(v); i++; break;
      case '--port-file': a.portFile = v; i++; break;
      case '--directory': a.directory = v; i++; break;
      case '--no-fix': a.fix = false; break;
      case '--continue-delay': a.continueDelay = v; i++; break;
      case '--parent-pid': a.parentPid = Number(v); i++; break;
      default: console.error(`unknown argument ${argv[i]}`); process.exit(2);
    }
  }
  return a;
}

// ---------------------------------------------------------------------------------------------------------
// The listing fix

// bucket name -> {keys: Set, sorted: [[byteKey, key]] | null}
const keyCache = new Map();

function bucketKeys(store, bucket) {
  let c = keyCache.get(bucket);
  if (!c) {
    const bucketPath = store.getBucketPath(bucket);
    const keys = new Set();
    if (fs.existsSync(bucketPath)) {
      for (const p of walk(bucketPath)) {
        if (p.endsWith(OBJECT_SUFFIX)) {
          keys.add(FilesystemStore.decodeKeyPath(p.slice(bucketPath.length + 1, -OBJECT_SUFFIX.length)));
        }
      }
    }
    c = { keys, sorted: null };
    keyCache.set(bucket, c);
  }
  if (!c.sorted) {
    c.sorted = [...c.keys].map(k => [byteKey(k), k]);
    c.sorted.sort((x, y) => (x[0] < y[0] ? -1 : x[0] > y[0] ? 1 : 0));
  }
  return c.sorted;
}
function cacheAdd(bucket, key) {
  const c = keyCache.get(bucket);
  if (c && !c.keys.has(key)) { c.keys.add(key); c.sorted = null; }
}
function cacheDel(bucket, key) {
  const c = keyCache.get(bucket);
  if (c && c.keys.delete(key)) c.sorted = null;
}

function lowerBound(a, bk, strict) {
  let lo = 0, hi = a.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (strict ? a[mid][0] <= bk : a[mid][0] < bk) lo = mid + 1; else hi = mid;
  }
  return lo;
}

function installFix() {
  const P = FilesystemStore.prototype;
  const orig = { putObject: P.putObject, deleteObject: P.deleteObject, copyObject: P.copyObject,
                 putObjectMultipart: P.putObjectMultipart, deleteBucket: P.deleteBucket, reset: P.reset };
  P.putObject = async function (object) {
    const r = await orig.putObject.call(this, object);
    cacheAdd(object.bucket, object.key);
    return r;
  };
  P.putObjectMultipart = async function (bucket, uploadId, parts) {
    keyCache.delete(bucket);  // the key is read from the upload folder: simply rebuild
    const r = await orig.putObjectMultipart.call(this, bucket, uploadId, parts);
    keyCache.delete(bucket);
    return r;
  };
  P.copyObject = async function (srcBucket, srcKey, destBucket, destKey, meta) {
    const r = await orig.copyObject.call(this, srcBucket, srcKey, destBucket, destKey, meta);
    cacheAdd(destBucket, destKey);
    return r;
  };
  P.deleteObject = async function (bucket, key) {
    const r = await orig.deleteObject.call(this, bucket, key);
    cacheDel(bucket, key);
    return r;
  };
  P.deleteBucket = async function (bucket) {
    keyCache.delete(bucket);
    return orig.deleteBucket.call(this, bucket);
  };
  P.reset = function () { keyCache.clear(); return orig.reset.call(this); };

  // S3 semantics: byte order; common prefixes count toward maxKeys; `startAfter` that is a common prefix
  // (ends with the delimiter) resumes after every key under it. Also returns `last` (key or prefix).
  P.listObjects = async function (bucket, options) {
    const { delimiter = '', startAfter = '', prefix = '', maxKeys = Infinity } = options;
    const a = bucketKeys(this, bucket);
    const bPrefix = byteKey(prefix);
    let i = lowerBound(a, bPrefix, false);
    if (startAfter) i = Math.max(i, lowerBound(a, byteKey(startAfter), true));
    if (startAfter && delimiter && startAfter.endsWith(delimiter) && startAfter.startsWith(prefix)) {
      const bsa = byteKey(startAfter);
      while (i < a.length && a[i][0].startsWith(bsa)) i++;
    }
    const keys = [], commonPrefixes = [];
    let isTruncated = false, last = '';
    while (i < a.length) {
      const [bk, key] = a[i];
      if (!bk.startsWith(bPrefix)) break;
      if (keys.length + commonPrefixes.length >= maxKeys) { isTruncated = true; break; }
      if (delimiter) {
        const idx = key.indexOf(delimiter, prefix.length);
        if (idx >= 0) {
          const cp = key.slice(0, idx + delimiter.length);
          commonPrefixes.push(cp);
          last = cp;
          const bcp = byteKey(cp);
          while (i < a.length && a[i][0].startsWith(bcp)) i++;
          continue;
        }
      }
      keys.push(key);
      last = key;
      i++;
    }
    const metadataArr = await Promise.all(keys.map(key => this.getMetadata(bucket, key).catch(err => {
      if (err.code === 'ENOENT') return undefined;
      throw err;
    })));
    const objects = [];
    keys.forEach((key, j) => {
      if (metadataArr[j] !== undefined) objects.push(new S3Object(bucket, key, null, metadataArr[j]));
    });
    return { objects, commonPrefixes, isTruncated, last };
  };

  bucketCtrl.getBucket = async function getBucket(ctx) {
    const q = ctx.query;
    const v2 = q['list-type'] === '2';
    const enc = q['encoding-type'] === 'url';
    const E = s => (enc ? urlEncodeKey(s) : s);
    let maxKeys = 1000;
    if (q['max-keys'] !== undefined) {
      if (!/^-?\d+$/.test(q['max-keys']) || Number(q['max-keys']) < 0) {
        throw new S3Error('InvalidArgument', 'Provided max-keys not an integer or within integer range',
                          { ArgumentName: 'max-keys', ArgumentValue: q['max-keys'] });
      }
      maxKeys = Math.min(1000, Number(q['max-keys']));
    }
    const options = { delimiter: q.delimiter || '', prefix: q.prefix || '', maxKeys, startAfter: '' };
    if (v2) {
      if (q['continuation-token']) {
        options.startAfter = Buffer.from(q['continuation-token'], 'base64').toString('utf8');
      } else {
        options.startAfter = q['start-after'] || '';
      }
    } else {
      options.startAfter = q.marker || '';
    }
    const r = maxKeys === 0 ? { objects: [], commonPrefixes: [], isTruncated: false, last: '' }
      : await ctx.store.listObjects(ctx.params.bucket, options);
    const fetchOwner = v2 ? q['fetch-owner'] === 'true' : true;
    ctx.body = {
      ListBucketResult: {
        '@': { xmlns: 'http://doc.s3.amazonaws.com/2006-03-01/' },
        Name: ctx.params.bucket,
        Prefix: E(options.prefix),
        ...(v2
          ? {
              StartAfter: q['continuation-token'] || !q['start-after'] ? undefined : E(q['start-after']),
              ContinuationToken: q['continuation-token'] || undefined,
              NextContinuationToken: r.isTruncated ? Buffer.from(r.last, 'utf8').toString('base64') : undefined,
              KeyCount: r.objects.length + r.commonPrefixes.length,
            }
          : {
              Marker: E(options.startAfter),
              NextMarker: options.delimiter && r.isTruncated ? E(r.last) : undefined,
            }),
        MaxKeys: maxKeys,
        Delimiter: options.delimiter ? E(options.delimiter) : undefined,
        EncodingType: enc ? 'url' : undefined,
        IsTruncated: r.isTruncated,
        Contents: r.objects.map(object => ({
          Key: E(object.key),
          LastModified: object.lastModifiedDate.toISOString(),
          ETag: object.metadata.etag,
          Size: object.size,
          Owner: fetchOwner ? { ID: DUMMY_ACCOUNT.id, DisplayName: DUMMY_ACCOUNT.displayName } : undefined,
          StorageClass: 'STANDARD',
        })),
        CommonPrefixes: r.commonPrefixes.map(p => ({ Prefix: E(p) })),
      },
    };
  };
}

// ---------------------------------------------------------------------------------------------------------

async function main() {
  const tlsArgs = {};
  const a = parseArgs(takeTlsArgs(process.argv.slice(2), tlsArgs));
  if (a.fix) installFix();
  let ownDir = false;
  if (!a.directory) {
    const base = fs.existsSync('/dev/shm') ? '/dev/shm' : os.tmpdir();
    a.directory = fs.mkdtempSync(path.join(base, 'sitesync-bench-s3rver-'));
    ownDir = true;
  }
  const s3rver = new S3rver({ directory: a.directory, silent: true, resetOnClose: false,
                              allowMismatchedSignatures: true });
  const store = s3rver.store;
  const handler = s3rver.callback();
  const stats = new Stats();
  let latencyMs = a.latencyMs;

  const json = (res, status, obj) => {
    const body = JSON.stringify(obj);
    res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body) });
    res.end(body);
  };

  async function bench(req, res, op, q) {
    if (op === 'stats') return json(res, 200, stats.toJSON(latencyMs));
    if (op === 'reset') { await readBody(req); stats.reset(); return json(res, 200, { ok: true }); }
    if (op === 'config') {
      const cfg = JSON.parse((await readBody(req)).toString() || '{}');
      if (cfg.latency_ms !== undefined) latencyMs = Number(cfg.latency_ms);
      return json(res, 200, { ok: true, latency_ms: latencyMs });
    }
    const bucket = q.get('bucket');
    if (!bucket || bucket.includes('/') || bucket.startsWith('.')) return json(res, 400, { error: 'bad bucket' });
    if (op === 'load') {
      const list = JSON.parse((await readBody(req)).toString() || '[]');
      if (q.get('replace') === '1') await store.deleteBucket(bucket);
      await store.putBucket(bucket);
      keyCache.delete(bucket);
      let next = 0;
      const worker = async () => {
        while (next < list.length) {
          const e = list[next++];
          const objectPath = store.getResourcePath(bucket, e.key, 'object');
          await fsp.mkdir(path.dirname(objectPath), { recursive: true });
          const fh = await fsp.open(objectPath, 'w');
          await fh.truncate(Number(e.size));  // sparse: the size is right, the contents are zeros
          await fh.close();
          await fsp.writeFile(objectPath + '.md5', String(e.etag || '').replace(/"/g, ''));
          await fsp.writeFile(store.getResourcePath(bucket, e.key, 'metadata.json'),
                              JSON.stringify({ 'content-type': e.content_type || 'application/octet-stream' }));
        }
      };
      await Promise.all(Array.from({ length: 32 }, worker));
      keyCache.delete(bucket);
      return json(res, 200, { ok: true, objects: list.length });
    }
    if (op === 'drop') {
      await readBody(req);
      keyCache.delete(bucket);
      await fsp.rm(store.getBucketPath(bucket), { recursive: true, force: true });
      return json(res, 200, { ok: true });
    }
    if (op === 'dump') {
      if (!(await store.getBucket(bucket))) return json(res, 404, { error: 'NoSuchBucket' });
      const out = [];
      let after = '';
      for (;;) {
        // unpatched s3rver cannot paginate reliably: take everything in one go there
        const r = await store.listObjects(bucket, { startAfter: after, maxKeys: a.fix ? 1000 : Infinity });
        for (const o of r.objects) {
          out.push({ key: o.key, size: o.size, etag: String(o.metadata.etag).replace(/"/g, ''),
                     content_type: o.metadata['content-type'] });
        }
        if (!r.isTruncated || !r.objects.length) break;
        after = r.objects[r.objects.length - 1].key;
      }
      if (!a.fix) out.sort((x, y) => (byteKey(x.key) < byteKey(y.key) ? -1 : 1));
      return json(res, 200, out);
    }
    return json(res, 404, { error: 'unknown bench endpoint' });
  }

  const delayed = fn => (latencyMs > 0 ? setTimeout(fn, latencyMs) : fn());
  const server = http.createServer({ keepAlive: true }, (req, res) => {
    const qi = req.url.indexOf('?');
    const p = qi < 0 ? req.url : req.url.slice(0, qi);
    if (p.startsWith('/_bench/')) {
      bench(req, res, p.slice(8), new URLSearchParams(qi < 0 ? '' : req.url.slice(qi + 1))).catch(err => {
        console.error(err);
        if (!res.headersSent) json(res, 500, { error: String(err) });
      });
      return;
    }
    stats.count(classify(req.method, req.url, req.headers));
    // (no 'data' listener here: it would drain the body before s3rver reads it)
    stats.bytesIn += Number(req.headers['x-amz-decoded-content-length'] || req.headers['content-length'] || 0);
    delayed(() => handler(req, res));
  });
  server.keepAliveTimeout = 120000;
  server.headersTimeout = 125000;
  server.requestTimeout = 0;
  server.on('checkContinue', (req, res) => {
    stats.expect100++;
    // the interim answer is a round trip too (as in sink_server.js): delay it, then the final answer as usual
    const go = () => { res.writeContinue(); server.emit('request', req, res); };
    if (a.continueDelay === 'same' && latencyMs > 0) setTimeout(go, latencyMs); else go();
  });

  const cleanup = () => {
    if (ownDir) { try { fs.rmSync(a.directory, { recursive: true, force: true }); } catch (e) { /* gone */ } }
  };
  process.on('exit', cleanup);
  for (const sig of ['SIGTERM', 'SIGINT']) process.on(sig, () => process.exit(0));
  watchParent(a.parentPid);

  countConnections(server, stats, 'http');
  startTls(server, stats, tlsArgs, a.host, 's3rver_server', writePortFile);
  server.listen(a.port, a.host, () => {
    const port = server.address().port;
    writePortFile(a.portFile, port);
    console.log(`s3rver_server (s3rver ${require('s3rver/package.json').version}, listing fix ${a.fix ? 'on' : 'off'})` +
                ` on http://${a.host}:${port} latency=${latencyMs}ms dir=${a.directory}`);
  });
}

main().catch(err => { console.error(err); process.exit(1); });
