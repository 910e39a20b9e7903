'use strict';
/*
 * cluster.js - starts a real sipmesh cluster on 127.0.0.1 for one test
 * file, and tears it down checking that every process exited cleanly.
 *
 * A cluster is N edges and M cores (the binaries in $SIPMESH_BIN),
 * optionally a real redis-server, all sharing one generated config
 * file with fresh ports, a private run_dir (nanomsg ipc sockets), a
 * private shared-memory name and a private Redis key prefix, so test
 * files can run side by side.  Readiness is an event, not a sleep:
 * each edge must answer OPTIONS, then 16 OPTIONS with distinct Call-IDs
 * (so, through the Call-ID hash, very likely every core) must all be
 * answered, within a deadline.
 *
 * Stopping sends SIGTERM, waits, then SIGKILLs; a process that needed
 * SIGKILL, died of a signal, exited non-zero or printed a sanitizer
 * report fails the test file.  A process that dies during a test fails
 * the next assertAlive() and the teardown.
 *
 * Use from a test file:
 *
 *   describe('10 register', () => {
 *     const c = cluster({ cores: 2, registrar: { min_expires: 60 } });
 *     c.test('REGISTER gets 200', async () => { ... });
 *   });
 *
 * c.test() wraps node:test's it(): when the test fails, the error gets
 * the processes' log lines from that test, the SIP transcript of every
 * UA it used and the logs of every sipp it ran.
 */
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const dgram = require('node:dgram');
const { before, after, it } = require('node:test');
const { SipUA, rand } = require('./sip');

const HOST = '127.0.0.1';
const STOP_DEADLINE_MS = 5000;
const READY_DEADLINE_MS = Number(process.env.SIPMESH_INTEG_READY_MS || 15000);
const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|ThreadSanitizer|MemorySanitizer/;

const live = new Set();		/* child processes to kill if node exits */
process.on('exit', () => {
	for (const p of live) {
		try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
	}
});

let clusterSeq = 0;
const handedOut = new Set();

function bindUdp(port) {
	return new Promise((resolve) => {
		const s = dgram.createSocket('udp4');
		s.once('error', () => { s.close(); resolve(null); });
		s.bind(port, HOST, () => resolve(s));
	});
}

function bindTcp(port) {
	return new Promise((resolve) => {
		const s = net.createServer();
		s.once('error', () => resolve(null));
		s.listen(port, HOST, () => resolve(s));
	});
}

/*
 * A loopback port free for UDP and TCP right now (the edge may listen
 * on both), never handed out twice by this process.  pair: port+2 free
 * too (sipp's media echo sockets).
 */
async function freePort({ pair = false } = {}) {
	for (let i = 0; i < 100; i++) {
		const u = await bindUdp(0);
		const port = u.address().port;
		const others = [];
		let ok = !handedOut.has(port) && (!pair || port + 2 < 65536);
		if (ok) {
			const t = await bindTcp(port);
			if (t) others.push(t); else ok = false;
		}
		if (ok && pair) {
			const u2 = await bindUdp(port + 2);
			if (u2) others.push(u2); else ok = false;
		}
		u.close();
		for (const o of others) o.close();
		if (ok) {
			handedOut.add(port);
			if (pair) handedOut.add(port + 2);
			return port;
		}
	}
	throw new Error('freePort: no free loopback port found');
}

/* Whether something has bound UDP port on 127.0.0.1. */
async function udpPortBusy(port) {
	const s = await bindUdp(port);
	if (!s) return true;
	await new Promise((r) => s.close(r));
	return false;
}

/* Polls cond() every stepMs until it is true or ms pass. */
async function waitUntil(cond, ms, what, stepMs = 50) {
	const end = Date.now() + ms;
	for (;;) {
		if (await cond()) return;
		if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
		await new Promise((r) => setTimeout(r, stepMs));
	}
}

