'use strict';
/*
 * 90 metrics: every process serves Prometheus metrics ([edge N]/[core
 * N] metrics, [rtpctl] metrics), scraped by a real prometheus (the
 * Debian package) this file starts on a free loopback port with its
 * own scrape configuration and storage in the cluster's temp dir, and
 * stops by PID.  What an operator would see:
 *   - every target is up and each scrape is valid text format
 *     (promtool check metrics);
 *   - counters move with traffic, read back through Prometheus' query
 *     API: REGISTERs by method at the edge and the cores, the bindings
 *     gauge equals the users registered, the Redis link is up and its
 *     latency histogram grows with the writes, MESSAGEs through the proxy
 *     grow the latency histogram by as many, a call with media moves
 *     rtpctl's requests and the INVITE histogram, the pool shows both
 *     rtpengines up, a TCP client shows in the connections gauge;
 *   - the metrics server is a socket on a hostile network: an oversized
 *     request head gets 431 and is closed, a slow one is closed at the
 *     deadline, connections past the cap are closed at once, and the
 *     process goes on serving SIP and metrics;
 *   - deploy/grafana/sipmesh.json: every metric its queries name is in
 *     a real scrape (Grafana is not in Debian: the JSON is checked).
 */
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { describe, before, after } = require('node:test');
const { cluster, rand, Proc, freePort, waitUntil, HOST } = require('./lib/cluster');
const { httpGet } = require('./lib/wait');
const { Registration, message } = require('./lib/flows');
const { startUas, runSipp, assertOk } = require('./lib/sipp');

const DASHBOARD = path.resolve(__dirname, '../../deploy/grafana/sipmesh.json');

/*
 * A raw connection to addr that sends `send` (string or Buffer; null:
 * nothing) and resolves with {data, closedMs} once the server closes
 * it, or rejects after ms.
 */
function rawExchange(addr, send, ms) {
	return new Promise((resolve, reject) => {
		const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
		const t0 = Date.now();
		const s = net.connect({ host, port });
		let data = '';
		const timer = setTimeout(() => { s.destroy(); reject(new Error(`${addr} kept the connection open ${ms} ms`)); }, ms);
		s.setEncoding('latin1');
		s.on('connect', () => { if (send !== null) s.write(send); });
		s.on('data', (d) => { data += d; });
		s.on('error', () => { /* a reset is a close too */ });
		s.on('close', () => { clearTimeout(timer); resolve({ data, closedMs: Date.now() - t0 }); });
	});
}

/* One prometheus server scraping targets every second. */
class Prometheus {
	constructor(dir, targets) {
		this.dir = dir;
		this.targets = targets;
	}

	async start() {
		this.port = await freePort();
		this.addr = `${HOST}:${this.port}`;
		const jobs = new Map();
		for (const t of this.targets) {
			if (!jobs.has(t.job)) jobs.set(t.job, []);
			jobs.get(t.job).push(t);
		}
		/* YAML is a superset of JSON: no YAML writer needed. */
		const conf = {
			global: { scrape_interval: '1s', scrape_timeout: '1s', evaluation_interval: '1s' },
			scrape_configs: [...jobs].map(([job, ts]) => ({
				job_name: job,
				static_configs: ts.map((t) => ({ targets: [t.addr], labels: { host: 'test', id: String(t.id) } })),
			})),
		};
		const file = path.join(this.dir, 'prometheus.yml');
		fs.writeFileSync(file, JSON.stringify(conf, null, 1));
		fs.mkdirSync(path.join(this.dir, 'data'), { recursive: true });
		this.proc = new Proc('prometheus', 'prometheus', [
			`--config.file=${file}`, `--storage.tsdb.path=${path.join(this.dir, 'data')}`,
			`--web.listen-address=${this.addr}`, '--log.level=warn',
		]);
		await waitUntil(async () => {
			if (!this.proc.alive) throw new Error(`prometheus ${this.proc.status}:\n${this.proc.tail()}`);
			try { return (await httpGet(this.addr, '/-/ready', 1000)).status === 200; } catch { return false; }
		}, 20000, 'prometheus to be ready');
	}

	/* Stops it by PID; its storage goes with the cluster's temp dir. */
	async stop() {
		if (!this.proc || !this.proc.alive) return;
		process.kill(this.proc.pid, 'SIGTERM');
		await Promise.race([this.proc.exited, new Promise((r) => setTimeout(r, 5000).unref())]);
		if (this.proc.alive) process.kill(this.proc.pid, 'SIGKILL');
	}

