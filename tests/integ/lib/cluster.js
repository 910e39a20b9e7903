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
 *
 * Media: cluster({ media: { rtpengines: N, rtpctls: M } }) also starts N
 * real rtpengine daemons (userspace, loopback only, free ng ports,
 * disjoint media port ranges below the ephemeral range) and M
 * sipmesh-rtpctl processes, writes [proxy] media = yes and the [rtpctl]
 * keys, and (M > 1) a Redis for the sticky Call-ID table.  rtpctl
 * processes count as cluster processes (liveness, clean exit 0 at
 * teardown); rtpengines do not (tests kill them on purpose): they get
 * SIGTERM at teardown.  Helpers: c.rtpengines, c.ng(), c.ngQuery(),
 * c.ngList(), c.engineHolding(), c.engineHolder(), c.assertEngineGone(),
 * c.killRtpengine(), c.restartRtpengine(), c.waitRtpctlLog().
 *
 * Metrics: cluster({ metrics: true }) gives every edge, core and rtpctl
 * a metrics address on a free loopback port ([edge N]/[core N] metrics,
 * [rtpctl] metrics); c.metrics lists them as {job, kind, id, addr}.
 *
 * Restarts: c.restartCores() (optionally on an empty shared store),
 * c.stopEdge(id, signal) then c.startEdge(id) (a SIGKILLed edge is no
 * teardown problem: the stopped process is retired).
 */
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const net = require('node:net');
const dgram = require('node:dgram');
const { before, after, it } = require('node:test');
const { SipUA, rand } = require('./sip');
const { waitUntil } = require('./wait');
const { freePort, freePortRanges, udpPortBusy } = require('./ports');

const HOST = '127.0.0.1';
const STOP_DEADLINE_MS = 5000;
const READY_DEADLINE_MS = Number(process.env.SIPMESH_INTEG_READY_MS || 15000);
const SENTINEL_MASTER = 'sipmesh';	/* [redis] master, redis.sentinel */
const SANITIZER_RE = /ERROR: AddressSanitizer|ERROR: LeakSanitizer|runtime error:|ThreadSanitizer|MemorySanitizer/;

const live = new Set();		/* child processes to kill if node exits */
process.on('exit', () => {
	for (const p of live) {
		try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
	}
});
/* The test runner ends a file past its deadline with SIGTERM, which
 * would skip 'exit' handlers: exit instead, so the processes above die
 * with it (and lib/ports.js lets go of its ports). */
for (const sig of ['SIGTERM', 'SIGINT', 'SIGHUP'])
	process.once(sig, () => process.exit(128 + os.constants.signals[sig]));

let clusterSeq = 0;

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

/* ---- rtpengine ng protocol: bencode over UDP with a cookie ---- */

function benc(v) {
	if (Buffer.isBuffer(v)) return Buffer.concat([Buffer.from(`${v.length}:`), v]);
	if (typeof v === 'string') return benc(Buffer.from(v, 'latin1'));
	if (typeof v === 'number') return Buffer.from(`i${Math.trunc(v)}e`);
	if (Array.isArray(v)) return Buffer.concat([Buffer.from('l'), ...v.map(benc), Buffer.from('e')]);
	const keys = Object.keys(v).sort();
	return Buffer.concat([Buffer.from('d'),
		...keys.flatMap((k) => [benc(k), benc(v[k])]), Buffer.from('e')]);
}

function unbenc(buf) {
	let i = 0;
	const val = () => {
		const ch = String.fromCharCode(buf[i]);
		if (ch === 'i') {
			const e = buf.indexOf('e', i);
			const n = Number(buf.toString('latin1', i + 1, e));
			i = e + 1;
			return n;
		}
		if (ch === 'l' || ch === 'd') {
			i++;
			const out = ch === 'l' ? [] : {};
			while (i < buf.length && buf[i] !== 0x65) {
				if (ch === 'l') out.push(val());
				else { const k = val(); out[k] = val(); }
			}
			if (i >= buf.length) throw new Error('bencode: truncated');
			i++;
			return out;
		}
		const colon = buf.indexOf(':', i);
		if (colon < 0) throw new Error('bencode: bad string');
		const n = Number(buf.toString('latin1', i, colon));
		const str = buf.toString('latin1', colon + 1, colon + 1 + n);
		i = colon + 1 + n;
		return str;
	};
	const v = val();
	if (i !== buf.length) throw new Error(`bencode: ${buf.length - i} trailing bytes`);
	return v;
}

/*
 * One ng command straight to the rtpengine at host (127.0.0.1):port;
 * resolves with its reply dictionary.  Resent with the same cookie every
 * 300 ms (as an ng client does) until ms pass.
 */