/* One child process whose output is kept, line by line, with times. */
class Proc {
	constructor(name, cmd, args, opts = {}) {
		this.name = name;
		this.cmd = [cmd, ...args].join(' ');
		this.lines = [];	/* {t, s} */
		this.dropped = 0;
		this.code = undefined;
		this.signal = undefined;
		this.lineWaiters = [];
		this.child = spawn(cmd, args, {
			stdio: ['ignore', 'pipe', 'pipe'],
			cwd: opts.cwd,
			env: { ...process.env, ...(opts.env || {}) },
		});
		this.pid = this.child.pid;
		live.add(this.child);
		const feed = (stream) => {
			let part = '';
			stream.setEncoding('latin1');
			stream.on('data', (d) => {
				const parts = (part + d).split('\n');
				part = parts.pop();
				for (const s of parts) this._line(s);
			});
			stream.on('end', () => { if (part) this._line(part); });
		};
		feed(this.child.stdout);
		feed(this.child.stderr);
		this.spawnError = null;
		this.exited = new Promise((resolve) => {
			this.child.on('error', (e) => {
				this.spawnError = e;
				this.code = -1;
				live.delete(this.child);
				resolve();
			});
			this.child.on('exit', (code, signal) => {
				this.code = code;
				this.signal = signal;
				live.delete(this.child);
				resolve();
			});
		});
		this.closed = new Promise((resolve) => this.child.on('close', resolve));
	}

	_line(s) {
		this.lines.push({ t: Date.now(), s });
		if (this.lines.length > 20000) {
			this.lines.splice(0, 5000);
			this.dropped += 5000;
		}
		for (const w of this.lineWaiters.slice()) w(s);
	}

	get alive() { return this.code === undefined && this.signal === undefined; }

	get status() {
		if (this.alive) return 'running';
		if (this.spawnError) return `failed to start: ${this.spawnError.message}`;
		if (this.signal) return `killed by ${this.signal}`;
		return `exited with code ${this.code}`;
	}

	text(since = 0) {
		return this.lines.filter((l) => l.t >= since).map((l) => l.s).join('\n');
	}

	tail(since = 0, n = 80) {
		const ls = this.lines.filter((l) => l.t >= since);
		const cut = ls.length > n ? [`... (${ls.length - n} earlier lines)`] : [];
		return cut.concat(ls.slice(-n).map((l) => l.s)).join('\n');
	}

	/*
	 * SIGTERM, then SIGKILL after ms.  Returns a problem string or
	 * null when it exited with code 0 and printed no sanitizer report.
	 */
	async stop(ms = STOP_DEADLINE_MS) {
		let forced = false;
		if (this.alive) {
			const wasAlive = true;
			try { this.child.kill('SIGTERM'); } catch { /* raced with exit */ }
			const t = await Promise.race([
				this.exited.then(() => 'exit'),
				new Promise((r) => setTimeout(() => r('timeout'), ms).unref()),
			]);
			if (t === 'timeout' && wasAlive) {
				forced = true;
				try { this.child.kill('SIGKILL'); } catch { /* gone */ }
				await this.exited;
			}
		} else {
			this.diedEarly = true;
		}
		await Promise.race([this.closed, new Promise((r) => setTimeout(r, 1000).unref())]);
		return this.problem(forced);
	}

	problem(forced = false) {
		const p = [];
		if (forced) p.push(`did not exit within ${STOP_DEADLINE_MS} ms of SIGTERM (SIGKILLed)`);
		else if (this.diedEarly) p.push(`was already dead before teardown (${this.status})`);
		else if (this.signal || this.code !== 0) p.push(this.status);
		if (SANITIZER_RE.test(this.text())) p.push('printed a sanitizer report');
		return p.length ? `${this.name} (pid ${this.pid}): ${p.join('; ')}` : null;
	}
}