	async api(p) {
		const r = await httpGet(this.addr, p, 3000);
		assert.equal(r.status, 200, `prometheus ${p}: ${r.status} ${r.body}`);
		const j = JSON.parse(r.body);
		assert.equal(j.status, 'success', `prometheus ${p}: ${r.body}`);
		return j.data;
	}

	/* The value of an instant query that yields one number (NaN: none). */
	async value(q) {
		const d = await this.api(`/api/v1/query?query=${encodeURIComponent(q)}`);
		if (!d.result.length) return NaN;
		return Number(d.result[0].value[1]);
	}

	/* Waits until every target was scraped and is up; returns them. */
	async allUp(ms = 15000) {
		let ts = [];
		await waitUntil(async () => {
			ts = (await this.api('/api/v1/targets')).activeTargets;
			return ts.length === this.targets.length && ts.every((t) => t.health === 'up');
		}, ms, `every target up in prometheus (${JSON.stringify(ts.map((t) => [t.scrapeUrl, t.health, t.lastError]))})`);
		return ts;
	}

	/* Waits until query q is pred(v) in a later scrape; returns v. */
	async until(q, pred, what, ms = 10000) {
		let v = NaN;
		try {
			await waitUntil(async () => pred(v = await this.value(q)), ms, what, 200);
		} catch (err) {
			err.message = `${err.message}: ${q} = ${v}`;
			throw err;
		}
		return v;
	}
}

