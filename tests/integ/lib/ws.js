'use strict';
/*
 * ws.js - WebSocket, TCP and TLS clients for tests 30-ws-* and
 * 31-tcp-tls-*: a cluster whose edges also listen on TLS, WS and WSS
 * (free loopback ports, a self-signed pair made once with openssl),
 * SIP.js (0.21) and JsSIP user agents running in Node over the `ws`
 * package, and a raw SIP-over-stream client for TCP/TLS.
 *
 * SIP.js and JsSIP use the global WebSocket; Node 20 has none, so it
 * is `ws`, told to accept the edge's self-signed certificate.  Their
 * INVITEs carry a fixed SDP from a stub session description handler:
 * these tests are about signaling, media has its own tests.
 */
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const { before } = require('node:test');
const WS = require('ws');
const { cluster, freePort, waitUntil, rand, HOST } = require('./cluster');
const { parse, buildRequest, buildResponse, newBranch } = require('./sip');
const { within } = require('./wait');

class NodeWebSocket extends WS {
	constructor(url, protocols) {
		super(url, protocols, { rejectUnauthorized: false });
	}
}
global.WebSocket = NodeWebSocket;

const SIP = require('sip.js');
const JsSIP = require('jssip');

let pair = null;

/* A self-signed certificate and key for 127.0.0.1, made once. */
function tlsPair() {
	if (pair) return pair;
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smi-tls-'));
	const cert = path.join(dir, 'cert.pem');
	const key = path.join(dir, 'key.pem');
	execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes',
		'-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
		'-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
	process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
	pair = { cert, key, dir };
	return pair;
}

/*
 * cluster() whose edges listen on TCP (the UDP port), TLS, WS and WSS.
 * Ports are picked in a before() hook that runs ahead of the cluster's.
 * opts as for cluster(); returns the cluster with wsUrl(), tlsDest(),
 * tcpDest().
 */
function streamCluster(opts = {}) {
	const ports = {};
	const edge = { ...(opts.edge || {}) };
	before(async () => {
		for (let i = 1; i <= (opts.edges || 1); i++)
			ports[i] = { tls: await freePort(), ws: await freePort(), wss: await freePort() };
		const p = tlsPair();
		if (!edge.tls_cert) {
			edge.tls_cert = p.cert;
			edge.tls_key = p.key;
		}
		/* Outbound TLS trusts the test's own certificates, not
		 * whatever CA bundle the machine has. */
		if (!edge.tls_ca) edge.tls_ca = p.cert;
	});
	const c = cluster({
		...opts, edge,
		edgeKeys: (e) => ({
			tls: `${HOST}:${ports[e.id].tls}`, ws: `${HOST}:${ports[e.id].ws}`,
			wss: `${HOST}:${ports[e.id].wss}`,
		}),
	});
	c.ports = ports;
	c.wsUrl = (id = 1, secure = false) =>
		secure ? `wss://${HOST}:${ports[id].wss}` : `ws://${HOST}:${ports[id].ws}`;
	c.tcpDest = (id = 1) => ({ host: HOST, port: c.edge(id).port });
	c.tlsDest = (id = 1) => ({ host: HOST, port: ports[id].tls });
	return c;
}

const SDP = (user) => 'v=0\r\no=' + user + ' 1 1 IN IP4 127.0.0.1\r\ns=-\r\n' +
	'c=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n';

/* A session description handler that only swaps a fixed SDP. */
function stubSdhFactory(user) {
	return () => ({
		getDescription: () => Promise.resolve({ body: SDP(user), contentType: 'application/sdp' }),
		setDescription: () => Promise.resolve(),
		hasDescription: (ct) => ct === 'application/sdp',
		rollbackDescription: () => Promise.resolve(),
		sendDtmf: () => false,
		close: () => {},
	});
}

/*
 * A SIP.js UserAgent (+ Registerer) that records what reaches it:
 * MESSAGE bodies, INVITEs (answered 180 then 200 unless told
 * otherwise) and BYEs of its sessions.  Every SIP message it sends
 * or receives is kept in .log for failure reports.
 */