/* Minimal RESP client: one command, one reply. */
function redisCommand(port, ...args) {
	return new Promise((resolve, reject) => {
		const sock = net.connect(port, HOST);
		let buf = Buffer.alloc(0);
		const to = setTimeout(() => { sock.destroy(); reject(new Error('redis: timeout')); }, 3000);
		sock.on('error', (e) => { clearTimeout(to); reject(e); });
		sock.on('connect', () => {
			let out = `*${args.length}\r\n`;
			for (const a of args) {
				const b = Buffer.from(String(a));
				out += `$${b.length}\r\n${b.toString('latin1')}\r\n`;
			}
			sock.write(Buffer.from(out, 'latin1'));
		});
		sock.on('data', (d) => {
			buf = Buffer.concat([buf, d]);
			const r = parseResp(buf, 0);
			if (r) {
				clearTimeout(to);
				sock.end();
				if (r.value instanceof Error) reject(r.value); else resolve(r.value);
			}
		});
	});
}

function parseResp(buf, i) {
	const nl = buf.indexOf('\r\n', i);
	if (nl < 0) return null;
	const type = String.fromCharCode(buf[i]);
	const line = buf.toString('latin1', i + 1, nl);
	const next = nl + 2;
	switch (type) {
	case '+': return { value: line, end: next };
	case '-': return { value: new Error(line), end: next };
	case ':': return { value: Number(line), end: next };
	case '$': {
		const n = Number(line);
		if (n < 0) return { value: null, end: next };
		if (buf.length < next + n + 2) return null;
		return { value: buf.toString('latin1', next, next + n), end: next + n + 2 };
	}
	case '*': {
		const n = Number(line);
		if (n < 0) return { value: null, end: next };
		const arr = [];
		let j = next;
		for (let k = 0; k < n; k++) {
			const r = parseResp(buf, j);
			if (!r) return null;
			arr.push(r.value);
			j = r.end;
		}
		return { value: arr, end: j };
	}
	default: return { value: new Error(`bad RESP type ${type}`), end: buf.length };
	}
}

function binPath(name) {
	const dir = process.env.SIPMESH_BIN;
	if (!dir)
		throw new Error('SIPMESH_BIN is not set: run through `make test-integ` or ' +
			'`SIPMESH_BIN=$PWD/build/bin sh tests/integ/run.sh`');
	const p = path.join(dir, name);
	try {
		fs.accessSync(p, fs.constants.X_OK);
	} catch {
		throw new Error(`${p} is missing or not executable (build it with \`make build-all\`)`);
	}
	return p;
}

function iniSection(name, kv) {
	const lines = [`[${name}]`];
	for (const [k, v] of Object.entries(kv)) lines.push(`${k} = ${v}`);
	return lines.join('\n') + '\n';
}

class Cluster {
	/*
	 * opts: {name, edges (1), cores (2), redis (false), log ('info'),
	 * registrar: {min_expires,...}, proxy: {...}, location: {...},
	 * edge: {...} keys for every edge}.
	 */
	constructor(opts = {}) {
		this.opts = { edges: 1, cores: 2, redis: false, ...opts };
		this.name = this.opts.name || 'cluster';
		this.n = ++clusterSeq;
		this.procs = [];
		this.retired = [];	/* processes replaced by a restart */
		this.edges = [];
		this.cores = [];
		this.evidence = [];
		this.uas = [];
		this.testStart = 0;
		this.started = false;
	}

	async start() {
		this.startedAt = Date.now();
		const edgeBin = binPath('sipmesh-edge');
		const coreBin = binPath('sipmesh-core');
		/* A short base: nanomsg ipc paths must fit a sockaddr_un. */
		this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smi-'));
		this.runDir = path.join(this.dir, 'run');
		fs.mkdirSync(this.runDir);
		this.shmName = `/sm-test-${process.pid}-${this.n}`;
		this.prefix = `smt${process.pid}n${this.n}`;
		for (let i = 1; i <= this.opts.edges; i++)
			this.edges.push({ id: i, host: HOST, port: await freePort() });
		if (this.opts.redis) await this._startRedis();
		this.confPath = path.join(this.dir, 'sipmesh.conf');
		fs.writeFileSync(this.confPath, this._config());
		this.started = true;
		for (let i = 1; i <= this.opts.cores; i++) {
			const p = new Proc(`core-${i}`, coreBin, ['-c', this.confPath, '-i', String(i)]);
			this.procs.push(p);
			this.cores.push({ id: i, proc: p });
		}
		for (const e of this.edges) {
			e.proc = new Proc(`edge-${e.id}`, edgeBin, ['-c', this.confPath, '-i', String(e.id)]);
			this.procs.push(e.proc);
		}
		await Promise.all(this.cores.map((k) => this._waitCoreNotice(k.proc)));
		await Promise.all(this.edges.map((e) => this._waitEdgeReady(e)));
	}