describe('90 metrics', () => {
	const c = cluster({
		name: '90-metrics', edges: 1, cores: 2, metrics: true, redis: true,
		media: { rtpengines: 2, rtpctls: 1 },
	});
	let prom = null;

	before(async () => {
		prom = new Prometheus(fs.mkdtempSync(path.join(c.dir, 'prom-')), c.metrics);
		await prom.start();
		await prom.allUp();
	});
	after(async () => { if (prom) await prom.stop(); });

	const target = (kind, id = 1) => c.metrics.find((m) => m.kind === kind && m.id === id).addr;

	c.test('every process serves valid text format, loopback only, with HELP and TYPE', async () => {
		assert.equal(c.metrics.length, 4, 'edge 1, cores 1-2, rtpctl 1');
		for (const m of c.metrics) {
			assert.match(m.addr, /^127\.0\.0\.1:/);
			const r = await httpGet(m.addr, '/metrics');
			assert.equal(r.status, 200, `${m.job} ${m.id}`);
			assert.match(r.headers['content-type'], /^text\/plain; version=0\.0\.4/);
			assert.match(r.body, new RegExp(`^# HELP ${m.job.replace('-', '_')}_`, 'm'));
			assert.match(r.body, new RegExp(`^# TYPE ${m.job.replace('-', '_')}_\\S+ counter$`, 'm'));
			/* promtool: the parser Prometheus uses, and its lint rules */
			execFileSync('promtool', ['check', 'metrics'], { input: r.body });
		}
		const t = await prom.allUp();
		assert.deepEqual(t.map((x) => x.labels.job).sort(),
			['sipmesh-core', 'sipmesh-core', 'sipmesh-edge', 'sipmesh-rtpctl']);
	});

	c.test('REGISTERs move the request counters by the number sent; bindings = users registered', async () => {
		const N = 5;
		const q = {
			edgeIn: 'sum(sipmesh_edge_sip_requests_total{direction="in",method="REGISTER"})',
			coreIn: 'sum(sipmesh_core_sip_requests_total{direction="in",method="REGISTER"})',
			coreRegs: 'sum(sipmesh_core_registers_total)',
			ok: 'sum(sipmesh_core_register_results_total{result="ok"})',
			edgeOut2xx: 'sum(sipmesh_edge_sip_responses_total{direction="out",class="2xx"})',
		};
		const redisCmds = 'sum(sipmesh_core_redis_command_duration_seconds_count)';
		await prom.until('min(sipmesh_core_redis_up)', (v) => v === 1, 'every core\'s Redis link up');
		const base = {};
		for (const [k, v] of Object.entries(q)) base[k] = await prom.value(v);
		base.redis = await prom.value(redisCmds);
		assert.equal(await prom.value('max(sipmesh_core_location_bindings)'), 0, 'a fresh cluster holds no binding');
		for (let i = 0; i < N; i++) {
			const ua = await c.ua(`reg-${i}`);
			await new Registration(ua, c.edge(), `mx-${i}-${rand(3)}`).register(600);
		}
		await prom.until(q.edgeIn, (v) => v === base.edgeIn + N, `edge REGISTER in + ${N}`);
		await prom.until(q.coreIn, (v) => v === base.coreIn + N, `cores REGISTER in + ${N}`);
		await prom.until(q.coreRegs, (v) => v === base.coreRegs + N, `registers_total + ${N}`);
		await prom.until(q.ok, (v) => v === base.ok + N, `register results ok + ${N}`);
		await prom.until(q.edgeOut2xx, (v) => v >= base.edgeOut2xx + N, `edge 2xx out + ${N}`);
		/* every core of the host reports the host's shared store */
		await prom.until('min(sipmesh_core_location_bindings)', (v) => v === N, `bindings = ${N} on every core`);
		await prom.until('max(sipmesh_core_location_bindings)', (v) => v === N, `bindings = ${N}`);
		/* each binding was written to Redis: its latency was measured */
		await prom.until(redisCmds, (v) => v >= base.redis + N, `Redis commands measured + ${N}`);
	});

	c.test('MESSAGEs through the proxy grow the latency histogram by as many', async () => {
		const M = 4;
		const hist = 'sum(sipmesh_core_request_duration_seconds_count{method="MESSAGE"})';
		const inf = 'sum(sipmesh_core_request_duration_seconds_bucket{method="MESSAGE",le="+Inf"})';
		const out = 'sum(sipmesh_core_sip_requests_total{direction="out",method="MESSAGE"})';
		const [h0, o0] = [await prom.value(hist), await prom.value(out)];
		const callee = await c.ua('callee');
		const user = `mxcallee-${rand(3)}`;
		await new Registration(callee, c.edge(), user).register(600);
		const sender = await c.ua('sender');
		for (let i = 0; i < M; i++) {
			const r = await message(sender, c.edge(), user, 'a.test', { body: `m${i}` });
			assert.equal(r.status, 200);
		}
		await prom.until(hist, (v) => v === h0 + M, `MESSAGE latency count + ${M}`);
		await prom.until(inf, (v) => v === h0 + M, 'the +Inf bucket equals the count');
		await prom.until(out, (v) => v === o0 + M, `MESSAGE out + ${M}`);
		/* a loopback MESSAGE answered at once is well under a second */
		await prom.until('sum(sipmesh_core_request_duration_seconds_bucket{method="MESSAGE",le="1"})',
			(v) => v === h0 + M, 'every MESSAGE answered within 1 s');
	});

	c.test('a call with media moves rtpctl, the INVITE histogram, and the pool shows its rtpengines', async () => {
		await prom.until('sum(sipmesh_rtpctl_rtpengines{state="up"})', (v) => v === 2, 'both rtpengines up');
		const reqs = 'sum(sipmesh_rtpctl_requests_total)';
		const inv = 'sum(sipmesh_core_request_duration_seconds_count{method="INVITE"})';
		const placed = 'sum(sipmesh_rtpctl_rtpengine_calls_total)';
		const [r0, i0, p0] = [await prom.value(reqs), await prom.value(inv), await prom.value(placed)];
		const user = `mxcall-${rand(3)}`;
		const callee = await startUas(c, { user, scenario: 'media_uas_answer.xml', keys: { sm_name: 'callee' } });
		const caller = await runSipp(c, {
			scenario: 'media_uac_call.xml', dest: c.edge(1), service: user, keys: { sm_domain: 'a.test' }, timeout: 10,
		});
		assertOk(caller, 'caller (media_uac_call.xml)');
		assertOk(await callee.wait(15000), 'callee (media_uas_answer.xml)');
		/* offer, answer, delete at least */
		await prom.until(reqs, (v) => v >= r0 + 3, 'rtpctl requests + 3 (offer, answer, delete)');
		await prom.until(inv, (v) => v === i0 + 1, 'INVITE latency count + 1');
		await prom.until(placed, (v) => v === p0 + 1, 'one call placed on an rtpengine');
		await prom.until('sum(sipmesh_core_sip_requests_total{direction="in",method="BYE"})', (v) => v >= 1, 'the BYE counted');
	});

	c.test('connections per transport follow a TCP client in and out', async () => {
		const q = 'sum(sipmesh_edge_connections{transport="tcp"})';
		const opened = 'sum(sipmesh_edge_connections_opened_total)';
		const [n0, o0] = [await prom.value(q), await prom.value(opened)];
		const s = net.connect({ host: c.edge().host, port: c.edge().port });
		await new Promise((resolve, reject) => { s.on('connect', resolve); s.on('error', reject); });
		try {
			/* a keepalive makes it a SIP connection without a request */
			s.write('\r\n\r\n');
			await prom.until(q, (v) => v === n0 + 1, 'one more TCP connection');
			await prom.until(opened, (v) => v === o0 + 1, 'connections opened + 1');
		} finally {
			s.destroy();
		}
		await prom.until(q, (v) => v === n0, 'the TCP connection gone');
	});

	c.test('hostile clients of the metrics port: 431, deadline, connection cap; the edge serves on', async () => {
		const addr = target('edge');
		/* a head past 4 KiB */
		const big = await rawExchange(addr, `GET /metrics HTTP/1.1\r\nHost: x\r\nX-Pad: ${'a'.repeat(8000)}\r\n\r\n`, 3000);
		assert.match(big.data, /^HTTP\/1\.1 431 /, 'oversized head: 431');
		/* not GET, unknown path */
		assert.match((await rawExchange(addr, 'POST /metrics HTTP/1.1\r\n\r\n', 3000)).data, /^HTTP\/1\.1 405 /);
		assert.match((await rawExchange(addr, 'GET /../etc/passwd HTTP/1.1\r\n\r\n', 3000)).data, /^HTTP\/1\.1 404 /);
		/* slowloris: half a request line, then silence */
		const slowP = rawExchange(addr, 'GET /metr', 9000);
		/* 20 idle connections: the cap (16) holds, the rest close at once */
		const idle = [];
		for (let i = 0; i < 20; i++) idle.push(rawExchange(addr, null, 9000));
		const settled = await Promise.all(idle);
		const early = settled.filter((x) => x.closedMs < 2000).length;
		assert.ok(early >= 4, `connections past the cap closed at once: ${early} of 20 (the slow one holds a slot too)`);
		for (const x of settled) assert.ok(x.closedMs < 7000, `an idle connection lived ${x.closedMs} ms (deadline 5 s)`);
		const slow = await slowP;
		assert.equal(slow.data, '', 'the slow request gets nothing');
		assert.ok(slow.closedMs >= 4000 && slow.closedMs < 7000, `slow request closed after ${slow.closedMs} ms (deadline 5 s)`);
		/* the edge still carries SIP and still answers scrapes */
		const ua = await c.ua('after');
		await new Registration(ua, c.edge(), `mxafter-${rand(3)}`).register(600);
		const r = await httpGet(addr, '/metrics');
		assert.equal(r.status, 200);
		assert.match(r.body, /^sipmesh_edge_http_connections_refused_total [1-9]/m, 'refusals counted');
		assert.match(r.body, /^sipmesh_edge_http_requests_total\{result="timeout"\} [1-9]/m, 'timeouts counted');
		await prom.allUp();
	});

	c.test('deploy/grafana/sipmesh.json: every metric a panel queries is in a real scrape', async () => {
		const dash = JSON.parse(fs.readFileSync(DASHBOARD, 'utf8'));
		const exprs = [];
		const walk = (panels) => {
			for (const p of panels || []) {
				for (const t of p.targets || []) if (t.expr) exprs.push({ panel: p.title, expr: t.expr });
				walk(p.panels);
			}
		};
		walk(dash.panels);
		for (const v of (dash.templating && dash.templating.list) || [])
			if (typeof v.query === 'string' && /sipmesh_/.test(v.query))
				exprs.push({ panel: `variable ${v.name}`, expr: v.query, grafana: true });
		assert.ok(exprs.length >= 10, `the dashboard has ${exprs.length} queries`);
		let scraped = '';
		for (const m of c.metrics) scraped += (await httpGet(m.addr, '/metrics')).body;
		const names = new Set(scraped.split('\n').filter((l) => l && l[0] !== '#').map((l) => l.split(/[{ ]/)[0]));
		const missing = [];
		for (const { panel, expr } of exprs) {
			const used = expr.match(/\bsipmesh_[a-z0-9_]+/g) || [];
			assert.ok(used.length, `panel "${panel}" queries no sipmesh metric: ${expr}`);
			for (const n of used) if (!names.has(n)) missing.push(`${panel}: ${n}`);
		}
		assert.deepEqual(missing, [], 'metrics the dashboard names but no process serves');
		/* and Prometheus itself accepts every query (label_values() of
		 * a variable is Grafana's, not PromQL) */
		for (const { panel, expr } of exprs.filter((x) => !x.grafana)) {
			const q = expr.replace(/\$__rate_interval|\$__interval/g, '1m').replace(/\$\w+/g, '.*');
			await prom.api(`/api/v1/query?query=${encodeURIComponent(q)}`).catch((err) => {
				throw new Error(`panel "${panel}": ${expr}: ${err.message}`);
			});
		}
	});
});