class SipJsUA {
	static async open(o) {
		const u = new SipJsUA(o);
		await u.start();
		if (o.register !== false) await u.register(o.expires || 300);
		return u;
	}

	constructor(o) {
		this.o = o;
		this.user = o.user;
		this.domain = o.domain || 'ws.test';
		this.aor = `sip:${this.user}@${this.domain}`;
		this.messages = [];
		this.invites = [];
		this.byes = [];
		this.log = [];
		this.waiters = new Set();
		this.answer = o.answer !== false;
		this.ua = new SIP.UserAgent({
			uri: SIP.UserAgent.makeURI(this.aor),
			transportOptions: { server: o.server, traceSip: false },
			logLevel: 'error',
			logBuiltinEnabled: false,
			logConnector: (level, category, label, content) => {
				if (this.log.length < 2000) this.log.push(`${level} ${category}: ${content}`);
			},
			sessionDescriptionHandlerFactory: stubSdhFactory(this.user),
			/* o.uaOptions: more SIP.UserAgent options (credentials). */
			...(o.uaOptions || {}),
			delegate: {
				onMessage: (m) => {
					this.messages.push({ from: m.request.from.uri.toString(), body: m.request.body });
					m.accept();
					this._wake();
				},
				onInvite: (inv) => {
					this.invites.push(inv);
					this._watch(inv);
					if (this.answer) {
						inv.progress().then(() => inv.accept()).catch(() => {});
					}
					this._wake();
				},
			},
		});
	}

	_wake() {
		for (const w of this.waiters) w();
	}

	_watch(session) {
		session.delegate = {
			onBye: (bye) => { this.byes.push(bye.request.callId); bye.accept(); this._wake(); },
		};
		session.stateChange.addListener(() => this._wake());
	}

	/* Resolves once cond() is true (checked on every event), or rejects. */
	waitFor(cond, ms, what) {
		if (cond()) return Promise.resolve();
		let w;
		const p = new Promise((res) => {
			w = () => { if (cond()) res(); };
			this.waiters.add(w);
		});
		return within(p, ms, `${this.user}: ${what}`).finally(() => this.waiters.delete(w));
	}

	async start() {
		await within(this.ua.start(), 5000, `${this.user}: WebSocket to ${this.o.server}`);
	}

	async register(expires) {
		this.registerer = new SIP.Registerer(this.ua, { expires });
		const ok = new Promise((res, rej) => {
			const l = (s) => {
				if (s === SIP.RegistererState.Registered) res();
				if (s === SIP.RegistererState.Terminated) rej(new Error('terminated'));
			};
			this.registerer.stateChange.addListener(l);
		});
		let rejected = null;
		await this.registerer.register({
			requestDelegate: { onReject: (r) => { rejected = r.message.statusCode; } },
		});
		await within(Promise.race([ok, waitUntil(() => rejected !== null, 5000, 'reply')
			.then(() => { throw new Error(`REGISTER rejected with ${rejected}`); })]),
		5000, `${this.user}: REGISTER`);
	}

	async unregister() {
		const done = new Promise((res) => {
			this.registerer.stateChange.addListener((s) => {
				if (s === SIP.RegistererState.Unregistered) res();
			});
		});
		await this.registerer.unregister();
		await within(done, 5000, `${this.user}: un-REGISTER`);
	}

	/* Sends a MESSAGE; resolves with the final status code. */
	message(target, body) {
		const m = new SIP.Messager(this.ua, SIP.UserAgent.makeURI(target), body);
		return within(new Promise((res, rej) => {
			m.message({
				requestDelegate: {
					onAccept: (r) => res(r.message.statusCode),
					onReject: (r) => res(r.message.statusCode),
				},
			}).catch(rej);
		}), 10000, `${this.user}: MESSAGE to ${target}`);
	}