	/*
	 * A core has no port to probe, and the edges' answers cannot tell
	 * which core served them: wait for the core's "ready" notice, so that
	 * a quick teardown cannot SIGTERM it before it handles signals.
	 * Skipped when the log level hides notices.
	 */
	async _waitCoreNotice(p) {
		const lvl = process.env.SIPMESH_INTEG_LOG || this.opts.log || 'info';
		if (['err', 'warn'].includes(lvl)) return;
		await waitUntil(() => {
			if (!p.alive) throw new Error(`${p.name} ${p.status} during start-up:\n${p.tail()}`);
			return p.lines.some((l) => /\bready\b/i.test(l.s));
		}, READY_DEADLINE_MS, `${p.name} to log its "ready" notice`, 20).catch((err) => {
			err.message = `cluster ${this.name} did not start: ${err.message}\n\n${this.processReport(0)}`;
			throw err;
		});
	}

	_config() {
		const o = this.opts;
		let s = `; written by tests/integ/lib/cluster.js for ${this.name}\n`;
		s += iniSection('cluster', { run_dir: this.runDir, edges: o.edges, cores: o.cores });
		s += iniSection('log', { level: process.env.SIPMESH_INTEG_LOG || o.log || 'info' });
		s += iniSection('redis', {
			address: this.redis ? `${HOST}:${this.redis.port}` : '',
			prefix: this.prefix,
		});
		s += iniSection('location', {
			shm_name: this.shmName, shm_size_mb: 16, max_bindings: 10000,
			...(o.location || {}),
		});
		if (o.registrar) s += iniSection('registrar', o.registrar);
		if (o.proxy) s += iniSection('proxy', o.proxy);
		if (o.edge) s += iniSection('edge', o.edge);
		for (const e of this.edges)
			s += iniSection(`edge ${e.id}`, { udp: `${e.host}:${e.port}` });
		return s;
	}

	async _startRedis() {
		const port = await freePort();
		const dir = path.join(this.dir, 'redis');
		fs.mkdirSync(dir);
		const p = new Proc('redis', 'redis-server', [
			'--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no',
			'--dir', dir, '--logfile', '', '--daemonize', 'no',
		]);
		this.redis = { port, proc: p };
		this.procs.push(p);
		await waitUntil(async () => {
			if (!p.alive) throw new Error(`redis-server ${p.status}:\n${p.tail()}`);
			try { return (await redisCommand(port, 'PING')) === 'PONG'; } catch { return false; }
		}, READY_DEADLINE_MS, `redis-server on ${HOST}:${port}`);
	}

	/* Sends one command to this cluster's Redis; resolves with its reply. */
	redisCmd(...args) {
		if (!this.redis) throw new Error('this cluster has no Redis');
		return redisCommand(this.redis.port, ...args);
	}

	/* Every key under this cluster's Redis prefix. */
	async redisKeys() {
		let cursor = '0';
		const keys = [];
		do {
			const [next, batch] = await this.redisCmd('SCAN', cursor, 'MATCH', `${this.prefix}*`, 'COUNT', 1000);
			keys.push(...batch);
			cursor = next;
		} while (cursor !== '0');
		return keys;
	}

