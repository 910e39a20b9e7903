'use strict';
/*
 * sip.js - a tiny SIP-over-UDP user agent for precise assertions.
 *
 * sipp drives whole calls; this drives single requests whose responses
 * the tests pick apart (the Contact list of a REGISTER's 200, a
 * Min-Expires header, the exact status of a malformed request), and
 * plays a callee that records what the proxy delivered to it.
 *
 * It builds requests from parts (any part can be left out or replaced
 * by raw text, so broken requests are easy), retransmits them as a
 * UDP client transaction does (T1 doubling up to T2; an INVITE stops
 * on the first response), matches responses by the top Via branch,
 * ACKs non-2xx INVITE answers, and answers incoming requests through a
 * handler.  Every datagram in and out is kept in a transcript that the
 * harness prints when a test fails.
 */
const dgram = require('node:dgram');
const crypto = require('node:crypto');

const T1 = 500;
const T2 = 4000;

const COMPACT = {
	i: 'call-id', m: 'contact', e: 'content-encoding', l: 'content-length',
	c: 'content-type', f: 'from', s: 'subject', k: 'supported', t: 'to',
	v: 'via', r: 'refer-to', o: 'event', u: 'allow-events',
	x: 'session-expires',
};

function rand(n = 8) {
	return crypto.randomBytes(n).toString('hex');
}

function newBranch() {
	return 'z9hG4bK-integ-' + rand(8);
}

/* Splits a header value at commas that are outside quotes and <>. */
function splitComma(v) {
	const out = [];
	let cur = '', q = false, ang = false;
	for (let i = 0; i < v.length; i++) {
		const ch = v[i];
		if (ch === '\\' && q) { cur += ch + (v[++i] || ''); continue; }
		if (ch === '"') q = !q;
		else if (!q && ch === '<') ang = true;
		else if (!q && ch === '>') ang = false;
		if (ch === ',' && !q && !ang) { out.push(cur.trim()); cur = ''; continue; }
		cur += ch;
	}
	if (cur.trim() !== '') out.push(cur.trim());
	return out;
}

function parseParams(s) {
	const params = {};
	for (const p of s.split(';')) {
		const t = p.trim();
		if (!t) continue;
		const eq = t.indexOf('=');
		if (eq < 0) params[t.toLowerCase()] = '';
		else params[t.slice(0, eq).trim().toLowerCase()] = t.slice(eq + 1).trim();
	}
	return params;
}

/* "Name" <sip:u@h;x>;tag=1 -> {display, uri, params}; also bare URIs. */
function parseNameAddr(v) {
	v = v.trim();
	if (v === '*') return { display: '', uri: '*', params: {} };
	const lt = v.indexOf('<');
	if (lt >= 0) {
		const gt = v.indexOf('>', lt);
		const uri = v.slice(lt + 1, gt < 0 ? undefined : gt);
		const rest = gt < 0 ? '' : v.slice(gt + 1);
		return {
			display: v.slice(0, lt).trim().replace(/^"|"$/g, ''),
			uri, params: parseParams(rest),
		};
	}
	const semi = v.indexOf(';');
	return {
		display: '',
		uri: semi < 0 ? v : v.slice(0, semi),
		params: semi < 0 ? {} : parseParams(v.slice(semi + 1)),
	};
}

/* sip:user@host:port;params -> {scheme, user, host, port, params}. */
function parseUri(u) {
	const m = /^(sips?):(?:([^@]*)@)?(\[[^\]]+\]|[^:;?>]+)(?::(\d+))?([^?]*)/i.exec(u.trim());
	if (!m) return null;
	return {
		scheme: m[1].toLowerCase(), user: m[2] === undefined ? null : m[2],
		host: m[3].toLowerCase(), port: m[4] ? Number(m[4]) : null,
		params: parseParams(m[5] || ''),
	};
}