	/* Calls target; resolves with the established Inviter. */
	async invite(target) {
		const inv = new SIP.Inviter(this.ua, SIP.UserAgent.makeURI(target));
		this._watch(inv);
		let failed = null;
		await inv.invite({
			requestDelegate: { onReject: (r) => { failed = r.message.statusCode; this._wake(); } },
		});
		await this.waitFor(() => inv.state === SIP.SessionState.Established || failed !== null,
			10000, `INVITE to ${target} answered`);
		if (failed !== null) throw new Error(`INVITE to ${target} failed with ${failed}`);
		return inv;
	}

	/* Ends an established session with BYE and waits until it ended. */
	async bye(session) {
		await session.bye();
		await this.waitFor(() => session.state === SIP.SessionState.Terminated, 10000, 'BYE answered');
	}

	waitMessage(body, ms = 5000) {
		return this.waitFor(() => this.messages.some((m) => m.body === body), ms, `MESSAGE "${body}"`);
	}

	async stop() {
		try { await within(this.ua.stop(), 3000, 'stop'); } catch { /* best effort */ }
	}

	/* The Contact URI it registers (sip:<random>@<random>.invalid;transport=ws). */
	get contactUri() {
		return this.ua.contact.uri.toString();
	}

	/* The underlying `ws` socket, to kill it without a goodbye. */
	get socket() {
		return this.ua.transport && this.ua.transport._ws;
	}
}

/* A JsSIP UA (register: true): records MESSAGE bodies.  password:
 * digest credentials for user (JsSIP answers 401/407 with MD5 only). */
async function jssipUA({ user, domain = 'ws.test', server, password }) {
	JsSIP.debug.disable('JsSIP:*');
	const socket = new JsSIP.WebSocketInterface(server);
	const ua = new JsSIP.UA({
		sockets: [socket], uri: `sip:${user}@${domain}`, register: true,
		register_expires: 300, session_timers: false, user_agent: 'jssip-integ',
		...(password ? { password, authorization_user: user } : {}),
	});
	const u = { ua, user, messages: [] };
	ua.on('newMessage', (e) => {
		if (e.originator === 'remote') u.messages.push(e.request.body);
	});
	const reg = new Promise((res, rej) => {
		ua.on('registered', res);
		ua.on('registrationFailed', (e) => rej(new Error(`JsSIP REGISTER failed: ${e.cause}`)));
	});
	ua.start();
	try {
		await within(reg, 5000, `JsSIP ${user}: REGISTER`);
	} catch (e) {
		ua.stop();
		throw e;
	}
	u.message = (target, body) => within(new Promise((res) => {
		ua.sendMessage(target, body, {
			eventHandlers: {
				succeeded: (e) => res(e.response.status_code),
				failed: (e) => res(e.response ? e.response.status_code : e.cause),
			},
		});
	}), 10000, `JsSIP ${user}: MESSAGE`);
	u.stop = () => new Promise((res) => {
		ua.on('disconnected', () => res());
		ua.stop();
		setTimeout(res, 2000).unref();
	});
	return u;
}

/*
 * SIP over one TCP or TLS connection, with Content-Length framing:
 * send() writes a request and resolves with its final response;
 * requests the peer sends are queued for waitRequest().
 */
class StreamUA {
	static open({ host = HOST, port, secure = false }) {
		const u = new StreamUA(secure);
		return new Promise((res, rej) => {
			const s = secure ?
				tls.connect({ host, port, rejectUnauthorized: false }, () => res(u)) :
				net.connect({ host, port }, () => res(u));
			s.once('error', rej);
			u.attach(s);
		});
	}

	constructor(secure) {
		this.secure = secure;
		this.transport = secure ? 'TLS' : 'TCP';
		this.buf = Buffer.alloc(0);
		this.responses = [];
		this.requests = [];
		this.waiters = new Set();
		this.transcript = [];
		this.closed = false;
	}

	attach(s) {
		this.sock = s;
		s.on('data', (d) => { this.buf = Buffer.concat([this.buf, d]); this._frames(); });
		s.on('close', () => { this.closed = true; this._wake(); });
		s.on('error', () => {});
	}