	/* Every key under the prefix with its value, as text (any type). */
	async redisDump() {
		const out = [];
		for (const k of (await this.redisKeys()).sort()) {
			const type = await this.redisCmd('TYPE', k);
			let v;
			switch (type) {
			case 'string': v = await this.redisCmd('GET', k); break;
			case 'hash': v = await this.redisCmd('HGETALL', k); break;
			case 'set': v = await this.redisCmd('SMEMBERS', k); break;
			case 'zset': v = await this.redisCmd('ZRANGE', k, 0, -1, 'WITHSCORES'); break;
			case 'list': v = await this.redisCmd('LRANGE', k, 0, -1); break;
			default: v = `(${type})`;
			}
			out.push(`${k} [${type}] ${JSON.stringify(v)}`);
		}
		return out.join('\n');
	}

	async _waitEdgeReady(e) {
		const ua = await SipUA.open({ label: `ready-edge-${e.id}` });
		const dest = { host: e.host, port: e.port };
		const deadline = Date.now() + READY_DEADLINE_MS;
		const options = () => ({
			method: 'OPTIONS', ruri: `sip:${e.host}:${e.port}`,
			from: 'sip:ready@integ.test', to: `sip:${e.host}:${e.port}`,
		});
		const dead = () => this.procs.find((p) => !p.alive);
		try {
			/* First any answer (the edge is up and reaches a core)... */
			for (;;) {
				const d = dead();
				if (d) throw new Error(`${d.name} ${d.status} during start-up`);
				if (Date.now() > deadline)
					throw new Error(`edge ${e.id} (${e.host}:${e.port}) did not answer OPTIONS ` +
						`with a non-5xx final response within ${READY_DEADLINE_MS} ms`);
				const tx = ua.request(dest, { ...options(), retransmit: false });
				try {
					const r = await tx.finalResponse(300);
					if (r.status < 500) break;
					await new Promise((res) => setTimeout(res, 100));
				} catch { /* no answer yet */ }
			}
			/* ...then many Call-IDs, which the edge spreads over the cores. */
			const ms = Math.max(1000, deadline - Date.now());
			const rs = await Promise.all(Array.from({ length: 16 },
				() => ua.request(dest, options()).finalResponse(ms)));
			const bad = rs.filter((r) => r.status >= 500);
			if (bad.length)
				throw new Error(`edge ${e.id}: ${bad.length}/16 OPTIONS got ${bad.map((r) => r.status)} during start-up`);
		} catch (err) {
			err.message = `cluster ${this.name} did not start: ${err.message}\n\n${ua.transcript}\n\n${this.processReport(0)}`;
			throw err;
		} finally {
			ua.close();
		}
	}

