'use strict';
/*
 * sipmesh bench: WebSocket load generator (run by bench.py, scenario
 * "ws").  Opens --count WebSocket connections (subprotocol "sip") to
 * --url, spreading them over the --src loopback source addresses (each
 * source address has its own ~28k ephemeral ports), sends one REGISTER
 * per connection the way SIP.js does (Via SIP/2.0/WS <random>.invalid,
 * Contact <sip:...@<random>.invalid;transport=ws>) and keeps every
 * connection open.  At most --window connections are connecting or
 * waiting for their 200 at a time.
 *
 * When all are done it prints one JSON line on stdout:
 *   {"ready":true,"registered":N,"failed":N,"errors":{...},
 *    "connect_ms":[p50,p90,p99,max],"register_ms":[p50,p90,p99,max],
 *    "elapsed_s":S,...}
 * (connect: TCP connect + WebSocket upgrade; register: REGISTER sent
 * -> 200 received)
 * then waits, answering a MESSAGE with 200 as SIP.js does (other
 * requests are ignored).  A line "status" on stdin prints
 * {"open":N,"closed":N,"messages":N} (MESSAGEs answered); end of stdin
 * (or SIGTERM) closes every connection and exits.
 *
 * Loopback only: the URL and the source addresses must be 127.0.0.0/8.
 * Needs the `ws` package (bench/package.json; bench/run.sh installs it).
 */
const WebSocket = require('ws');
const crypto = require('node:crypto');
const readline = require('node:readline');

function arg(name, def) {
	const i = process.argv.indexOf(`--${name}`);
	return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : def;
}

const url = arg('url');
const count = Number(arg('count', '1000'));
const first = Number(arg('first', '0'));	/* user numbers first .. first+count-1 */
const srcs = arg('src', '127.0.0.1').split(',').filter(Boolean);
const domain = arg('domain', 'ws.test');
const windowSize = Number(arg('window', '100'));
const expires = Number(arg('expires', '3600'));
const timeoutMs = Number(arg('timeout-ms', '15000'));
const tag = arg('tag', String(process.pid));

if (!url || !/^wss?:\/\/127\./.test(url) || srcs.some((s) => !s.startsWith('127.'))) {
	console.error('wsload: --url ws://127.x.x.x:PORT and --src 127.x.x.x only (loopback)');
	process.exit(2);
}

const rnd = (n) => crypto.randomBytes(n).toString('hex').slice(0, n);
const socks = [];
const connectMs = [];
const registerMs = [];
const errors = {};
let registered = 0, failed = 0, done = 0, next = 0, inflight = 0, closed = 0, messages = 0;
const t0 = Date.now();

function err(what) {
	errors[what] = (errors[what] || 0) + 1;
}

function register(i, host) {
	const user = `ws${first + i}`;
	const branch = `z9hG4bK${rnd(7)}`;
	return [
		`REGISTER sip:${domain} SIP/2.0`,
		`Via: SIP/2.0/WS ${host}.invalid;branch=${branch}`,
		'Max-Forwards: 70',
		`To: <sip:${user}@${domain}>`,
		`From: <sip:${user}@${domain}>;tag=${rnd(10)}`,
		`Call-ID: ${rnd(22)}`,
		'CSeq: 1 REGISTER',
		`Contact: <sip:${rnd(8)}@${host}.invalid;transport=ws>;expires=${expires}`,
		`Expires: ${expires}`,
		'Allow: ACK,CANCEL,INVITE,MESSAGE,BYE,OPTIONS,INFO,NOTIFY,REFER',
		'Supported: path, gruu',
		'User-Agent: sipmesh-bench-wsload',
		'Content-Length: 0',
		'', '',
	].join('\r\n');
}

/* 200 to a MESSAGE: its Via, From, To (tagged), Call-ID and CSeq. */
function answer(s, text) {
	const head = text.slice(0, text.indexOf('\r\n\r\n'));
	const lines = head.split('\r\n').slice(1);
	const keep = (re) => lines.filter((l) => re.test(l));
	const to = keep(/^(to|t)\s*:/i).map((l) => (/;\s*tag=/i.test(l) ? l : `${l};tag=${rnd(8)}`));
	const out = ['SIP/2.0 200 OK', ...keep(/^(via|v)\s*:/i), ...keep(/^(from|f)\s*:/i), ...to,
		...keep(/^(call-id|i)\s*:/i), ...keep(/^cseq\s*:/i), 'Content-Length: 0', '', ''];
	s.send(out.join('\r\n'));
	messages++;
}

function finish(ok, what) {
	if (ok) registered++;
	else { failed++; err(what); }
	done++;
	inflight--;
	pump();
}

function open(i) {
	inflight++;
	const host = rnd(12);
	const ts = Date.now();
	let tReg = 0, settled = false;
	const s = new WebSocket(url, 'sip', {
		localAddress: srcs[i % srcs.length], perMessageDeflate: false,
		handshakeTimeout: timeoutMs,
	});
	socks.push(s);
	const timer = setTimeout(() => {
		if (!settled) { settled = true; finish(false, tReg ? 'REGISTER timeout' : 'connect timeout'); }
	}, timeoutMs);
	s.on('open', () => {
		connectMs.push(Date.now() - ts);
		tReg = Date.now();
		s.send(register(i, host));
	});
	s.on('message', (data) => {
		const text = data.toString('latin1');
		const m = /^SIP\/2\.0 (\d{3})/.exec(text);
		if (!m) {
			if (text.startsWith('MESSAGE ')) answer(s, text);
			return;				/* another request: ignored */
		}
		const code = Number(m[1]);
		if (code < 200 || settled) return;
		settled = true;
		clearTimeout(timer);
		if (code === 200) {
			registerMs.push(Date.now() - tReg);
			finish(true);
		} else {
			finish(false, `REGISTER ${code}`);
		}
	});
	s.on('error', (e) => {
		if (!settled) {
			settled = true;
			clearTimeout(timer);
			finish(false, `error ${e.code || e.message}`);
		}
	});
	s.on('close', () => {
		closed++;
		if (!settled) {
			settled = true;
			clearTimeout(timer);
			finish(false, 'closed before 200');
		}
	});
}

function pct(arr) {
	if (!arr.length) return [null, null, null, null];
	const a = arr.slice().sort((x, y) => x - y);
	const q = (p) => a[Math.min(a.length - 1, Math.max(0, Math.ceil(p / 100 * a.length) - 1))];
	return [q(50), q(90), q(99), a[a.length - 1]];
}

let reported = false;
function pump() {
	while (inflight < windowSize && next < count) open(next++);
	if (done === count && !reported) {
		reported = true;
		process.stdout.write(JSON.stringify({
			ready: true, registered, failed, errors, connect_ms: pct(connectMs),
			register_ms: pct(registerMs), elapsed_s: (Date.now() - t0) / 1000,
			closed, rss: process.memoryUsage().rss,
		}) + '\n');
	}
}

function shutdown() {
	for (const s of socks) {
		try { s.terminate(); } catch { /* gone */ }
	}
	setTimeout(() => process.exit(0), 200).unref();
}

const rl = readline.createInterface({ input: process.stdin });
rl.on('line', (l) => {
	if (l.trim() === 'status') {
		const open = socks.filter((s) => s.readyState === WebSocket.OPEN).length;
		process.stdout.write(JSON.stringify({ open, closed, messages }) + '\n');
	}
});
rl.on('close', shutdown);
process.on('SIGTERM', shutdown);
pump();