class SipMessage {
	constructor(raw) {
		this.raw = raw;			/* Buffer */
		this.headers = [];		/* [{name (canonical lower), value}] */
	}
	get(name) {
		name = name.toLowerCase();
		const h = this.headers.find((x) => x.name === name);
		return h ? h.value : undefined;
	}
	all(name) {
		name = name.toLowerCase();
		return this.headers.filter((x) => x.name === name).map((x) => x.value);
	}
	/* Every comma-separated element of every header of that name. */
	list(name) {
		return this.all(name).flatMap(splitComma);
	}
	has(name) {
		return this.get(name) !== undefined;
	}
	get callId() { return this.get('call-id'); }
	get cseq() {
		const m = /^\s*(\d+)\s+(\S+)/.exec(this.get('cseq') || '');
		return m ? { num: Number(m[1]), method: m[2] } : null;
	}
	get topVia() {
		const v = this.list('via')[0];
		if (!v) return null;
		const semi = v.indexOf(';');
		return {
			sentBy: (semi < 0 ? v : v.slice(0, semi)).trim(),
			params: semi < 0 ? {} : parseParams(v.slice(semi + 1)),
			raw: v,
		};
	}
	get branch() {
		const v = this.topVia;
		return v ? v.params.branch : undefined;
	}
	/* Contacts as [{uri, params, expires}] (expires: param, else null). */
	contacts() {
		return this.list('contact').map((c) => {
			const na = parseNameAddr(c);
			return {
				uri: na.uri, params: na.params, display: na.display,
				expires: na.params.expires !== undefined ? Number(na.params.expires) : null,
			};
		});
	}
	get text() { return this.raw.toString('latin1'); }
}

/* Parses one datagram; returns a SipMessage or null if it is not SIP. */
function parse(buf) {
	const s = buf.toString('latin1');
	const end = s.indexOf('\r\n\r\n');
	const head = end < 0 ? s : s.slice(0, end);
	const lines = head.split('\r\n');
	const m = new SipMessage(buf);
	const first = lines.shift();
	let r;
	if ((r = /^SIP\/2\.0 (\d{3}) ?(.*)$/.exec(first))) {
		m.isResponse = true;
		m.status = Number(r[1]);
		m.reason = r[2];
	} else if ((r = /^([A-Za-z]+) (\S+) SIP\/2\.0$/.exec(first))) {
		m.isResponse = false;
		m.method = r[1];
		m.ruri = r[2];
	} else {
		return null;
	}
	for (const line of lines) {
		if (/^[ \t]/.test(line) && m.headers.length) {
			m.headers[m.headers.length - 1].value += ' ' + line.trim();
			continue;
		}
		const c = line.indexOf(':');
		if (c <= 0) continue;
		let name = line.slice(0, c).trim().toLowerCase();
		if (COMPACT[name]) name = COMPACT[name];
		m.headers.push({ name, value: line.slice(c + 1).trim() });
	}
	const bodyStart = end < 0 ? buf.length : end + 4;
	const cl = m.get('content-length');
	const len = cl === undefined ? buf.length - bodyStart : Number(cl);
	m.body = buf.subarray(bodyStart, Math.min(buf.length, bodyStart + (Number.isFinite(len) ? len : 0)));
	return m;
}

function canonicalName(n) {
	const special = { 'call-id': 'Call-ID', cseq: 'CSeq', 'www-authenticate': 'WWW-Authenticate' };
	if (special[n.toLowerCase()]) return special[n.toLowerCase()];
	return n.split('-').map((w) => w.charAt(0).toUpperCase() + w.slice(1)).join('-');
}

/*
 * Builds a request.  o: {method, ruri, via (sent-by), branch, from, to,
 * fromTag, toTag, callId, cseq, maxForwards, contact, expires, headers
 * ([[name, value]]), body, contentType, omit ([lower names]), replace
 * ({lowername: raw value})}.  Returns a Buffer.
 */