	/*
	 * Stops every core (each must exit cleanly), optionally removes the
	 * host's shared-memory store so that only Redis remembers the
	 * bindings, starts the cores again and waits until the edges answer
	 * through them.
	 */
	async restartCores({ wipeShm = false } = {}) {
		const problems = [];
		for (const k of this.cores) {
			const pr = await k.proc.stop();
			if (pr) problems.push(pr);
		}
		if (problems.length) throw new Error(`cores did not stop cleanly: ${problems.join('; ')}`);
		if (wipeShm) fs.rmSync(path.join('/dev/shm', this.shmName.replace(/^\//, '')), { force: true });
		const coreBin = binPath('sipmesh-core');
		for (const k of this.cores) {
			this.retired.push(k.proc);
			this.procs = this.procs.filter((p) => p !== k.proc);
			k.proc = new Proc(`core-${k.id}`, coreBin, ['-c', this.confPath, '-i', String(k.id)]);
			this.procs.push(k.proc);
		}
		await Promise.all(this.cores.map((k) => this._waitCoreNotice(k.proc)));
		await Promise.all(this.edges.map((e) => this._waitEdgeReady(e)));
	}

	/* Throws if any process has exited. */
	assertAlive() {
		const d = this.procs.filter((p) => !p.alive);
		if (d.length)
			throw new Error(`process(es) died: ${d.map((p) => `${p.name} ${p.status}`).join(', ')}`);
	}

	/* Stops everything; throws listing every process that ended badly. */
	async stop() {
		const problems = [];
		for (const u of this.uas) u.close();
		/* Edges first (no new work), then cores, then Redis. */
		const order = [...this.procs.filter((p) => p.name.startsWith('edge')),
			...this.procs.filter((p) => p.name.startsWith('core')),
			...this.procs.filter((p) => p.name === 'redis')];
		for (const p of order) {
			const pr = await p.stop();
			if (pr) problems.push(pr);
		}
		if (this.shmName) {
			try { fs.rmSync(path.join('/dev/shm', this.shmName.replace(/^\//, '')), { force: true }); } catch { /* ignore */ }
		}
		if (problems.length) {
			throw new Error(`cluster ${this.name} did not stop cleanly:\n  ${problems.join('\n  ')}\n\n` +
				this.processReport(0, 60));
		}
		if (this.dir && !process.env.SIPMESH_INTEG_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
	}

	edge(id = 1) {
		const e = this.edges.find((x) => x.id === id);
		if (!e) throw new Error(`no edge ${id}`);
		return { host: e.host, port: e.port, addr: `${e.host}:${e.port}` };
	}

	/* A SipUA closed at the end of the test, its transcript in the report. */
	async ua(label, opts = {}) {
		const { keep, ...rest } = opts;
		const u = await SipUA.open({ label, ...rest });
		this.uas.push(u);
		/* keep: lives until the cluster stops (a binding several tests use). */
		if (!keep) this.testUas.push(u);
		return u;
	}

	addEvidence(label, text) {
		this.evidence.push({ label, text });
	}

	processReport(since = this.testStart, n = 80) {
		const out = [];
		for (const p of [...this.retired, ...this.procs]) {
			out.push(`---- ${p.name} (pid ${p.pid}, ${p.status}) log${since ? ' during this test' : ''}:\n${p.tail(since, n) || '(nothing)'}`);
		}
		return out.join('\n');
	}

	report() {
		const out = [`==== cluster ${this.name}: config ${this.confPath}`];
		if (this.confPath && fs.existsSync(this.confPath)) out.push(fs.readFileSync(this.confPath, 'utf8'));
		for (const u of this.testUas)
			out.push(`---- SIP transcript of ${u.label} (${u.addr}):\n${u.transcript}`);
		for (const e of this.evidence) out.push(`---- ${e.label}:\n${e.text}`);
		out.push(this.processReport());
		return out.join('\n');
	}

	/* node:test it() with the failure report and per-test cleanup. */
	test(name, opts, fn) {
		if (typeof opts === 'function') { fn = opts; opts = {}; }
		it(name, { timeout: 60000, ...opts }, async (t) => {
			if (!this.started) throw new Error(`cluster ${this.name} is not running (start-up failed)`);
			this.testStart = Date.now();
			this.evidence = [];
			this.testUas = [];
			const extra = [];
			this.testChildren = extra;
			try {
				await fn(t);
				/* A process that died during this test fails this test. */
				this.assertAlive();
			} catch (err) {
				const rep = this.report();
				if (err && typeof err === 'object') {
					try { err.message = `${err.message}\n\n${rep}`; } catch { /* frozen */ }
				}
				throw err;
			} finally {
				for (const c of extra) await c.stop(1000).catch(() => {});
				for (const u of this.testUas) u.close();
				this.uas = this.uas.filter((u) => !this.testUas.includes(u));
			}
		});
	}

	/* Registers cleanup of a helper process at the end of the test. */
	own(proc) {
		if (this.testChildren) this.testChildren.push(proc);
		return proc;
	}
}

/* Installs before/after hooks in the enclosing describe(); returns the cluster. */
function cluster(opts) {
	const c = new Cluster(opts);
	c.testUas = [];
	before(() => c.start(), { timeout: READY_DEADLINE_MS + 10000 });
	after(() => c.stop(), { timeout: 60000 });
	return c;
}

module.exports = {
	cluster, Cluster, Proc, freePort, udpPortBusy, waitUntil, redisCommand, rand, HOST,
};