	get local() {
		return { host: this.sock.localAddress, port: this.sock.localPort };
	}

	_wake() {
		for (const w of this.waiters) w();
	}

	_frames() {
		for (;;) {
			while (this.buf.length && (this.buf[0] === 13 || this.buf[0] === 10)) {
				if (this.buf.length >= 2 && this.buf[0] === 13 && this.buf[1] === 10) {
					this.transcript.push('<< CRLF');
					this.pongs = (this.pongs || 0) + 1;
					this.buf = this.buf.subarray(2);
				} else {
					this.buf = this.buf.subarray(1);
				}
			}
			const end = this.buf.indexOf('\r\n\r\n');
			if (end < 0) break;
			const head = this.buf.toString('latin1', 0, end);
			const m = /^(?:content-length|l)\s*:\s*(\d+)/im.exec(head);
			const len = end + 4 + (m ? Number(m[1]) : 0);
			if (this.buf.length < len) break;
			const raw = this.buf.subarray(0, len);
			this.buf = this.buf.subarray(len);
			this.transcript.push(`<< ${raw.toString('latin1')}`);
			const msg = parse(raw);
			if (msg.isResponse) this.responses.push(msg); else this.requests.push(msg);
			this._wake();
		}
	}

	waitFor(cond, ms, what) {
		const v = cond();
		if (v) return Promise.resolve(v);
		let w;
		const p = new Promise((res) => {
			w = () => { const r = cond(); if (r) res(r); };
			this.waiters.add(w);
		});
		return within(p, ms, `${this.transport} client: ${what}`).finally(() => this.waiters.delete(w));
	}

	write(raw) {
		this.transcript.push(`>> ${Buffer.isBuffer(raw) ? raw.toString('latin1') : raw}`);
		this.sock.write(raw);
	}

	/* Writes a request built by sip.js buildRequest(o) with this
	 * connection's Via; returns its branch. */
	request(o) {
		const branch = newBranch();
		const { host, port } = this.local;
		this.write(buildRequest({
			fromTag: rand(6), callId: `${rand(10)}@stream.test`, cseq: 1,
			contact: `<sip:${o.user || 'u'}@${host}:${port};transport=${this.transport.toLowerCase()}>`,
			...o,
			branch,
			replace: {
				via: `SIP/2.0/${this.transport} ${host}:${port};branch=${branch};rport`,
				...(o.replace || {}),
			},
		}));
		return branch;
	}

	/* request(o), then resolves with its final response. */
	send(o, ms = 5000) {
		const branch = this.request(o);
		return this.waitFor(() => this.responses.find((r) => r.status >= 200 &&
			r.branch === branch), ms, `final response to ${o.method}`);
	}

	waitRequest(pred, ms = 5000, what = 'request') {
		return this.waitFor(() => this.requests.find(pred), ms, what);
	}

	/* Answers a request (To tag added, Record-Route copied, our Contact). */
	reply(req, status, reason, o = {}) {
		const { host, port } = this.local;
		this.tag = this.tag || rand(6);
		this.write(buildResponse(req, status, reason, {
			toTag: this.tag, contentType: 'application/sdp', body: o.body,
			headers: [['Contact', `<sip:callee@${host}:${port};transport=${this.transport.toLowerCase()}>`]],
		}));
	}

	close() {
		if (this.sock && !this.sock.destroyed) this.sock.destroy();
	}
}

/*
 * StreamUA over a WebSocket (subprotocol sip), one SIP message per
 * WebSocket message, from a chosen local address (localAddress, any
 * 127.0.0.x): the kernel spreads connections over edges that share a
 * port by their addresses and ports.  .local is kept from the open
 * socket, .closed turns true when the connection drops.
 */
class WsUA extends StreamUA {
	static open({ url, localAddress }) {
		const u = new WsUA(url.startsWith('wss:'));
		return new Promise((res, rej) => {
			const s = new WS(url, 'sip', { rejectUnauthorized: false, localAddress, perMessageDeflate: false });
			s.once('open', () => {
				u.addr = { host: s._socket.localAddress, port: s._socket.localPort };
				res(u);
			});
			s.once('error', rej);
			u.attach(s);
		});
	}