function ngCommand(port, dict, ms = 2000, host = HOST) {
	return new Promise((resolve, reject) => {
		const s = dgram.createSocket('udp4');
		const cookie = `i${process.pid}_${rand(6)}`;
		const msg = Buffer.concat([Buffer.from(`${cookie} `), benc(dict)]);
		let timer = null;
		const done = (f, v) => {
			clearTimeout(timer);
			clearInterval(resend);
			try { s.close(); } catch { /* closed */ }
			f(v);
		};
		const resend = setInterval(() => s.send(msg, port, host, () => {}), 300);
		timer = setTimeout(() => done(reject, new Error(`ng ${dict.command} to ${host}:${port}: no answer in ${ms} ms`)), ms);
		s.on('error', () => { /* ICMP refused: keep trying until ms */ });
		s.on('message', (m) => {
			const sp = m.indexOf(' ');
			if (m.toString('latin1', 0, sp) !== cookie) return;
			try { done(resolve, unbenc(m.subarray(sp + 1))); } catch (e) { done(reject, e); }
		});
		s.send(msg, port, host, () => {});
	});
}

/*
 * A userspace rtpengine for e = {addr, min, max, host}: ng on e.addr,
 * media on e.host (127.0.0.1) ports e.min..e.max, one thread each, and deleted calls
 * gone at once (--delete-delay=0; its default keeps them 30 s).  Also
 * used by tests that run rtpengines without a cluster.
 */
function rtpengineProc(name, pidfile, e, logLevel = 5) {
	return new Proc(name, 'rtpengine', [
		'--config-file=none', '--table=-1', '--foreground', '--log-stderr',
		`--listen-ng=${e.addr}`, `--interface=${e.host || HOST}`,
		`--port-min=${e.min}`, `--port-max=${e.max}`,
		`--pidfile=${pidfile}`,
		'--delete-delay=0', '--num-threads=1', '--media-num-threads=1',
		`--log-level=${logLevel}`,
	]);
}