function buildRequest(o) {
	const omit = new Set((o.omit || []).map((x) => x.toLowerCase()));
	const rep = o.replace || {};
	const h = [];
	const add = (name, value) => {
		const k = name.toLowerCase();
		if (omit.has(k)) return;
		if (k in rep) {
			if (rep[k] !== null) h.push(`${canonicalName(name)}: ${rep[k]}`);
			return;
		}
		if (value !== undefined && value !== null) h.push(`${canonicalName(name)}: ${value}`);
	};
	add('Via', `SIP/2.0/UDP ${o.via};branch=${o.branch};rport`);
	add('Max-Forwards', o.maxForwards === undefined ? 70 : o.maxForwards);
	add('From', `<${o.from}>;tag=${o.fromTag}`);
	add('To', o.toTag ? `<${o.to}>;tag=${o.toTag}` : `<${o.to}>`);
	add('Call-ID', o.callId);
	add('CSeq', `${o.cseq} ${o.cseqMethod || o.method}`);
	for (const c of [].concat(o.contact === undefined ? [] : o.contact))
		add('Contact', c);
	if (o.expires !== undefined) add('Expires', o.expires);
	for (const [n, v] of o.headers || []) add(n, v);
	const body = o.body === undefined ? Buffer.alloc(0) : Buffer.from(o.body);
	if (body.length) add('Content-Type', o.contentType || 'text/plain');
	add('Content-Length', body.length);
	const head = `${o.method} ${o.ruri} SIP/2.0\r\n${h.join('\r\n')}\r\n\r\n`;
	return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/*
 * Builds a response to req.  Copies Via, From, To (adding toTag when
 * To has none), Call-ID, CSeq and Record-Route (for 18x/2xx).
 */
function buildResponse(req, status, reason, o = {}) {
	const lines = [`SIP/2.0 ${status} ${reason || ''}`.trimEnd()];
	for (const v of req.all('via')) lines.push(`Via: ${v}`);
	lines.push(`From: ${req.get('from')}`);
	let to = req.get('to') || '';
	if (!/;\s*tag=/i.test(to) && status > 100) to += `;tag=${o.toTag || rand(4)}`;
	lines.push(`To: ${to}`);
	lines.push(`Call-ID: ${req.get('call-id')}`);
	lines.push(`CSeq: ${req.get('cseq')}`);
	if (status > 100 && status < 300)
		for (const rr of req.all('record-route')) lines.push(`Record-Route: ${rr}`);
	for (const [n, v] of o.headers || []) lines.push(`${n}: ${v}`);
	const body = Buffer.from(o.body || '');
	if (body.length) lines.push(`Content-Type: ${o.contentType || 'text/plain'}`);
	lines.push(`Content-Length: ${body.length}`);
	return Buffer.concat([Buffer.from(lines.join('\r\n') + '\r\n\r\n', 'latin1'), body]);
}

function fmtTime(t0) {
	return ((Date.now() - t0) / 1000).toFixed(3).padStart(7);
}

/* Shows a datagram readably: printable latin1, other bytes as \xNN. */
function showBytes(buf, max = 4096) {
	let s = '';
	const n = Math.min(buf.length, max);
	for (let i = 0; i < n; i++) {
		const b = buf[i];
		if (b === 0x0d && buf[i + 1] === 0x0a) { s += '\n'; i++; continue; }
		if (b === 0x0a || (b >= 0x20 && b < 0x7f)) s += String.fromCharCode(b);
		else s += '\\x' + b.toString(16).padStart(2, '0');
	}
	if (buf.length > max) s += `\n... (${buf.length - max} more bytes)`;
	return s;
}

class Transcript {
	constructor(label) {
		this.label = label;
		this.t0 = Date.now();
		this.entries = [];
		this.bytes = 0;
	}
	add(dir, peer, buf) {
		const text = `[${fmtTime(this.t0)}s] ${this.label} ${dir} ${peer} (${buf.length} bytes)\n${showBytes(buf, 2048)}`;
		this.entries.push(text);
		this.bytes += text.length;
		/* Keep the end, where failures are. */
		while (this.bytes > 48000 && this.entries.length > 4)
			this.bytes -= this.entries.shift().length;
	}
	toString() { return this.entries.join('\n\n'); }
}

class Transaction {
	constructor(ua, dest, raw, req) {
		this.ua = ua;
		this.dest = dest;
		this.raw = raw;
		this.req = req;
		this.branch = req.branch;
		this.method = req.method;
		this.responses = [];
		this.final = null;
		this.waiters = [];
		this.timer = null;
	}
	_onResponse(res) {
		this.responses.push(res);
		if (this.timer && (this.method === 'INVITE' || res.status >= 200)) {
			clearTimeout(this.timer);
			this.timer = null;
		}
		if (res.status >= 200 && this.method === 'INVITE' && res.status >= 300)
			this.ua._ackNon2xx(this, res);
		if (res.status >= 200 && !this.final) this.final = res;
		for (const w of this.waiters.slice()) w();
	}
	/* Resolves with the first response matching pred, within ms. */
	waitFor(pred, ms, what) {
		return new Promise((resolve, reject) => {
			const check = () => {
				const r = this.responses.find(pred);
				if (r) { done(); resolve(r); return true; }
				return false;
			};
			const done = () => {
				clearTimeout(to);
				this.waiters = this.waiters.filter((w) => w !== check);
			};
			const to = setTimeout(() => {
				done();
				reject(new Error(`${this.ua.label}: no ${what} to ${this.method} ` +
					`(branch ${this.branch}, Call-ID ${this.req.callId}) to ` +
					`${this.dest.host}:${this.dest.port} within ${ms} ms; got ` +
					`[${this.responses.map((x) => x.status).join(', ')}]`));
			}, ms);
			if (!check()) this.waiters.push(check);
		});
	}
	finalResponse(ms = 5000) {
		return this.waitFor((r) => r.status >= 200, ms, 'final response');
	}
}

class SipUA {
	/*
	 * opts: {label, host ('127.0.0.1'), port (0 = any)}.  Use
	 * SipUA.open(); close() when done.
	 */
	constructor(opts = {}) {
		this.label = opts.label || 'ua';
		this.host = opts.host || '127.0.0.1';
		this.wantPort = opts.port || 0;
		this.sock = dgram.createSocket({ type: 'udp4' });
		this.txns = new Map();		/* branch -> Transaction */
		this.requests = [];		/* incoming requests, in order */
		this.stray = [];		/* responses matching no transaction */
		this.garbage = [];		/* datagrams that did not parse */
		this.reqWaiters = [];
		this.transcript = new Transcript(this.label);
		this.closed = false;
		this.toTag = rand(4);
		/*
		 * handler(req) -> status number, or {status, reason, headers,
		 * body, contentType}, or an array of those (sent in order), or null for no
		 * answer.  Default: 200 to everything but ACK.
		 */
		this.handler = () => 200;
		this.sock.on('message', (buf, rinfo) => this._onMessage(buf, rinfo));
	}

	static async open(opts) {
		const ua = new SipUA(opts);
		await new Promise((resolve, reject) => {
			ua.sock.once('error', reject);
			ua.sock.bind(ua.wantPort, ua.host, () => {
				ua.sock.removeListener('error', reject);
				ua.sock.on('error', () => {});
				resolve();
			});
		});
		ua.port = ua.sock.address().port;
		return ua;
	}

	get addr() { return `${this.host}:${this.port}`; }

	/* Contact URI of this UA for user. */
	contactUri(user) {
		return `sip:${user}@${this.host}:${this.port}`;
	}

	sendRaw(dest, buf) {
		if (typeof buf === 'string') buf = Buffer.from(buf, 'latin1');
		this.transcript.add('->', `${dest.host}:${dest.port}`, buf);
		return new Promise((resolve, reject) => {
			this.sock.send(buf, dest.port, dest.host, (err) => (err ? reject(err) : resolve()));
		});
	}

	/*
	 * Sends a request built from o (see buildRequest) to dest
	 * ({host, port}); returns its Transaction at once.  Defaults:
	 * From/To derived from o.aor, fresh Call-ID, tag and branch.
	 */
	request(dest, o) {
		o = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
		const aor = o.aor || `sip:${this.label}@integ.test`;
		const full = {
			via: this.addr,
			branch: o.branch || newBranch(),
			from: o.from || aor,
			fromTag: o.fromTag || rand(4),
			to: o.to || aor,
			callId: o.callId || `${rand(10)}@integ`,
			cseq: o.cseq === undefined ? 1 : o.cseq,
			ruri: o.ruri || aor,
			...o,
		};
		const raw = buildRequest(full);
		const req = parse(raw);
		/* A request built without a Via still gets matched by branch. */
		const key = req && req.branch ? req.branch : full.branch;
		const tx = new Transaction(this, dest, raw, req || { callId: full.callId, branch: key, method: full.method });
		tx.branch = key;
		tx.method = full.method;
		tx.opts = full;
		this.txns.set(key, tx);
		this.sendRaw(dest, raw).catch((e) => { tx.sendError = e; });
		if (o.retransmit !== false) {
			let interval = T1;
			const again = () => {
				if (this.closed || tx.final) return;
				if (tx.method === 'INVITE' && tx.responses.length) return;
				this.sendRaw(dest, raw).catch(() => {});
				interval = tx.method === 'INVITE' ? interval * 2 : Math.min(interval * 2, T2);
				tx.timer = setTimeout(again, interval);
			};
			tx.timer = setTimeout(again, interval);
		}
		return tx;
	}

	/* request() and wait for its final response. */
	async send(dest, o, ms = 5000) {
		const tx = this.request(dest, o);
		const res = await tx.finalResponse(ms);
		res.tx = tx;
		return res;
	}

	_ackNon2xx(tx, res) {
		const o = tx.opts;
		const lines = [
			`ACK ${o.ruri} SIP/2.0`,
			`Via: SIP/2.0/UDP ${o.via};branch=${tx.branch};rport`,
			'Max-Forwards: 70',
			`From: ${tx.req.get ? tx.req.get('from') : ''}`,
			`To: ${res.get('to')}`,
			`Call-ID: ${o.callId}`,
			`CSeq: ${o.cseq} ACK`,
		];
		for (const r of tx.req.all ? tx.req.all('route') : []) lines.push(`Route: ${r}`);
		lines.push('Content-Length: 0');
		this.sendRaw(tx.dest, lines.join('\r\n') + '\r\n\r\n').catch(() => {});
	}

	_onMessage(buf, rinfo) {
		this.transcript.add('<-', `${rinfo.address}:${rinfo.port}`, buf);
		const m = parse(buf);
		if (!m) {
			this.garbage.push(buf);
			return;
		}
		m.source = { host: rinfo.address, port: rinfo.port };
		m.at = Date.now();
		if (m.isResponse) {
			const tx = this.txns.get(m.branch);
			/* Branch, then CSeq method as we sent it (17.1.3); a request
			 * sent with a broken CSeq gets it echoed. */
			const sent = tx && tx.req && tx.req.cseq ? tx.req.cseq.method : undefined;
			if (tx && (!m.cseq || !sent || m.cseq.method === sent))
				tx._onResponse(m);
			else
				this.stray.push(m);
			return;
		}
		this.requests.push(m);
		if (m.method !== 'ACK') this._answer(m);
		for (const w of this.reqWaiters.slice()) w();
	}

	_answer(req) {
		let out = this.handler(req);
		if (out === null || out === undefined) return;
		for (let r of [].concat(out)) {
			if (typeof r === 'number') r = { status: r };
			const reasons = { 100: 'Trying', 180: 'Ringing', 200: 'OK', 404: 'Not Found', 480: 'Temporarily Unavailable', 486: 'Busy Here', 487: 'Request Terminated', 603: 'Decline' };
			const headers = [...(r.headers || [])];
			if (req.method === 'INVITE' && r.status > 100 && r.status < 300)
				headers.push(['Contact', `<${this.contactUri('callee')}>`]);
			this.sendRaw(req.source, buildResponse(req, r.status, r.reason || reasons[r.status] || 'Whatever', {
				toTag: this.toTag, headers, body: r.body, contentType: r.contentType,
			})).catch(() => {});
		}
	}

	/* Resolves with the first incoming request matching pred, within ms. */
	waitRequest(pred, ms = 5000, what = 'request') {
		return new Promise((resolve, reject) => {
			const check = () => {
				const r = this.requests.find(pred);
				if (r) { done(); resolve(r); return true; }
				return false;
			};
			const done = () => {
				clearTimeout(to);
				this.reqWaiters = this.reqWaiters.filter((w) => w !== check);
			};
			const to = setTimeout(() => {
				done();
				reject(new Error(`${this.label} (${this.addr}): no ${what} within ${ms} ms; ` +
					`received [${this.requests.map((r) => r.method).join(', ')}]`));
			}, ms);
			if (!check()) this.reqWaiters.push(check);
		});
	}

	/* Distinct requests received (retransmissions counted once). */
	distinctRequests(pred = () => true) {
		const seen = new Set();
		return this.requests.filter((r) => {
			if (!pred(r)) return false;
			const k = `${r.callId}|${r.get('cseq')}|${r.branch}`;
			if (seen.has(k)) return false;
			seen.add(k);
			return true;
		});
	}

	close() {
		if (this.closed) return;
		this.closed = true;
		for (const tx of this.txns.values()) if (tx.timer) clearTimeout(tx.timer);
		try { this.sock.close(); } catch { /* already closed */ }
	}
}

module.exports = {
	SipUA, parse, buildRequest, buildResponse, parseNameAddr, parseUri,
	splitComma, showBytes, rand, newBranch, T1, T2,
};