	constructor(secure) {
		super(secure);
		this.transport = secure ? 'WSS' : 'WS';
	}

	attach(s) {
		this.sock = s;
		s.on('message', (d) => {
			const raw = Buffer.from(d);
			this.transcript.push(`<< ${raw.toString('latin1')}`);
			const msg = parse(raw);
			if (msg && msg.isResponse) this.responses.push(msg);
			else if (msg) this.requests.push(msg);
			this._wake();
		});
		s.on('close', () => {
			this.closed = true;
			this.closedAt = Date.now();
			this._wake();
		});
		s.on('error', () => {});
	}

	get local() {
		return this.addr;
	}

	write(raw) {
		const text = Buffer.isBuffer(raw) ? raw.toString('latin1') : raw;
		this.transcript.push(`>> ${text}`);
		this.sock.send(text);
	}

	close() {
		this.sock.terminate();
	}
}

/* Opens a raw WebSocket with subprotocol sip; resolves when open. */
function rawWs(url, opts = {}) {
	return new Promise((res, rej) => {
		const s = new WS(url, 'sip', { rejectUnauthorized: false, ...opts });
		s.once('open', () => res(s));
		s.once('error', rej);
	});
}

/* Resolves with {code, reason} when the WebSocket closes. */
/*
 * A raw TCP connection (net.connect options: host, port, localAddress,
 * family) that sends hello first: a CRLF keepalive, or '' for a silent
 * one (the edge accepts a connection with its first bytes,
 * defer_accept_s).  .buf gathers what comes back, .closedAt resolves
 * with the time it closed.
 */
function rawTcp(opts, hello = '\r\n\r\n') {
	return new Promise((res, rej) => {
		const s = net.connect(opts);
		s.buf = '';
		s.closedAt = new Promise((r) => s.once('close', () => r(Date.now())));
		s.on('data', (d) => { s.buf += d.toString('latin1'); });
		s.once('error', rej);
		s.once('connect', () => {
			s.removeListener('error', rej);
			s.on('error', () => {});
			if (hello) s.write(hello);
			res(s);
		});
	});
}

/* Whether rawTcp connection s is closed within ms (true) or not. */
function closedWithin(s, ms) {
	return Promise.race([s.closedAt.then(() => true), new Promise((r) => setTimeout(() => r(false), ms))]);
}

function wsClosed(s, ms = 5000) {
	return within(new Promise((res) => s.once('close', (code, reason) => res({ code, reason: String(reason) }))),
		ms, 'WebSocket close');
}

/*
 * c.test for tests that open SIP.js users: the users pushed on the
 * returned `open` list are stopped after each test, passed or failed.
 * Returns {open, test}.
 */
/* KwikyKonf guest credentials from edge 1 of c for room, asked from
 * address `from`: {user, username, password, expires}. */
function guestCreds(c, room, from = '127.0.0.1') {
	return new Promise((res, rej) => {
		http.get({ host: '127.0.0.1', port: c.ports[1].ws, path: `/kk/guest?room=${room}`, localAddress: from, agent: false },
			(r) => {
				let b = '';
				r.on('data', (d) => { b += d; });
				r.on('end', () => (r.statusCode === 200 ? res(JSON.parse(b)) :
					rej(new Error(`/kk/guest?room=${room}: ${r.statusCode} ${b}`))));
			}).on('error', rej);
	});
}

function sipjsTests(c) {
	const open = [];
	const test = (name, fn) => c.test(name, async (t) => {
		try {
			await fn(t);
		} finally {
			for (const u of open.splice(0)) await u.stop();
		}
	});
	return { open, test };
}

module.exports = {
	sipjsTests, streamCluster, tlsPair, SipJsUA, jssipUA, StreamUA, WsUA, rawWs, rawTcp, closedWithin, wsClosed,
	within, SDP, guestCreds,
	NodeWebSocket, assert,
};
