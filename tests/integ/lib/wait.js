'use strict';
/*
 * wait.js - waiting on events with a deadline, never for a fixed time.
 *
 * A check that something happens waits for it (waitUntil, within).  A
 * check that something does NOT happen needs a moment after which it
 * could no longer happen unseen; a fixed sleep only guesses that moment
 * (too short under load: the check passes without having looked; too
 * long: the suite crawls).  Instead the test waits for a positive event
 * ordered after it on the same path, for example:
 *   - the transaction's own final response (the proxy has decided);
 *   - a later request along the same path that has arrived (a barrier:
 *     UDP datagrams from one socket to one socket, nanomsg pipes and
 *     TCP connections all keep order, so whatever was sent before it
 *     has arrived before it);
 *   - acceptBarrier(): a connection of ours accepted by a listener (the
 *     kernel's accept queue is FIFO, so every connection made to that
 *     listener before ours has been accepted by then);
 *   - a counter of the process (Redis' total_connections_received).
 * The helpers below are the generic pieces (and httpGet, a GET with a
 * deadline); SIP barriers live in flows.js, which knows the SIP.
 */
const http = require('node:http');
const net = require('node:net');

const HOST = '127.0.0.1';

/* Polls cond() every stepMs until it is true or ms pass. */
async function waitUntil(cond, ms, what, stepMs = 50) {
	const end = Date.now() + ms;
	for (;;) {
		if (await cond()) return;
		if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
		await new Promise((r) => setTimeout(r, stepMs));
	}
}

/* Resolves with p's value, or rejects after ms naming what was awaited. */
function within(p, ms, what) {
	let t;
	return Promise.race([
		p.finally(() => clearTimeout(t)),
		new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`timed out after ${ms} ms: ${what}`)), ms); }),
	]);
}

/*
 * A TCP listener on 127.0.0.1 that records, in order, the remote port
 * of every connection it accepts and closes it at once (a next hop
 * nobody should reach).  Resolves with {port, accepted, close()}.
 */
async function closingListener() {
	const accepted = [];
	const srv = net.createServer((s) => {
		accepted.push(s.remotePort);
		s.on('error', () => {});
		s.destroy();
	});
	await new Promise((r) => srv.listen(0, HOST, r));
	const l = { port: srv.address().port, accepted, barriers: [] };
	l.close = () => new Promise((r) => srv.close(r));
	/* Connections that were not our own barriers. */
	l.others = () => accepted.filter((p) => !l.barriers.includes(p));
	return l;
}

/*
 * Connects to listener l (closingListener) and resolves once it has
 * accepted that connection: every connection attempted before it has
 * been accepted too, so l.others() is complete up to now.
 */
async function acceptBarrier(l, ms = 3000) {
	const s = net.connect(l.port, HOST);
	s.on('error', () => {});
	await within(new Promise((r) => s.once('connect', r)), ms, `a connection to ${HOST}:${l.port}`);
	const mine = s.localPort;
	l.barriers.push(mine);
	try {
		await waitUntil(() => l.accepted.includes(mine), ms, `${HOST}:${l.port} to accept our connection`, 5);
	} finally {
		s.destroy();
	}
}

/* GET http://addr/path: {status, headers, body}. */
function httpGet(addr, p, ms = 3000) {
	return new Promise((resolve, reject) => {
		const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
		const req = http.get({ host, port, path: p, timeout: ms, agent: false }, (res) => {
			let body = '';
			res.setEncoding('utf8');
			res.on('data', (d) => { body += d; });
			res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, body }));
		});
		req.on('timeout', () => req.destroy(new Error(`GET ${addr}${p}: no answer in ${ms} ms`)));
		req.on('error', reject);
	});
}

module.exports = { waitUntil, within, closingListener, acceptBarrier, httpGet };
