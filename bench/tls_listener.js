// tls_listener.js: the HTTPS side of the bench servers (sink_server.js and s3rver_server.js). Node, no dependencies.
//
// addTlsListener(httpServer, stats, {key, cert}) makes an https.Server that hands every request (and every
// "Expect: 100-continue") to the plain server's own listeners, so both ports answer the same way with the same
// latency, counters and buckets. countConnections(...) adds connection counters to the server's Stats (zeroed by
// its reset(), reported by its toJSON() in /_bench/stats):
//   connections_http, connections_https  TCP connections accepted on each port (the bench's own /_bench/ calls
//                                        are left out: a connection that carries one is taken off the count)
//   tls_handshakes                       TLS handshakes completed (full or resumed)
//   tls_resumed                          of those, sessions resumed (tlsSocket.isSessionReused(): a TLS 1.2
//                                        session ID or ticket, a TLS 1.3 PSK from a ticket)
//   tls_failed                           handshakes that failed (e.g. a client that does not trust the CA)
//   tls_versions                         {"TLSv1.3": N, ...} of the completed handshakes
// Node's TLS server issues session tickets by default (its ticket keys are made at start-up and kept for the
// server's life), so a client that keeps a session and offers it again is resumed.
'use strict';

const https = require('https');
const fs = require('fs');

function zeroNet() {
  return { http: 0, https: 0, handshakes: 0, resumed: 0, failed: 0, versions: {} };
}

// Adds the connection counters to `stats` (once) and counts the connections of `server` under `proto`.
function countConnections(server, stats, proto) {
  if (!stats.net) {
    stats.net = zeroNet();
    const reset = stats.reset.bind(stats);
    const toJSON = stats.toJSON.bind(stats);
    stats.reset = () => { reset(); stats.net = zeroNet(); };
    stats.toJSON = (...args) => ({
      ...toJSON(...args), connections_http: stats.net.http, connections_https: stats.net.https,
      tls_handshakes: stats.net.handshakes, tls_resumed: stats.net.resumed, tls_failed: stats.net.failed,
      tls_versions: stats.net.versions,
    });
  }
  // 'connection' is the accepted TCP socket, before any TLS handshake
  server.on('connection', socket => {
    stats.net[proto]++;
    socket.benchCountedIn = stats.net;  // the counters of this epoch (a reset replaces the object)
  });
  // the bench's own calls (stats, reset, load, ...) are not the client's: take their connection off the count
  server.prependListener('request', req => {
    const s = req.socket;
    if (req.url.startsWith('/_bench/') && s.benchCountedIn) {
      if (s.benchCountedIn === stats.net) stats.net[proto]--;
      s.benchCountedIn = null;
    }
  });
}

function addTlsListener(httpServer, stats, { key, cert }) {
  const tlsServer = https.createServer({ key, cert, keepAlive: true });
  for (const k of ['keepAliveTimeout', 'headersTimeout', 'requestTimeout']) tlsServer[k] = httpServer[k];
  countConnections(tlsServer, stats, 'https');
  tlsServer.on('request', (req, res) => httpServer.emit('request', req, res));
  tlsServer.on('checkContinue', (req, res) => {
    if (httpServer.listenerCount('checkContinue')) return httpServer.emit('checkContinue', req, res);
    res.writeContinue();
    httpServer.emit('request', req, res);
  });
  tlsServer.on('secureConnection', socket => {
    socket.benchCountedIn = stats.net;  // requests see this TLSSocket, not the TCP socket 'connection' saw
    stats.net.handshakes++;
    if (socket.isSessionReused()) stats.net.resumed++;
    const v = socket.getProtocol() || '?';
    stats.net.versions[v] = (stats.net.versions[v] || 0) + 1;
  });
  let logged = 0;
  tlsServer.on('tlsClientError', (err, socket) => {
    stats.net.failed++;
    if (logged++ < 5) console.error(`tls handshake failed from port ${socket.remotePort}: ${err.message}`);
    socket.destroy();
  });
  return tlsServer;
}

// Reads --tls-cert/--tls-key, listens on --tls-port at `host` and writes --tls-port-file (nothing without a cert).
function startTls(httpServer, stats, a, host, name, writePortFile) {
  if (!a.tlsCert) return null;
  const tlsServer = addTlsListener(httpServer, stats, { key: fs.readFileSync(a.tlsKey),
                                                         cert: fs.readFileSync(a.tlsCert) });
  tlsServer.listen(a.tlsPort, host, () => {
    const port = tlsServer.address().port;
    writePortFile(a.tlsPortFile, port);
    console.log(`${name} listening on https://${host}:${port} (cert ${a.tlsCert})`);
  });
  return tlsServer;
}

// Takes the TLS options (--tls-cert FILE --tls-key FILE [--tls-port N|0] [--tls-port-file FILE]) out of a
// server's argv into `into`; returns the other arguments.
function takeTlsArgs(argv, into) {
  const names = { '--tls-cert': 'tlsCert', '--tls-key': 'tlsKey', '--tls-port': 'tlsPort',
                  '--tls-port-file': 'tlsPortFile' };
  Object.assign(into, { tlsCert: '', tlsKey: '', tlsPort: 0, tlsPortFile: '' });
  const rest = [];
  for (let i = 0; i < argv.length; i++) {
    if (names[argv[i]] && i + 1 < argv.length) {
      into[names[argv[i]]] = argv[i] === '--tls-port' ? Number(argv[i + 1]) : argv[i + 1];
      i++;
    } else {
      rest.push(argv[i]);
    }
  }
  if (!into.tlsCert !== !into.tlsKey) { console.error('--tls-cert and --tls-key go together'); process.exit(2); }
  return rest;
}

module.exports = { countConnections, addTlsListener, startTls, takeTlsArgs };