/* Resolves once e.proc answers ng ping on e.ng; fails if it exits. */
async function rtpengineReady(e, ms) {
	await waitUntil(async () => {
		if (!e.proc.alive) throw new Error(`${e.proc.name} ${e.proc.status}:\n${e.proc.tail()}`);
		try { return (await ngCommand(e.ng, { command: 'ping' }, 300, e.host)).result === 'pong'; } catch { return false; }
	}, ms, `${e.name} answering ng ping on ${e.addr}`);
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
	 * opts: {name, edges (1), cores (2), redis (false, true, or an
	 * object of [redis] keys; sentinel: true in it starts a master, a
	 * replica and three sentinels, and the processes find the master
	 * through [redis] sentinels), redisShards (0: more redis-servers,
	 * named b, c, ..., written to [redis] shards: the bindings spread
	 * over them and the first by AOR), shareRedis (a started cluster
	 * whose Redis, shards and prefix this one uses: a second host),
	 * listShards (how many of those shards its config lists: a host
	 * still on an older, shorter list; default all), log ('info'),
	 * registrar: {min_expires,...}, proxy: {...}, location: {...},
	 * edge: {...} keys for every edge, edgeKeys: (edge) => {...} keys
	 * for one edge, over the defaults, sharePorts: every edge gets the
	 * same UDP/TCP port (several edges of one host with [edge]
	 * reuseport = yes), host: the edges' address (127.0.0.1; another
	 * in 127/8 gives a cluster an address of its own), port: the
	 * edges' UDP/TCP port (a free one; a fixed one such as 5060 only
	 * inside a network namespace of the test's own), clusterKeys: {...} more [cluster]
	 * keys, tcpLinks: edges and cores bind tcp:// loopback endpoints,
	 * as on several hosts, instead of ipc files, linkHost: (kind, id)
	 * => the address of that process's tcp:// endpoint (127.0.0.1),
	 * wrap: (name) => a command and its arguments to run a cluster
	 * process's binary under (e.g. nsenter into a namespace), or null,
	 * sections: () =>
	 * {name: {...}} more sections, read when the config is written),
	 * media: {rtpengines (2),
	 * rtpctls (1), portsPerEngine (400), logLevel (rtpengine's, 5),
	 * host: the rtpengines' ng and media address (127.0.0.1; another in
 * 127/8 for a cluster with an address of its own), rtpctl: {...} extra [rtpctl]
	 * keys over fast test defaults (ping 200 ms, threshold 2, ng
	 * timeout 200 ms x 3)}}.
	 */
	constructor(opts = {}) {
		this.opts = { edges: 1, cores: 2, redis: false, ...opts };
		if (this.opts.media) {
			this.opts.media = { rtpengines: 2, rtpctls: 1, ...this.opts.media };
			/* Several rtpctl processes share the sticky table in Redis. */
			if (this.opts.media.rtpctls > 1 && !this.opts.redis) this.opts.redis = true;
		}
		this.rtpengines = [];	/* {id, name, ng, addr, min, max, proc} */
		this.rtpctls = [];	/* {id, url, proc} */
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
		fs.mkdirSync(this.runDir, { mode: 0o700 });
		this.shmName = `/sm-test-${process.pid}-${this.n}`;
		this.prefix = `smt${process.pid}n${this.n}`;
		const shared = this.opts.port || (this.opts.sharePorts ? await freePort() : 0);
		for (let i = 1; i <= this.opts.edges; i++)
			this.edges.push({ id: i, host: this.opts.host || HOST, port: shared || await freePort() });
		if (this.opts.tcpLinks) {
			this.linkUrls = [];
			for (const kind of ['edge', 'core'])
				for (let i = 1; i <= this.opts[`${kind}s`]; i++)
					this.linkUrls.push({ kind, id: i, url: `tcp://${(this.opts.linkHost && this.opts.linkHost(kind, i)) || HOST}:${await freePort()}` });
		}
		/* shareRedis: another host of that cluster (own shared store,
		 * same Redis and prefix). */
		if (this.opts.shareRedis) {
			this.redis = { port: this.opts.shareRedis.redis.port };
			this.prefix = this.opts.shareRedis.prefix;
			this.redisShards = this.opts.shareRedis.redisShards;
		} else if (this.opts.redis) {
			await this._startRedis();
			this.redisShards = [];
			for (let i = 0; i < (this.opts.redisShards || 0); i++) {
				const name = String.fromCharCode(98 + i);	/* b, c, ... */
				const port = await freePort();
				this.redisShards.push({ name, port, proc: await this._redisProc(`redis-shard-${name}`, port) });
			}
		}
		if (this.opts.media) await this._prepareMedia();
		if (this.opts.metrics) await this._prepareMetrics();
		this.confPath = path.join(this.dir, 'sipmesh.conf');
		fs.writeFileSync(this.confPath, this._config());
		this.started = true;
		if (this.opts.media) await this._startMedia();
		for (let i = 1; i <= this.opts.cores; i++) {
			const p = this._proc(`core-${i}`, coreBin, ['-c', this.confPath, '-i', String(i)]);
			this.procs.push(p);
			this.cores.push({ id: i, proc: p });
		}
		for (const e of this.edges) {
			e.proc = this._proc(`edge-${e.id}`, edgeBin, ['-c', this.confPath, '-i', String(e.id)]);
			this.procs.push(e.proc);
		}
		await Promise.all(this.cores.map((k) => this._waitCoreNotice(k.proc)));
		await Promise.all(this.edges.map((e) => this._waitEdgeReady(e)));
	}

	/* A cluster process, under opts.wrap(name) when that gives one. */
	_proc(name, bin, args) {
		const w = this.opts.wrap && this.opts.wrap(name);
		return w ? new Proc(name, w[0], [...w.slice(1), bin, ...args]) : new Proc(name, bin, args);
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
		s += iniSection('cluster', { run_dir: this.runDir, edges: o.edges, cores: o.cores, ...(o.clusterKeys || {}) });
		s += iniSection('log', { level: process.env.SIPMESH_INTEG_LOG || o.log || 'info', ...(o.logKeys || {}) });
		const { sentinel, ...redisKeys } = typeof o.redis === 'object' ? o.redis : {};
		s += iniSection('redis', {
			/* with sentinels no address: they alone say where */
			address: this.redis && !sentinel ? `${HOST}:${this.redis.port}` : '',
			...(sentinel ? {
				sentinels: this.sentinels.map((x) => `${HOST}:${x.port}`).join(','),
				master: SENTINEL_MASTER,
			} : {}),
			prefix: this.prefix,
			...(this.redisShards && this.redisShards.length ? {
				shards: this.redisShards.slice(0, o.listShards ?? this.redisShards.length)
					.map((x) => `${x.name}=${HOST}:${x.port}`).join(' '),
			} : {}),
			...redisKeys,
		});
		s += iniSection('location', {
			shm_name: this.shmName, shm_size_mb: 16, max_bindings: 10000,
			...(o.location || {}),
		});
		if (o.registrar) s += iniSection('registrar', o.registrar);
		if (o.proxy || o.media) s += iniSection('proxy', { ...(o.proxy || {}), ...(o.media ? { media: 'yes' } : {}) });
		if (o.media) {
			s += iniSection('rtpctl', {
				instances: this.rtpengines.map((e) => `${e.addr}/1`).join(' '),
				ipc: this.rtpctls.map((r) => r.url).join(' '),
				ping_interval_ms: 200, fail_threshold: 2, ng_timeout_ms: 200, ng_tries: 3,
				call_ttl_s: 600,
				...(this.metrics ? {
					metrics: this.metrics.filter((m) => m.kind === 'rtpctl').map((m) => m.addr).join(' '),
				} : {}),
				...(o.media.rtpctl || {}),
			});
		}
		/* Every test client sends from 127.0.0.1: the per-source rate
		 * limits are off unless a test turns them on. */
		s += iniSection('edge', { req_rate: 0, conn_rate: 0, ...(o.edge || {}) });
		for (const e of this.edges) s += iniSection(`edge ${e.id}`, this._edgeKeys(e));
		for (const k of this.linkUrls || []) s += iniSection(`${k.kind} ${k.id}`, { ipc: k.url });
		for (const m of (this.metrics || []).filter((x) => x.kind === 'core'))
			s += iniSection(`core ${m.id}`, { metrics: m.addr });
		for (const [name, kv] of Object.entries((o.sections && o.sections()) || {})) s += iniSection(name, kv);
		return s;
	}

	/* The [edge N] keys of edge e.  TCP shares the UDP port (freePort
	 * checked both); TLS, WS and WSS are off unless edgeKeys(e) turns
	 * them on on free ports (tests/integ/lib/ws.js): never the default
	 * ports. */
	_edgeKeys(e) {
		const o = this.opts;
		return {
			udp: `${e.host}:${e.port}`, tcp: `${e.host}:${e.port}`,
			tls: '', ws: '', wss: '',
			...(e.metrics ? { metrics: e.metrics } : {}),
			...((o.edgeKeys && o.edgeKeys(e)) || {}),
		};
	}

	/* A metrics address per process (before the config). */
	async _prepareMetrics() {
		this.metrics = [];
		const add = async (kind, id) => {
			const m = { job: `sipmesh-${kind}`, kind, id, addr: `${HOST}:${await freePort()}` };
			this.metrics.push(m);
			return m.addr;
		};
		for (const e of this.edges) e.metrics = await add('edge', e.id);
		for (let i = 1; i <= this.opts.cores; i++) await add('core', i);
		for (let i = 1; i <= ((this.opts.media && this.opts.media.rtpctls) || 0); i++) await add('rtpctl', i);
	}

	/* Ports and endpoints of the media processes (before the config). */
	async _prepareMedia() {
		const m = this.opts.media;
		const ranges = freePortRanges(m.rtpengines, m.portsPerEngine || 400);
		const host = m.host || HOST;
		for (let i = 1; i <= m.rtpengines; i++) {
			const ng = await freePort();
			this.rtpengines.push({
				id: i, name: `rtpengine-${i}`, ng, host, addr: `${host}:${ng}`,
				min: ranges[i - 1].min, max: ranges[i - 1].max, proc: null, starts: 0,
			});
		}
		for (let i = 1; i <= m.rtpctls; i++)
			this.rtpctls.push({ id: i, url: `ipc://${this.runDir}/rtpctl-${i}`, proc: null });
	}

	_spawnRtpengine(e) {
		e.starts++;
		const name = e.starts > 1 ? `${e.name}#${e.starts}` : e.name;
		if (e.proc) this.retiredEngines.push(e.proc);
		e.proc = rtpengineProc(name, path.join(this.dir, `${e.name}.pid`), e,
			this.opts.media.logLevel || 5);
		e.killed = false;
		return e.proc;
	}

	async _waitRtpengine(e) {
		await rtpengineReady(e, READY_DEADLINE_MS);
	}

	/*
	 * rtpengines (answering ng ping), then rtpctl processes (bound and
	 * logging their start notice), before the cores connect to them.
	 */
	async _startMedia() {
		this.retiredEngines = this.retiredEngines || [];
		for (const e of this.rtpengines) this._spawnRtpengine(e);
		try {
			await Promise.all(this.rtpengines.map((e) => this._waitRtpengine(e)));
		} catch (err) {
			err.message = `cluster ${this.name} did not start: ${err.message}`;
			throw err;
		}
		const bin = binPath('sipmesh-rtpctl');
		for (const r of this.rtpctls) {
			r.proc = new Proc(`rtpctl-${r.id}`, bin, ['-c', this.confPath, '-i', String(r.id)]);
			this.procs.push(r.proc);
		}
		/* Ready once its ipc socket exists (it binds, then logs a notice
		 * that a quiet log level would hide). */
		await Promise.all(this.rtpctls.map((r) => waitUntil(() => {
			if (!r.proc.alive) throw new Error(`${r.proc.name} ${r.proc.status} during start-up:\n${r.proc.tail()}`);
			return fs.existsSync(r.url.replace(/^ipc:\/\//, '')) ||
				r.proc.lines.some((l) => l.s.includes(`rtpctl ${r.id} on `));
		}, READY_DEADLINE_MS, `rtpctl-${r.id} to bind ${r.url}`, 20))).catch((err) => {
			err.message = `cluster ${this.name} did not start: ${err.message}\n\n${this.processReport(0)}`;
			throw err;
		});
	}

	_engine(which) {
		const e = typeof which === 'object' ? which
			: this.rtpengines.find((x) => x.id === which || x.addr === which || x.name === which);
		if (!e) throw new Error(`no rtpengine ${JSON.stringify(which)} in cluster ${this.name}`);
		return e;
	}

	/* One ng command straight to rtpengine `which` (id, addr or object). */
	ng(which, dict, ms = 2000) {
		const e = this._engine(which);
		return ngCommand(e.ng, dict, ms, e.host);
	}

	/* ng query for callId on one rtpengine: its reply ({result: 'error'} when unknown). */
	ngQuery(which, callId, extra = {}) {
		return this.ng(which, { command: 'query', 'call-id': callId, ...extra });
	}

	/* The Call-IDs one rtpengine holds (ng list). */
	async ngList(which, limit = 10000) {
		const r = await this.ng(which, { command: 'list', limit });
		if (r.result !== 'ok') throw new Error(`ng list: ${JSON.stringify(r)}`);
		return r.calls || [];
	}

	/*
	 * The running rtpengines holding callId: [{engine, reply}] from ng
	 * query (a dead engine is skipped).
	 */
	async engineHolding(callId) {
		const out = [];
		for (const e of this.rtpengines) {
			if (!e.proc || !e.proc.alive) continue;
			const r = await this.ngQuery(e, callId);
			if (r.result === 'ok') out.push({ engine: e, reply: r });
		}
		return out;
	}

	/*
	 * Waits until a running rtpengine holds callId and asserts that only
	 * one does; returns its {engine, reply}.
	 */
	async engineHolder(callId, ms = 4000) {
		let h = [];
		await waitUntil(async () => { h = await this.engineHolding(callId); return h.length > 0; },
			ms, `an rtpengine to hold call ${callId}`);
		assert.equal(h.length, 1, `call ${callId} is on ${h.length} rtpengines: ${h.map((x) => x.engine.name)}`);
		return h[0];
	}

	/*
	 * Asserts that within 3 s no running rtpengine knows callId any more
	 * (ng query and list), `what` naming what should have removed it.
	 */
	async assertEngineGone(callId, what) {
		const left = async () => {
			const out = [];
			for (const e of this.rtpengines) {
				if (!e.proc.alive) continue;
				const q = await this.ngQuery(e, callId);
				const listed = (await this.ngList(e)).includes(callId);
				if (q.result === 'ok' || listed)
					out.push(`${e.name}: query ${q.result}${listed ? ', listed' : ''}`);
				else
					assert.match(q['error-reason'] || '', /unknown call/i, `${e.name} query after ${what}`);
			}
			return out;
		};
		let l = [];
		try {
			await waitUntil(async () => (l = await left()).length === 0, 3000, `the session to go after ${what}`);
		} catch (err) {
			throw new Error(`after ${what} rtpengine still holds ${callId}: ${l.join('; ')}`);
		}
	}

	/* Kills one rtpengine (SIGKILL by default) and waits for its exit. */
	async killRtpengine(which, signal = 'SIGKILL') {
		const e = this._engine(which);
		e.killed = true;
		e.killedAt = Date.now();
		try { process.kill(e.proc.pid, signal); } catch { /* gone */ }
		await e.proc.exited;
		return e;
	}

	/* Starts a dead rtpengine again on the same ng port and range. */
	async restartRtpengine(which) {
		const e = this._engine(which);
		if (e.proc && e.proc.alive) throw new Error(`${e.name} is still running`);
		this._spawnRtpengine(e);
		await this._waitRtpengine(e);
		return e;
	}

	/*
	 * Waits until every rtpctl logged a line matching re (string or
	 * RegExp) at or after since; returns the latest such line's time.
	 * ("rtpengine ADDR is down" is a warning, "... is up" a notice: the
	 * log level must show them.)
	 */
	async waitRtpctlLog(re, since = 0, ms = 5000) {
		const match = (s) => (typeof re === 'string' ? s.includes(re) : re.test(s));
		let times = [];
		await waitUntil(() => {
			times = this.rtpctls.map((r) => {
				const l = r.proc.lines.find((x) => x.t >= since && match(x.s));
				return l ? l.t : null;
			});
			return times.every((t) => t !== null);
		}, ms, `every rtpctl to log ${re}`);
		return Math.max(...times);
	}

	/* port: a restart on the same port; default a free one.  With
	 * redis.sentinel: the master, its replica and three sentinels. */
	async _startRedis(port) {
		port = port || await freePort();
		this.redis = { port, proc: await this._redisProc('redis', port) };
		if (typeof this.opts.redis === 'object' && this.opts.redis.sentinel)
			await this._startSentinels();
	}

	/* A redis-server (more args: a replica's) on port, once it answers. */
	async _redisProc(name, port, args = []) {
		const dir = path.join(this.dir, name);
		fs.mkdirSync(dir, { recursive: true });
		const p = new Proc(name, 'redis-server', [
			'--port', String(port), '--bind', HOST, '--save', '', '--appendonly', 'no',
			'--dir', dir, '--logfile', '', '--daemonize', 'no', ...args,
		]);
		this.procs.push(p);
		await this._waitRedisUp(p, port);
		return p;
	}

	async _waitRedisUp(p, port) {
		await waitUntil(async () => {
			if (!p.alive) throw new Error(`${p.name} ${p.status}:\n${p.tail()}`);
			try { return (await redisCommand(port, 'PING')) === 'PONG'; } catch { return false; }
		}, READY_DEADLINE_MS, `${p.name} on ${HOST}:${port}`);
	}

	/*
	 * A replica of this.redis and three sentinels (quorum 2, down after
	 * 1 s, failover timeout 3 s), each knowing the replica and the other
	 * two before this returns, so that a failover can start at once.
	 * A sentinel learns replicas from the master's INFO every 10 s: the
	 * replica is linked before the sentinels start.
	 */
	async _startSentinels() {
		const rport = await freePort();
		this.redisReplica = {
			port: rport,
			proc: await this._redisProc('redis-replica', rport,
				['--replicaof', HOST, String(this.redis.port)]),
		};
		await waitUntil(async () => /master_link_status:up/.test(
			await redisCommand(rport, 'INFO', 'replication').catch(() => '')),
		READY_DEADLINE_MS, 'the replica to link to the master');
		this.sentinels = [];
		for (let i = 1; i <= 3; i++) {
			const port = await freePort();
			const dir = path.join(this.dir, `sentinel-${i}`);
			fs.mkdirSync(dir, { recursive: true });
			const conf = path.join(dir, 'sentinel.conf');	/* it rewrites it */
			fs.writeFileSync(conf, [`port ${port}`, `bind ${HOST}`, `dir ${dir}`,
				`sentinel monitor ${SENTINEL_MASTER} ${HOST} ${this.redis.port} 2`,
				`sentinel down-after-milliseconds ${SENTINEL_MASTER} 1000`,
				`sentinel failover-timeout ${SENTINEL_MASTER} 3000`, ''].join('\n'));
			const p = new Proc(`sentinel-${i}`, 'redis-server', [conf, '--sentinel']);
			this.procs.push(p);
			this.sentinels.push({ port, proc: p });
			await this._waitRedisUp(p, port);
		}
		for (const x of this.sentinels) {
			await waitUntil(async () => {
				const r = await redisCommand(x.port, 'SENTINEL', 'REPLICAS', SENTINEL_MASTER).catch(() => []);
				const s = await redisCommand(x.port, 'SENTINEL', 'SENTINELS', SENTINEL_MASTER).catch(() => []);
				return r.length === 1 && s.length === 2;
			}, 15000, `sentinel on ${x.port} to know the replica and the other sentinels`);
		}
	}

	/* The master's port as the first live sentinel says (sentinel mode). */
	async sentinelMaster() {
		for (const x of this.sentinels) {
			if (!x.proc.alive) continue;
			const r = await redisCommand(x.port, 'SENTINEL', 'GET-MASTER-ADDR-BY-NAME',
				SENTINEL_MASTER).catch(() => null);
			if (Array.isArray(r)) return Number(r[1]);
		}
		throw new Error('no sentinel answered');
	}

	/*
	 * Kills the current master (sentinel mode) by PID; the sentinels are
	 * left to promote the replica.  Resolves with the killed port once
	 * the process is gone.
	 */
	async killRedisMaster(signal = 'SIGKILL') {
		const port = await this.sentinelMaster();
		const old = [this.redis, this.redisReplica].find((x) => x.port === port);
		try { process.kill(old.proc.pid, signal); } catch { /* gone */ }
		await old.proc.exited;
		this.procs = this.procs.filter((p) => p !== old.proc);
		this.retired.push(old.proc);
		return port;
	}

	/*
	 * Kills Redis by PID (signal, SIGKILL by default), waits for its
	 * exit and starts a new, empty one on the same port (no persistence).
	 */
	async restartRedis(signal = 'SIGKILL') {
		await this.stopRedis(signal);
		await this.startRedis();
	}

	/* restartRedis in two steps: the cluster runs without Redis between. */
	async stopRedis(signal = 'SIGKILL') {
		const old = this.redis.proc;
		if (!old) throw new Error(`${this.name} shares another cluster's Redis`);
		if (this.sentinels) throw new Error(`${this.name} has sentinels: killRedisMaster`);
		try { process.kill(old.pid, signal); } catch { /* gone */ }
		await old.exited;
		this.procs = this.procs.filter((p) => p !== old);
		this.retired.push(old);
	}

	async startRedis() {
		await this._startRedis(this.redis.port);
	}

	/*
	 * Every shard of the bindings, [redis] itself first: {name, port}
	 * ("main" for [redis], which has no sentinels here).
	 */
	shards() {
		return [{ name: 'main', port: this.redis.port }, ...(this.redisShards || [])];
	}

	/* Merges o into the options and writes the config file again: the
	 * processes started from now on read it (restartCores). */
	reconfigure(o) {
		Object.assign(this.opts, o);
		fs.writeFileSync(this.confPath, this._config());
	}

	/* Kills shard `name`'s redis-server (not "main") by PID and waits
	 * for its exit; startShard(name) starts an empty one on its port. */
	async stopShard(name, signal = 'SIGKILL') {
		const x = (this.redisShards || []).find((y) => y.name === name);
		if (!x || !x.proc) throw new Error(`${this.name}: no running shard ${name} of its own`);
		try { process.kill(x.proc.pid, signal); } catch { /* gone */ }
		await x.proc.exited;
		this.procs = this.procs.filter((p) => p !== x.proc);
		this.retired.push(x.proc);
		x.proc = null;
	}

	async startShard(name) {
		const x = (this.redisShards || []).find((y) => y.name === name);
		if (!x || x.proc) throw new Error(`${this.name}: shard ${name} is not stopped`);
		x.proc = await this._redisProc(`redis-shard-${name}`, x.port);
	}

	/* Sends one command to this cluster's Redis (with sentinels: to
	 * the master they name now); resolves with its reply. */
	redisCmd(...args) {
		if (!this.redis) throw new Error('this cluster has no Redis');
		if (this.sentinels)
			return this.sentinelMaster().then((port) => redisCommand(port, ...args));
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

	/*
	 * With sharePorts an OPTIONS to the shared port reaches whichever
	 * edge the kernel picks, so first this edge's own notices, one per
	 * transport configured ("sipmesh-edge N: SIP WS on ..."): it is
	 * listening on all of them.  Skipped when the log level hides
	 * notices.
	 */
	async _waitEdgeListening(e) {
		const lvl = process.env.SIPMESH_INTEG_LOG || this.opts.log || 'info';
		if (['err', 'warn'].includes(lvl)) return;
		const keys = this._edgeKeys(e);
		const want = ['udp', 'tcp', 'tls', 'ws', 'wss'].filter((k) => keys[k]).map((k) => k.toUpperCase());
		const p = e.proc;
		await waitUntil(() => {
			if (!p.alive) throw new Error(`${p.name} ${p.status} during start-up:\n${p.tail()}`);
			return want.every((t) => p.lines.some((l) => l.s.includes(`sipmesh-edge ${e.id}: SIP ${t} on `)));
		}, READY_DEADLINE_MS, `edge ${e.id} to listen on ${want.join(', ')}`, 20).catch((err) => {
			err.message = `cluster ${this.name} did not start: ${err.message}\n\n${this.processReport(0)}`;
			throw err;
		});
	}

	async _waitEdgeReady(e) {
		if (this.opts.sharePorts) await this._waitEdgeListening(e);
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
	 * bindings, runs whileStopped() (say, to change Redis behind their
	 * back), starts the cores again and waits until the edges answer
	 * through them.
	 */
	async restartCores({ wipeShm = false, whileStopped } = {}) {
		const problems = [];
		for (const k of this.cores) {
			const pr = await k.proc.stop();
			if (pr) problems.push(pr);
		}
		if (problems.length) throw new Error(`cores did not stop cleanly: ${problems.join('; ')}`);
		if (wipeShm) fs.rmSync(path.join('/dev/shm', this.shmName.replace(/^\//, '')), { force: true });
		if (whileStopped) await whileStopped();
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

	/*
	 * Ends edge `id`'s process: SIGTERM waits for a clean exit (code 0,
	 * within the stop deadline) and throws otherwise; any other signal
	 * is sent to its PID as is (SIGKILL: no goodbye to anyone).  The
	 * process is retired (its log stays in reports, teardown skips it)
	 * until startEdge(id) runs a new one.
	 */
	async stopEdge(id = 1, signal = 'SIGTERM') {
		const e = this.edges.find((x) => x.id === id);
		if (!e) throw new Error(`no edge ${id}`);
		const p = e.proc;
		if (signal === 'SIGTERM') {
			const pr = await p.stop();
			if (pr) throw new Error(`edge ${id} did not stop cleanly: ${pr}`);
		} else {
			process.kill(p.pid, signal);
			await p.exited;
		}
		this.retired.push(p);
		this.procs = this.procs.filter((x) => x !== p);
		e.proc = null;
	}

	/* Starts edge `id` again (after stopEdge) and waits until it answers
	 * ({wait: false}: only until it logs that it listens). */
	async startEdge(id = 1, { wait = true } = {}) {
		const e = this.edges.find((x) => x.id === id);
		if (!e) throw new Error(`no edge ${id}`);
		e.starts = (e.starts || 1) + 1;
		e.proc = new Proc(`edge-${id}#${e.starts}`, binPath('sipmesh-edge'),
			['-c', this.confPath, '-i', String(id)]);
		this.procs.push(e.proc);
		if (wait) await this._waitEdgeReady(e);
		else await this._waitEdgeListening(e);
	}

	/*
	 * Crash and systemd-style restart of one process: kill(kind, id)
	 * SIGKILLs core or rtpctl `id` (kind 'core' or 'rtpctl') and waits
	 * for its exit; startAgain(kind, id) starts a new one on the same
	 * configuration and waits until it is ready (a core: its "ready"
	 * notice and the edges answering through it; rtpctl: its start
	 * notice).
	 */
	async kill(kind, id) {
		const x = (kind === 'core' ? this.cores : this.rtpctls).find((k) => k.id === id);
		if (!x) throw new Error(`no ${kind} ${id}`);
		const p = x.proc;
		process.kill(p.pid, 'SIGKILL');
		await p.exited;
		this.retired.push(p);
		this.procs = this.procs.filter((q) => q !== p);
		x.proc = null;
	}

	async startAgain(kind, id) {
		const x = (kind === 'core' ? this.cores : this.rtpctls).find((k) => k.id === id);
		if (!x) throw new Error(`no ${kind} ${id}`);
		x.starts = (x.starts || 1) + 1;
		x.proc = new Proc(`${kind}-${id}#${x.starts}`, binPath(`sipmesh-${kind}`),
			['-c', this.confPath, '-i', String(id)]);
		this.procs.push(x.proc);
		if (kind === 'core') {
			await this._waitCoreNotice(x.proc);
			await Promise.all(this.edges.map((e) => this._waitEdgeReady(e)));
			return;
		}
		await waitUntil(() => {
			if (!x.proc.alive) throw new Error(`${x.proc.name} ${x.proc.status}:\n${x.proc.tail()}`);
			return x.proc.lines.some((l) => l.s.includes(`rtpctl ${id} on `));
		}, READY_DEADLINE_MS, `${x.proc.name} to start`, 20);
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
		/* Edges first (no new work), then cores, then rtpctl, then Redis. */
		const order = [...this.procs.filter((p) => p.name.startsWith('edge')),
			...this.procs.filter((p) => p.name.startsWith('core')),
			...this.procs.filter((p) => p.name.startsWith('rtpctl')),
			...this.procs.filter((p) => p.name.startsWith('sentinel')),
			...this.procs.filter((p) => p.name.startsWith('redis'))];
		for (const p of order) {
			const pr = await p.stop();
			if (pr) problems.push(pr);
		}
		/* rtpengines last, by SIGTERM; one a test killed is not a problem. */
		for (const e of this.rtpengines) {
			if (!e.proc) continue;
			if (!e.proc.alive && e.killed) continue;
			const pr = await e.proc.stop();
			if (pr && !/exited with code 0|killed by SIGTERM/.test(pr)) problems.push(pr);
		}
		if (this.shmName) {
			for (const n of [this.shmName, `${this.shmName}-edge-limit`])
				try { fs.rmSync(path.join('/dev/shm', n.replace(/^\//, '')), { force: true }); } catch { /* ignore */ }
		}
		if (problems.length) {
			throw new Error(`cluster ${this.name} did not stop cleanly:\n  ${problems.join('\n  ')}\n\n` +
				this.processReport(0, 60));
		}
		if (this.dir && !process.env.SIPMESH_INTEG_KEEP) fs.rmSync(this.dir, { recursive: true, force: true });
	}

	/* Sum over the cores of one counter of their SIGUSR1 stats line
	 * ("stats: ... name N ..."), read from the line each logs now. */
	async coreStat(name) {
		const since = Date.now();
		for (const k of this.cores) process.kill(k.proc.pid, 'SIGUSR1');
		let sum = 0;
		await waitUntil(() => {
			sum = 0;
			for (const k of this.cores) {
				const l = k.proc.lines.filter((x) => x.t >= since && /stats: /.test(x.s)).pop();
				if (!l) return false;
				const m = new RegExp(`\\b${name} (\\d+)`).exec(l.s);
				if (!m) return false;
				sum += Number(m[1]);
			}
			return true;
		}, 3000, 'the cores\' stats lines');
		return sum;
	}

	/* The number re captures in the stats line process p logs on
	 * SIGUSR1 now. */
	async _statOf(p, re, what) {
		const since = Date.now();
		process.kill(p.pid, 'SIGUSR1');
		let v = null;
		await waitUntil(() => {
			const l = p.lines.filter((x) => x.t >= since && /stats: /.test(x.s)).pop();
			const m = l && re.exec(l.s);
			if (m) v = Number(m[1]);
			return v !== null;
		}, 3000, what);
		return v;
	}

	/* Core id's counter `name` ("stats: ... name N ..."). */
	coreStatOf(id, name) {
		return this._statOf(this.cores.find((k) => k.id === id).proc,
			new RegExp(`\\b${name} (\\d+)`), `core ${id}'s ${name} counter`);
	}

	/* Edge id's counter `name` ("stats: ... name=N ..."). */
	edgeStat(name, id = 1) {
		return this._statOf(this.edges.find((e) => e.id === id).proc,
			new RegExp(`\\b${name}=(\\d+)`), `edge ${id}'s ${name} counter`);
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
		const engines = [...(this.retiredEngines || []), ...this.rtpengines.map((e) => e.proc).filter(Boolean)];
		for (const p of [...this.retired, ...this.procs, ...engines]) {
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
	cluster, Cluster, Proc, freePort, freePortRanges, udpPortBusy, waitUntil, redisCommand, rand, HOST,
	benc, unbenc, ngCommand, rtpengineProc, rtpengineReady,
};
