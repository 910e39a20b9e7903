'use strict';
/*
 * sipp.js - runs sipp scenarios from tests/integ/scenarios against a
 * cluster, and keeps their logs for the failure report.
 *
 * Every sipp gets its own loopback SIP, control and media ports (sipp
 * otherwise binds 0.0.0.0:8888 and 6000/6002, which collide between
 * runs), a global -timeout with -timeout_error (a stuck scenario fails
 * instead of hanging), -trace_err and -trace_msg into a private
 * directory.  Exit code 0 means every call of the run succeeded.
 *
 * o.inf (rows of fields) becomes a SEQUENTIAL -inf CSV: [field0]...
 *
 * A callee is a sipp UAS: first a REGISTER scenario runs from the very
 * port the UAS will then bind, so the proxy's binding (contact and
 * received address alike) points at the UAS.
 */
const fs = require('node:fs');
const path = require('node:path');
const { Proc, freePort, waitUntil, rand, HOST } = require('./cluster');

const SCENARIOS = path.join(__dirname, '..', 'scenarios');
let seq = 0;

/* Whether a UDP socket is bound to 127.0.0.1:port (read-only check). */
function udpBound(port) {
	const want = `0100007F:${port.toString(16).toUpperCase().padStart(4, '0')}`;
	let text = '';
	try { text = fs.readFileSync('/proc/net/udp', 'latin1'); } catch { return false; }
	return text.split('\n').some((l) => l.trim().split(/\s+/)[1] === want);
}

function readOr(file, dflt = '') {
	try { return fs.readFileSync(file, 'latin1'); } catch { return dflt; }
}

function tailText(s, n) {
	return s.length > n ? `... (${s.length - n} earlier bytes)\n${s.slice(-n)}` : s;
}

/*
 * Splits a sipp -trace_msg log into [{dir: 'sent'|'received', text}].
 */
function parseMessageLog(log) {
	const out = [];
	const parts = log.split(/^-{20,}.*$/m);
	for (const p of parts) {
		const m = /^\s*\S+ message (sent|received)[^\n]*\n\s*\n?([\s\S]*)$/m.exec(p);
		if (m) out.push({ dir: m[1], text: m[2].trim() });
	}
	return out;
}

class SippRun {
	constructor(c, o) {
		this.c = c;
		this.o = o;
		this.n = ++seq;
	}

	async start() {
		const o = this.o;
		const c = this.c;
		this.port = o.port || await freePort();
		const cport = await freePort();
		const mport = await freePort({ pair: true });
		this.dir = fs.mkdtempSync(path.join(c.dir || '/tmp', `sipp${this.n}-`));
		this.errFile = path.join(this.dir, 'errors.log');
		this.msgFile = path.join(this.dir, 'messages.log');
		const scen = path.join(SCENARIOS, o.scenario);
		if (!fs.existsSync(scen)) throw new Error(`no scenario ${scen}`);
		const args = [];
		if (o.dest) args.push(`${o.dest.host}:${o.dest.port}`);
		args.push('-sf', scen, '-i', HOST, '-p', String(this.port),
			'-m', String(o.calls || 1), '-nostdin',
			'-timeout', `${o.timeout || 20}s`, '-timeout_error',
			'-trace_err', '-error_file', this.errFile,
			'-trace_msg', '-message_file', this.msgFile,
			'-ci', HOST, '-cp', String(cport), '-mi', HOST, '-mp', String(mport),
			'-max_retrans', '5');
		if (o.service) args.push('-s', o.service);
		if (o.rate) args.push('-r', String(o.rate));
		if (o.limit) args.push('-l', String(o.limit));
		/* The caller's domain is the callee's unless a test crosses
		 * domains (80-federation). */
		const keys = { ...(o.keys || {}) };
		if (keys.sm_domain !== undefined && keys.sm_from_domain === undefined) keys.sm_from_domain = keys.sm_domain;
		for (const [k, v] of Object.entries(keys)) args.push('-key', k, String(v));
		if (o.inf) {
			/* Injection file: one call per row, fields [field0], [field1]... */
			const inf = path.join(this.dir, 'inject.csv');
			fs.writeFileSync(inf, 'SEQUENTIAL\n' + o.inf.map((row) => [].concat(row).join(';') + ';\n').join(''));
			args.push('-inf', inf);
		}
		args.push(...(o.args || []));
		this.label = o.label || `sipp ${o.scenario} on ${HOST}:${this.port}` +
			(o.dest ? ` -> ${o.dest.host}:${o.dest.port}` : ' (UAS)');
		this.proc = new Proc(this.label, 'sipp', args, { cwd: this.dir });
		c.own(this);
		this.done = this.proc.exited.then(() => this._result());
		return this;
	}

	/* Waits until the sipp socket is bound (for a UAS) or sipp ended. */
	async ready(ms = 5000) {
		await waitUntil(() => udpBound(this.port) || !this.proc.alive, ms,
			`${this.label} to bind its port`, 20);
		if (!this.proc.alive) {
			const r = await this.done;
			throw new Error(`${this.label} exited at start: code ${r.code}\n${r.stdout}`);
		}
		return this;
	}

