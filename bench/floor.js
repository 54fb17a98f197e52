#!/usr/bin/env node
// floor.js: the trivial client that gives the benchmark floors. Node, no dependencies, no signing.
//
//   node floor.js --endpoint URL --bucket B [--list] [--root DIR --put FILE] [--delete FILE] [--jobs 64]
//                 [--retries 10] [--ca FILE]
//
// Steps, each only if asked, in this order:
//   --list            one walk of the bucket listing: ListObjectsV2 pages of 1,000 with continuation tokens
//   --put FILE        PUT each path in FILE (one '/'-separated path relative to --root a line) as a key,
//                     --jobs requests in flight over a keep-alive http.Agent; the file is read whole, then sent
//                     with Content-Length (no diffing, no hashing, no Content-MD5)
//   --delete FILE     DeleteObjects for the keys in FILE, 1,000 a request
// A request answered 503 (S3's SlowDown) or 500 is sent again, up to --retries times, after a sleep drawn
// at random between 0 and min(2 s, 50 ms x 2^attempt) ("full jitter" exponential backoff, what the AWS SDKs'
// standard retry mode does with a smaller base): the plain retry any client has, no rate adaptation.
// An https:// endpoint is verified against the CA certificates in --ca FILE (PEM; default: Node's own CAs), over a
// keep-alive https.Agent (which keeps TLS sessions and offers them again on its new connections), with one secure
// context for all its connections.
// Prints one JSON line: {"listed":N,"list_requests":N,"put":N,"bytes":N,"deleted":N,"retried":N,"seconds":S}.
'use strict';

const http = require('http');
const https = require('https');
const fs = require('fs');
const fsp = require('fs/promises');
const path = require('path');
const crypto = require('crypto');

const args = { jobs: 64, list: false, retries: 10 };
const argv = process.argv.slice(2);
for (let i = 0; i < argv.length; i++) {
  const k = argv[i];
  if (k === '--list') args.list = true;
  else if (['--endpoint', '--bucket', '--root', '--put', '--delete', '--jobs', '--retries', '--ca'].includes(k)) {
    args[k.slice(2)] = argv[++i];
  }
  else { console.error(`unknown argument ${k}`); process.exit(2); }
}
const url = new URL(args.endpoint);
const tls = url.protocol === 'https:';
const proto = tls ? https : http;
const agent = tls
  // One secure context for every connection: given `ca` itself, Node makes a context per connection and parses
  // every certificate in the bundle again each time (a system-sized bundle cost 1.9 s of CPU for 64 connections).
  ? new https.Agent({ keepAlive: true, maxSockets: Number(args.jobs),
                      ...(args.ca ? { secureContext: require('tls').createSecureContext({ ca: fs.readFileSync(args.ca) }) } : {}) })
  : new http.Agent({ keepAlive: true, maxSockets: Number(args.jobs) });
const encKey = k => k.split('/').map(encodeURIComponent).join('/');

let retried = 0;
const sleep = ms => new Promise(r => setTimeout(r, ms));

async function request(method, p, body, headers = {}) {
  for (let attempt = 0; ; attempt++) {
    try {
      return await requestOnce(method, p, body, headers);
    } catch (err) {
      if (!err.retryable || attempt >= Number(args.retries)) throw err;
      retried++;
      await sleep(Math.random() * Math.min(2000, 50 * 2 ** attempt));
    }
  }
}

function requestOnce(method, p, body, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = proto.request({ host: url.hostname, port: url.port, method, path: p, agent,
                               headers: { 'Content-Length': body ? body.length : 0, ...headers } }, res => {
      const chunks = [];
      res.on('data', c => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        if (res.statusCode >= 300) {
          const err = new Error(`${method} ${p}: ${res.statusCode} ${text.slice(0, 200)}`);
          err.retryable = res.statusCode === 503 || res.statusCode === 500;
          reject(err);
        } else resolve(text);
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

const readList = f => fs.readFileSync(f, 'utf8').split('\n').filter(Boolean);

async function main() {
  const t0 = process.hrtime.bigint();
  const out = { listed: 0, list_requests: 0, put: 0, bytes: 0, deleted: 0 };
  const b = '/' + encodeURIComponent(args.bucket);
  if (args.list) {
    let token = '';
    for (;;) {
      const xml = await request('GET', `${b}?list-type=2&max-keys=1000` +
        (token ? `&continuation-token=${encodeURIComponent(token)}` : ''));
      out.list_requests++;
      out.listed += (xml.match(/<Key>/g) || []).length;
      const m = /<NextContinuationToken>([^<]*)<\/NextContinuationToken>/.exec(xml);
      if (!/<IsTruncated>true<\/IsTruncated>/.test(xml) || !m) break;
      token = m[1].replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"');
    }
  }
  if (args.put) {
    const keys = readList(args.put);
    let next = 0;
    const worker = async () => {
      while (next < keys.length) {
        const k = keys[next++];
        const body = fs.readFileSync(path.join(args.root, k));  // page-cached: cheaper than the async read
        await request('PUT', `${b}/${encKey(k)}`, body);
        out.put++;
        out.bytes += body.length;
      }
    };
    await Promise.all(Array.from({ length: Math.min(Number(args.jobs), keys.length) }, worker));
  }
  if (args.delete) {
    const keys = readList(args.delete);
    for (let i = 0; i < keys.length; i += 1000) {
      const esc = s => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
      const body = Buffer.from('<Delete><Quiet>true</Quiet>' +
        keys.slice(i, i + 1000).map(k => `<Object><Key>${esc(k)}</Key></Object>`).join('') + '</Delete>');
      await request('POST', `${b}?delete`, body,
                    { 'Content-MD5': crypto.createHash('md5').update(body).digest('base64'),
                      'Content-Type': 'application/xml' });
      out.deleted += Math.min(1000, keys.length - i);
    }
  }
  out.retried = retried;
  out.seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  console.log(JSON.stringify(out));
  agent.destroy();
}

main().catch(err => { console.error(String(err && err.stack || err)); process.exit(1); });