	async _result() {
		await Promise.race([this.proc.closed, new Promise((r) => setTimeout(r, 1000).unref())]);
		const r = {
			code: this.proc.code,
			signal: this.proc.signal,
			ok: this.proc.code === 0,
			errors: readOr(this.errFile),
			messages: readOr(this.msgFile),
			stdout: this.proc.tail(0, 40),
			port: this.port,
		};
		r.parsed = parseMessageLog(r.messages);
		this.result = r;
		this.c.addEvidence(`${this.label}: ${this.proc.cmd}\n  -> ${this.proc.status}`,
			`errors log:\n${tailText(r.errors, 6000) || '(empty)'}\n` +
			`message log:\n${tailText(r.messages, 16000) || '(empty)'}\n` +
			`screen (tail):\n${r.stdout}`);
		return r;
	}

	/* SIGTERM (then SIGKILL); used for cleanup. */
	async stop(ms = 2000) {
		if (this.proc && this.proc.alive) await this.proc.stop(ms);
		if (this.done) await this.done;
	}

	/* Waits for sipp's exit within ms (else kills it); returns the result. */
	async wait(ms) {
		const t = await Promise.race([
			this.done.then(() => 'done'),
			new Promise((r) => setTimeout(() => r('timeout'), ms).unref()),
		]);
		if (t === 'timeout') {
			await this.stop(1000);
			this.result.timedOut = true;
		}
		return this.result;
	}
}

/* Starts sipp with o (see SippRun.start); returns the running SippRun. */
async function startSipp(c, o) {
	return new SippRun(c, o).start();
}

/* Runs sipp to completion; returns its result. */
async function runSipp(c, o) {
	const s = await startSipp(c, o);
	return s.wait(((o.timeout || 20) + 10) * 1000);
}

function describe(r, what) {
	return `${what}: sipp exit code ${r.code}${r.signal ? ` (signal ${r.signal})` : ''}` +
		`${r.timedOut ? ' (killed after the deadline)' : ''}\n` +
		`errors:\n${tailText(r.errors, 3000) || '(none)'}`;
}

/* Throws unless the sipp run succeeded (exit code 0). */
function assertOk(r, what) {
	if (r.code !== 0) throw new Error(describe(r, what));
}

/*
 * Registers user@domain from a fresh port (o.port when given) through
 * edge, then starts a sipp UAS running scenario on that port.  Returns
 * the running SippRun (ready: its port is bound).
 */
async function startUas(c, o) {
	const port = o.port || await freePort();
	const reg = await runSipp(c, {
		scenario: 'register.xml', dest: c.edge(o.registerEdge || o.edge || 1), port,
		keys: { sm_user: o.user, sm_domain: o.domain || 'a.test', sm_expires: o.expires || 300 },
		label: `sipp register ${o.user}@${o.domain || 'a.test'} from ${HOST}:${port}`,
	});
	assertOk(reg, `REGISTER of ${o.user}@${o.domain || 'a.test'} from ${HOST}:${port}`);
	const uas = await startSipp(c, {
		scenario: o.scenario, port, calls: o.calls || 1, timeout: o.timeout || 20,
		keys: { sm_user: o.user, sm_domain: o.domain || 'a.test', ...(o.keys || {}) },
		label: o.label || `sipp UAS ${o.scenario} for ${o.user} on ${HOST}:${port}`,
		args: o.args,
	});
	return uas.ready();
}

/* Counts messages of a sipp run matching dir and a regexp. */
function countMessages(r, dir, re) {
	return r.parsed.filter((m) => m.dir === dir && re.test(m.text)).length;
}

/*
 * A sipp call across domains: a sipp callee registered on dst (a
 * cluster, or anything with ua-facing edge()) as callee-xxx@to running
 * scenario uas, and a sipp caller from@from sent to src's edge running
 * uac.  Asserts that both ran clean and that the caller got a 200 for
 * its INVITE; returns {caller, callee, rr}, rr the Record-Route lines of
 * that 200 (each test asserts whose they are).  o.contact: the
 * scenarios write their own Contact (sm_contact, the re-INVITE ones):
 * each gets its sipp socket's address.
 */
async function crossDomainCall(src, dst, from, to, uas, uac, o = {}) {
	const u = `callee-${rand(3)}`;
	const uasPort = o.contact ? await freePort() : undefined;
	const uacPort = o.contact ? await freePort() : undefined;
	const contact = (port) => (port ? { sm_contact: `${HOST}:${port}` } : {});
	const callee = await startUas(dst, {
		user: u, domain: to, scenario: uas, timeout: 20, port: uasPort, keys: contact(uasPort),
	});
	const caller = await runSipp(src, {
		scenario: uac, dest: src.edge(), service: u, port: uacPort,
		keys: { sm_domain: to, sm_from_domain: from, ...contact(uacPort) }, timeout: 20,
	});
	const calleeRes = await callee.wait(25000);
	assertOk(caller, `caller ${from} (${uac})`);
	assertOk(calleeRes, `callee ${to} (${uas})`);
	const ok = caller.parsed.find((m) => m.dir === 'received' && /^SIP\/2\.0 200/.test(m.text) && /INVITE/.test(m.text));
	if (!ok) throw new Error(`${from} -> ${to}: the caller received no 200 for its INVITE`);
	const rr = ok.text.split(/\r?\n/).filter((l) => /^Record-Route:/i.test(l)).join('\n');
	return { caller, callee: calleeRes, rr };
}

module.exports = {
	startSipp, runSipp, startUas, assertOk, crossDomainCall, countMessages, parseMessageLog, udpBound, describe,
};
