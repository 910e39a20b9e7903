'use strict';
/*
 * 40 media rtpctl: two real rtpengine daemons (userspace, no kernel
 * module), two real sipmesh-rtpctl processes sharing a real Redis, and
 * rtpc-probe (a C driver built on the client library cores link)
 * sending ng commands through them.
 *
 * Shown here: an offer with a real SDP comes back rewritten to the
 * relay's address and ports; a call sticks to its instance whichever
 * rtpctl process handles the next command (Redis); delete removes the
 * session from rtpengine (checked with ng query and list sent straight
 * to it) and the sticky entry; one rtpengine killed under a stream of
 * new calls: every call after the detection succeeds on the other,
 * calls it held get a clear error; both dead: clear errors, rtpctl
 * stays up; a restarted rtpengine is taken back.  sipmesh-ctl rtp
 * drain takes an instance out of rotation on both rtpctl through Redis
 * (its calls go on), rtp list shows each rtpctl's view, enable brings
 * it back; sipmesh-ctl check names a bad pool.
 *
 * rtpengine runs with --delete-delay=0 so that a deleted call is gone
 * at once (its default keeps it 30 s).  Ports: ng sockets and Redis on
 * free loopback ports, media ranges from a per-process base.
 */
const assert = require('node:assert/strict');
const { spawn, spawnSync } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, before, after, it } = require('node:test');
/* bencode and rtpengine start-up are the harness's, so that this file
 * and cluster() start rtpengine the same way. */
const {
	Proc, freePort, freePortRanges, waitUntil, redisCommand, HOST, benc, unbenc, rtpengineProc, rtpengineReady,
} = require('./lib/cluster');

/* Resolves once /proc says pid is stopped (state T). */
async function waitStopped(pid) {
	const deadline = Date.now() + 2000;
	while (Date.now() < deadline) {
		const st = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
		if (st.slice(st.lastIndexOf(')') + 2)[0] === 'T')
			return;
		await new Promise((r) => setTimeout(r, 5));
	}
	throw new Error(`process ${pid} did not stop`);
}

const DEADLINE_MS = 15000;
const PING_MS = 200;
const NG_TIMEOUT_MS = 200;
const NG_TRIES = 3;
const FAIL_THRESHOLD = 2;

/* ---- processes ---- */

/* One ng command straight to an rtpengine, bypassing rtpctl. */
function ngDirect(port, dict, ms = 1000) {
	return new Promise((resolve, reject) => {
		const s = dgram.createSocket('udp4');
		const cookie = `t${process.pid}_${Math.random().toString(36).slice(2)}`;
		const to = setTimeout(() => { s.close(); reject(new Error(`ng to ${port}: no answer`)); }, ms);
		s.on('message', (m) => {
			clearTimeout(to);
			s.close();
			const sp = m.indexOf(' ');
			try { resolve(unbenc(m.subarray(sp + 1))); } catch (e) { reject(e); }
		});
		s.send(Buffer.concat([Buffer.from(`${cookie} `), benc(dict)]), port, HOST);
	});
}

/*
 * rtpc-probe in stream mode: send() writes "TAG TIMEOUT HEX" and
 * resolves with {status, instance, reply, reason} when its line comes.
 */
class Probe {
	constructor(url) {
		const bin = path.join(process.env.SIPMESH_BIN || '', 'rtpc-probe');
		this.child = spawn(bin, ['-u', url, '-s'], { stdio: ['pipe', 'pipe', 'pipe'] });
		this.waiting = new Map();
		this.seq = 0;
		this.err = '';
		let part = '';
		this.child.stdout.setEncoding('latin1');
		this.child.stdout.on('data', (d) => {
			const lines = (part + d).split('\n');
			part = lines.pop();
			for (const l of lines) this._line(l);
		});
		this.child.stderr.on('data', (d) => { this.err += d; });
		this.exited = new Promise((r) => this.child.on('exit', (code, sig) => r({ code, sig })));
	}

	_line(l) {
		const m = /^(\S+) (-?\d+) (\S+) (\S+) ?(.*)$/.exec(l);
		if (!m) return;
		const w = this.waiting.get(m[1]);
		if (!w) return;
		this.waiting.delete(m[1]);
		w({
			status: Number(m[2]),
			instance: m[3] === '-' ? '' : m[3],
			reply: m[4] === '-' ? null : unbenc(Buffer.from(m[4], 'hex')),
			reason: m[5],
			ms: Date.now() - w.t0,
		});
	}

	send(dict, timeoutMs = 3000) {
		const tag = `q${++this.seq}`;
		return new Promise((resolve) => {
			resolve.t0 = Date.now();
			this.waiting.set(tag, resolve);
			this.child.stdin.write(`${tag} ${timeoutMs} ${benc(dict).toString('hex')}\n`);
		});
	}

	async close() {
		this.child.stdin.end();
		const r = await Promise.race([this.exited,
			new Promise((res) => setTimeout(() => res(null), 5000).unref())]);
		if (r === null) this.child.kill('SIGKILL');
		return r;
	}
}

function sdp(port) {
	return ['v=0', 'o=- 1545997027 1 IN IP4 10.9.9.9', 's=probe', 'c=IN IP4 10.9.9.9',
		't=0 0', `m=audio ${port} RTP/AVP 0 8 101`, 'a=rtpmap:0 PCMU/8000',
		'a=rtpmap:8 PCMA/8000', 'a=rtpmap:101 telephone-event/8000', 'a=sendrecv', ''].join('\r\n');
}

function offer(callId, flags = ['trust-address']) {
	return {
		command: 'offer', 'call-id': callId, 'from-tag': `ft-${callId}`, sdp: sdp(40000),
		flags, replace: ['origin', 'session-connection'], 'transport-protocol': 'RTP/AVP',
		ICE: 'remove',
	};
}

function answer(callId) {
	return {
		command: 'answer', 'call-id': callId, 'from-tag': `ft-${callId}`,
		'to-tag': `tt-${callId}`, sdp: sdp(42000), flags: ['trust-address'],
		replace: ['origin', 'session-connection'],
	};
}

let n = 0;
const callId = (what) => `${what}-${process.pid}-${++n}@integ.test`;

describe('40 media rtpctl', () => {
	const env = {};
	const procs = [];

	before(async () => {
		env.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smr-'));
		env.runDir = path.join(env.dir, 'run');
		fs.mkdirSync(env.runDir, { mode: 0o700 });
		/* Each offer takes up to four ports; the stream test makes
		 * about 150 calls. */
		const [ra, rb] = freePortRanges(2, 1000);
		env.eng = [
			{ name: 'rtpengine-a', ng: await freePort(), ...ra },
			{ name: 'rtpengine-b', ng: await freePort(), ...rb },
		];
		for (const e of env.eng) {
			e.addr = `${HOST}:${e.ng}`;
			e.proc = rtpengineProc(e.name, path.join(env.dir, `${e.name}.pid`), e);
			procs.push(e.proc);
		}
		env.redisPort = await freePort();
		env.redis = new Proc('redis', 'redis-server', ['--port', String(env.redisPort), '--bind', HOST,
			'--save', '', '--appendonly', 'no', '--dir', env.dir, '--logfile', '']);
		procs.push(env.redis);
		env.prefix = `smr${process.pid}`;
		env.urls = [1, 2].map((i) => `ipc://${env.runDir}/rtpctl-${i}`);
		env.conf = path.join(env.dir, 'sipmesh.conf');
		fs.writeFileSync(env.conf, [
			'; written by tests/integ/40-media-rtpctl.test.js',
			'[cluster]', `run_dir = ${env.runDir}`,
			'[log]', `level = ${process.env.SIPMESH_INTEG_LOG || 'info'}`,
			'[redis]', `address = ${HOST}:${env.redisPort}`, `prefix = ${env.prefix}`,
			'[rtpctl]', `instances = ${env.eng[0].addr}/1 ${env.eng[1].addr}/1`,
			`ipc = ${env.urls.join(' ')}`, `ping_interval_ms = ${PING_MS}`,
			`fail_threshold = ${FAIL_THRESHOLD}`, `ng_timeout_ms = ${NG_TIMEOUT_MS}`,
			`ng_tries = ${NG_TRIES}`, 'call_ttl_s = 600', '',
		].join('\n'));
		for (const e of env.eng) await rtpengineReady(e, DEADLINE_MS);
		await waitUntil(async () => {
			if (!env.redis.alive) throw new Error(`redis ${env.redis.status}`);
			try { return (await redisCommand(env.redisPort, 'PING')) === 'PONG'; } catch { return false; }
		}, DEADLINE_MS, 'redis-server');
		const bin = path.join(process.env.SIPMESH_BIN || '', 'sipmesh-rtpctl');
		env.rtpctl = [1, 2].map((i) => new Proc(`rtpctl-${i}`, bin, ['-c', env.conf, '-i', String(i)]));
		procs.push(...env.rtpctl);
		env.probe = env.urls.map((u) => new Probe(u));
		for (const [i, p] of env.probe.entries()) {
			await waitUntil(async () => {
				if (!env.rtpctl[i].alive) throw new Error(`rtpctl-${i + 1} ${env.rtpctl[i].status}:\n${env.rtpctl[i].tail()}`);
				return (await p.send({ command: 'ping' }, 500)).status === 0;
			}, DEADLINE_MS, `rtpctl-${i + 1} relaying a ping`);
		}
	}, { timeout: DEADLINE_MS * 3 });

	after(async () => {
		const problems = [];
		for (const p of env.probe || []) await p.close();
		for (const p of env.rtpctl || []) {
			const pr = await p.stop();
			if (pr) problems.push(pr);
		}
		for (const p of procs) if (p.alive) await p.stop();
		if (problems.length)
			throw new Error(`rtpctl did not stop cleanly:\n${problems.join('\n')}\n` +
				env.rtpctl.map((p) => `---- ${p.name}\n${p.tail(0, 60)}`).join('\n'));
		if (!process.env.SIPMESH_INTEG_KEEP) fs.rmSync(env.dir, { recursive: true, force: true });
	}, { timeout: 30000 });

	/* The failure report: what each process said during the test. */
	function report(since) {
		return procs.map((p) => `---- ${p.name} (${p.status}):\n${p.tail(since, 40)}`).join('\n');
	}

	function test(name, fn) {
		it(name, { timeout: 60000 }, async (t) => {
			const t0 = Date.now();
			try {
				await fn(t);
			} catch (err) {
				err.message += `\n\n${report(t0)}`;
				throw err;
			}
		});
	}

	const key = (cid) => `${env.prefix}:rtpc:${cid}`;
	const engOf = (addr) => env.eng.find((e) => e.addr === addr);

	test('an offer with a real SDP comes back rewritten to the relay, and the call is placed in Redis', async () => {
		const cid = callId('offer');
		const r = await env.probe[0].send(offer(cid));
		assert.equal(r.status, 0, `offer failed: ${r.reason}`);
		assert.equal(r.reply.result, 'ok');
		const e = engOf(r.instance);
		assert.ok(e, `reply names a pool instance, got "${r.instance}"`);
		assert.match(r.reply.sdp, /^c=IN IP4 127\.0\.0\.1\r$/m, 'connection address is the relay');
		assert.match(r.reply.sdp, /^o=- \d+ \d+ IN IP4 127\.0\.0\.1\r$/m, 'origin replaced');
		assert.doesNotMatch(r.reply.sdp, /10\.9\.9\.9/, 'the caller address is gone');
		const port = Number(/^m=audio (\d+) RTP\/AVP/m.exec(r.reply.sdp)[1]);
		assert.ok(port >= e.min && port <= e.max, `media port ${port} in ${e.name}'s range ${e.min}-${e.max}`);
		assert.equal(await redisCommand(env.redisPort, 'GET', key(cid)), r.instance);
		const ttl = await redisCommand(env.redisPort, 'PTTL', key(cid));
		assert.ok(ttl > 590000 && ttl <= 600000, `entry expires with the call (PTTL ${ttl})`);
		const q = await ngDirect(e.ng, { command: 'query', 'call-id': cid });
		assert.equal(q.result, 'ok', 'the session exists on that instance');
	});

	test('a call sticks to its instance across both rtpctl processes; new calls use both instances', async () => {
		const used = new Set();
		for (let i = 0; i < 8; i++) {
			const cid = callId('sticky');
			const first = env.probe[i % 2];
			const other = env.probe[1 - (i % 2)];
			const o = await first.send(offer(cid));
			assert.equal(o.status, 0, `offer: ${o.reason}`);
			used.add(o.instance);
			const a = await other.send(answer(cid));
			assert.equal(a.status, 0, `answer through the other rtpctl: ${a.reason}`);
			assert.equal(a.instance, o.instance, 'answer went to the instance of the offer');
			assert.match(a.reply.sdp, /^c=IN IP4 127\.0\.0\.1\r$/m);
			const re = await other.send(offer(cid));	/* a re-INVITE */
			assert.equal(re.status, 0, `re-offer: ${re.reason}`);
			assert.equal(re.instance, o.instance, 're-offer stays');
			const q = await first.send({ command: 'query', 'call-id': cid });
			assert.equal(q.status, 0, `query: ${q.reason}`);
			assert.equal(q.instance, o.instance);
			assert.ok(q.reply.tags[`ft-${cid}`] && q.reply.tags[`tt-${cid}`], 'both legs known');
			/* The other instance never heard of it. */
			const otherEng = env.eng.find((e) => e.addr !== o.instance);
			const miss = await ngDirect(otherEng.ng, { command: 'query', 'call-id': cid });
			assert.equal(miss.result, 'error');
		}
		assert.equal(used.size, 2, `new calls spread over both instances (used ${[...used]})`);
	});

	test('delete removes the session from rtpengine (ng query and list) and the sticky entry', async () => {
		const cid = callId('delete');
		const o = await env.probe[0].send(offer(cid));
		assert.equal(o.status, 0, o.reason);
		await env.probe[1].send(answer(cid));
		const e = engOf(o.instance);
		assert.ok((await ngDirect(e.ng, { command: 'list', limit: 1000 })).calls.includes(cid));
		const d = await env.probe[1].send({ command: 'delete', 'call-id': cid, 'from-tag': `ft-${cid}` });
		assert.equal(d.status, 0, `delete: ${d.reason}`);
		assert.equal(d.instance, o.instance);
		const q = await ngDirect(e.ng, { command: 'query', 'call-id': cid });
		assert.equal(q.result, 'error', 'query after delete');
		assert.match(q['error-reason'], /unknown call/i);
		assert.ok(!(await ngDirect(e.ng, { command: 'list', limit: 1000 })).calls.includes(cid), 'not listed');
		await waitUntil(async () => (await redisCommand(env.redisPort, 'EXISTS', key(cid))) === 0,
			2000, 'the sticky entry to go from Redis');
		/* The rtpctl that did not delete: no Redis entry now, so a
		 * query (not an offer) is an error either way. */
		const after = await env.probe[1].send({ command: 'query', 'call-id': cid });
		assert.notEqual(after.status, 0);
	});

	test('bad requests and unknown calls get clear errors', async () => {
		const p = env.probe[0];
		const r1 = await p.send({ 'call-id': 'x' });
		assert.equal(r1.status, -71, `no command: ${r1.status} ${r1.reason}`);
		assert.match(r1.reason, /without command/);
		const r2 = await p.send({ command: 'answer', 'call-id': callId('ghost'), 'from-tag': 'a', 'to-tag': 'b', sdp: sdp(1) });
		assert.equal(r2.status, -2, `answer for an unknown call: ${r2.status} ${r2.reason}`);
		assert.match(r2.reason, /unknown to rtpctl/);
		const r3 = await p.send({ command: 'no-such-command', 'call-id': callId('x') });
		assert.equal(r3.status, -2);
		const r4 = await p.send({ command: 'offer', 'call-id': callId('nosdp'), 'from-tag': 'f' });
		assert.equal(r4.status, -121, `rtpengine's own error is -EREMOTEIO: ${r4.status} ${r4.reason}`);
		assert.match(r4.reason, /^rtpengine 127\.0\.0\.1:\d+: /);
		assert.equal(r4.reply.result, 'error');
	});

	/*
	 * A busy or lossy rtpengine is not a dead one.  A third rtpctl sees
	 * A through a relay that drops every send of one offer and passes
	 * everything else (pings included): that offer times out and moves
	 * to B, and A stays in the pool, because A kept answering.
	 */
	/* sipmesh-ctl against this file's config and Redis. */
	function ctl(...args) {
		const bin = path.join(process.env.SIPMESH_BIN || '', 'sipmesh-ctl');
		const r = spawnSync(bin, ['-c', env.conf, ...args], { encoding: 'utf8', timeout: 10000 });
		return { code: r.status, out: r.stdout, err: r.stderr };
	}

	test('sipmesh-ctl rtp drain: no new calls on that instance from any rtpctl, its calls go on; enable brings it back', async () => {
		const [A, B] = env.eng;
		/* A call on A before the drain. */
		let onA = null;
		for (let i = 0; i < 6 && !onA; i++) {
			const cid = callId('pre-drain');
			const o = await env.probe[0].send(offer(cid));
			assert.equal(o.status, 0, o.reason);
			if (o.instance === A.addr) onA = cid;
		}
		assert.ok(onA, 'a call placed on A');
		const since = Date.now();
		const d = ctl('rtp', 'drain', A.addr);
		assert.equal(d.code, 0, d.err);
		assert.match(d.out, /drained: no new calls/);
		await waitUntil(() => env.rtpctl.every((p) => p.lines.some((l) => l.t >= since &&
			l.s.includes(`rtpengine ${A.addr}: drained by an operator`))), 3000, 'every rtpctl to drain A');
		for (let i = 0; i < 8; i++) {
			const o = await env.probe[i % 2].send(offer(callId('drained')));
			assert.equal(o.status, 0, o.reason);
			assert.equal(o.instance, B.addr, 'new calls avoid the drained instance');
		}
		/* The call it holds goes on: answer and query reach A. */
		const a = await env.probe[1].send(answer(onA));
		assert.equal(a.status, 0, a.reason);
		assert.equal(a.instance, A.addr);
		/* rtp list: each rtpctl's view and the drained flag. */
		let view = null;
		await waitUntil(() => {
			const l = ctl('-j', 'rtp', 'list');
			assert.equal(l.code, 0, l.err);
			view = JSON.parse(l.out);
			return view.rtpctl.length === 2 && view.rtpctl.every((x) =>
				x.instances.find((y) => y.addr === A.addr).state === 'drained');
		}, 3000, 'rtp list to show A drained on both rtpctl');
		assert.deepEqual(view.configured.map((x) => [x.addr, x.drained]), [[A.addr, true], [B.addr, false]]);
		for (const x of view.rtpctl)
			assert.equal(x.instances.find((y) => y.addr === B.addr).state, 'up');
		const human = ctl('rtp', 'list');
		assert.match(human.out, new RegExp(`${A.addr.replace(/\./g, '\\.')} +weight 1  drained`));
		/* Not one of the pool: refused, nothing changes. */
		const bad = ctl('rtp', 'drain', '127.0.0.1:1');
		assert.equal(bad.code, 1);
		assert.match(bad.err, /not one of \[rtpctl\] instances/);
		/* Back. */
		const e = ctl('rtp', 'enable', A.addr);
		assert.equal(e.code, 0, e.err);
		await waitUntil(() => env.rtpctl.every((p) => p.lines.some((l) => l.t >= since &&
			l.s.includes(`rtpengine ${A.addr}: back in rotation`))), 3000, 'every rtpctl to take A back');
		const used = new Set();
		for (let i = 0; i < 6; i++) used.add((await env.probe[i % 2].send(offer(callId('enabled')))).instance);
		assert.ok(used.has(A.addr), `A takes new calls again (${[...used]})`);
	});

	test('sipmesh-ctl check: a good file passes, a bad pool is named', async () => {
		const ok = ctl('check');
		assert.equal(ok.code, 0, ok.err);
		assert.match(ok.out, /OK \(.*2 rtpengines/);
		const bad = path.join(env.dir, 'bad.conf');
		fs.writeFileSync(bad, fs.readFileSync(env.conf, 'utf8').replace(/^instances = .*$/m, 'instances = 127.0.0.1:2223/0'));
		const b = spawnSync(path.join(process.env.SIPMESH_BIN || '', 'sipmesh-ctl'), ['-c', bad, 'check'], { encoding: 'utf8' });
		assert.equal(b.status, 1);
		assert.match(b.stderr, /\[rtpctl\] instances: 127\.0\.0\.1:2223\/0: weight not in 1\.\.1000/);
	});

	test('one lost command does not take a live rtpengine out: the offer moves on, new calls still reach it', async (t) => {
		const [A, B] = env.eng;
		const relay = dgram.createSocket('udp4');
		let client = null;
		let dropped = 0;
		let doomed = null;
		relay.on('message', (m, rinfo) => {
			if (rinfo.port === A.ng) {
				if (client) relay.send(m, client.port, client.address);
				return;
			}
			client = rinfo;
			if (doomed === null && m.includes('slow-')) doomed = /slow-[^:\s]+@integ\.test/.exec(m.toString('latin1'))[0];
			if (doomed && m.includes(doomed)) {
				dropped++;
				return;
			}
			relay.send(m, A.ng, HOST);
		});
		await new Promise((r) => relay.bind(0, HOST, r));
		const relayAddr = `${HOST}:${relay.address().port}`;
		const conf = path.join(env.dir, 'lossy.conf');
		fs.writeFileSync(conf, fs.readFileSync(env.conf, 'latin1')
			.replace(/^instances = .*$/m, `instances = ${relayAddr}/1 ${B.addr}/1`)
			.replace(/^ipc = .*$/m, `ipc = ipc://${env.runDir}/rtpctl-lossy`));
		const bin = path.join(process.env.SIPMESH_BIN || '', 'sipmesh-rtpctl');
		const lossy = new Proc('rtpctl-lossy', bin, ['-c', conf, '-i', '1']);
		procs.push(lossy);
		const probe = new Probe(`ipc://${env.runDir}/rtpctl-lossy`);
		try {
			await waitUntil(async () => {
				if (!lossy.alive) throw new Error(`rtpctl-lossy ${lossy.status}:\n${lossy.tail()}`);
				return (await probe.send({ command: 'ping' }, 500)).status === 0;
			}, DEADLINE_MS, 'rtpctl-lossy relaying a ping');
			const t0 = Date.now();
			/* Offers until one lands on the relay first and is lost
			 * there: it must still succeed, on B, after the resends. */
			let moved = null;
			for (let i = 0; i < 20 && !moved; i++) {
				const cid = callId('slow');
				doomed = null;
				const r = await probe.send(offer(cid));
				assert.equal(r.status, 0, `offer ${cid}: ${r.reason}`);
				if (doomed === cid) moved = r;
				else doomed = 'none';	/* only the first slow offer to reach the relay */
			}
			assert.ok(moved, 'an offer went to the relay first');
			assert.equal(moved.instance, B.addr, 'the lost offer moved to B');
			assert.equal(dropped, NG_TRIES, 'every send of it was lost');
			assert.ok(moved.ms >= NG_TIMEOUT_MS * NG_TRIES, `it waited for its resends (${moved.ms} ms)`);
			/* A is still in: new calls reach it through the relay. */
			doomed = 'none';
			const used = new Set();
			for (let i = 0; i < 6; i++) {
				const r = await probe.send(offer(callId('after')));
				assert.equal(r.status, 0, r.reason);
				used.add(r.instance);
			}
			assert.ok(used.has(relayAddr), `new calls still go to A (used ${[...used]})`);
			const down = lossy.lines.find((l) => l.t >= t0 && l.s.includes('is down'));
			assert.equal(down, undefined, `no instance was taken out: ${down && down.s}`);
			t.diagnostic(`lost offer answered from B after ${moved.ms} ms; A kept its calls`);
		} finally {
			await probe.close();
			await lossy.stop();
			relay.close();
		}
	});

	test('a hung rtpengine (SIGSTOP): commands are resent, new calls move on, pings take it out and back', async (t) => {
		const [A, B] = env.eng;
		let held = null;
		while (!held) {
			const cid = callId('hung');
			const o = await env.probe[0].send(offer(cid));
			assert.equal(o.status, 0, o.reason);
			if (o.instance === A.addr) held = cid;
		}
		const t0 = Date.now();
		process.kill(A.proc.pid, 'SIGSTOP');
		/* The signal is asynchronous: on a loaded machine A may still
		 * answer one more command unless we wait until it is stopped. */
		await waitStopped(A.proc.pid);
		try {
			/* A call A holds: resent, then a clear error. */
			const q = env.probe[1].send({ command: 'query', 'call-id': held });
			/* New calls: those placed on A move to B after the timeout. */
			const rs = await Promise.all(Array.from({ length: 6 },
				(_, i) => env.probe[i % 2].send(offer(callId('hung-new')))));
			for (const r of rs) {
				assert.equal(r.status, 0, `new call while A hangs: ${r.reason}`);
				assert.equal(r.instance, B.addr);
				assert.ok(r.ms < NG_TIMEOUT_MS * NG_TRIES + 1000, `answered in ${r.ms} ms`);
			}
			const qr = await q;
			assert.ok(qr.status === -110 || qr.status === -112, `query on hung A: ${qr.status} ${qr.reason}`);
			assert.ok(qr.reason.includes(A.addr), qr.reason);
			const downAt = [];
			await waitUntil(() => env.rtpctl.every((p, i) => {
				const l = p.lines.find((x) => x.t >= t0 && x.s.includes(`rtpengine ${A.addr} is down`));
				if (l) downAt[i] = l.t - t0;
				return l;
			}), 3000, 'A marked down');
			t.diagnostic(`hung A: marked down after ${downAt.join(' and ')} ms; ` +
				`the held call's query answered ${qr.status} in ${qr.ms} ms; ` +
				`new calls answered in ${rs.map((r) => r.ms).join(' ')} ms`);
		} finally {
			process.kill(A.proc.pid, 'SIGCONT');
		}
		await waitUntil(() => env.rtpctl.every((p) => p.lines.some((l) => l.t >= t0 &&
			l.s.includes(`rtpengine ${A.addr} is up`))), DEADLINE_MS, 'A back up after SIGCONT');
		const r = await env.probe[0].send({ command: 'query', 'call-id': held });
		assert.equal(r.status, 0, `the held call is served again: ${r.reason}`);
	});

	test('one rtpengine killed under a stream of new calls: calls after detection all succeed on the other', async (t) => {
		const [A, B] = env.eng;
		/* Calls A already holds, to check their error later. */
		const held = [];
		while (held.length < 2) {
			const cid = callId('held');
			const o = await env.probe[0].send(offer(cid));
			assert.equal(o.status, 0, o.reason);
			if (o.instance === A.addr) held.push(cid);
		}
		const results = [];
		let killedAt = 0;
		for (let i = 0; i < 120; i++) {
			if (i === 30) {
				killedAt = Date.now();
				process.kill(A.proc.pid, 'SIGKILL');
			}
			const cid = callId('stream');
			const sentAt = Date.now();
			results.push(env.probe[i % 2].send(offer(cid)).then((r) => ({ ...r, cid, sentAt })));
			await new Promise((r) => setTimeout(r, 15));
		}
		const rs = await Promise.all(results);
		await A.proc.exited;
		/* Detection: the "is down" line of each rtpctl, waited for
		 * until the detection budget is spent. */
		const budget = PING_MS * FAIL_THRESHOLD + NG_TIMEOUT_MS * NG_TRIES + 500;
		let down = [];
		await waitUntil(() => (down = env.rtpctl.map((p) => p.lines.find((l) => l.t >= killedAt &&
			l.s.includes(`rtpengine ${A.addr} is down`)))).every(Boolean),
		Math.max(0, killedAt + budget - Date.now()), 'both rtpctl processes to take A out', 10);
		const detected = Math.max(...down.map((l) => l.t));
		assert.ok(detected - killedAt < budget, `detected ${detected - killedAt} ms after the kill`);
		const afterDetect = rs.filter((r) => r.sentAt > detected);
		assert.ok(afterDetect.length >= 60, `${afterDetect.length} calls after detection`);
		for (const r of afterDetect) {
			assert.equal(r.status, 0, `call ${r.cid} after detection failed: ${r.reason}`);
			assert.equal(r.instance, B.addr);
		}
		t.diagnostic(`A killed: detected after ${detected - killedAt} ms; ${rs.length - afterDetect.length} ` +
			`calls before, ${afterDetect.length} after, all on B after detection`);
		const failed = rs.filter((r) => r.status !== 0);
		assert.equal(failed.length, 0, `new calls failed around the kill: ${failed.map((r) => r.reason)}`);
		/* Calls A held: a clear error, at once. */
		for (const cid of held) {
			const q = await env.probe[1].send({ command: 'query', 'call-id': cid });
			assert.equal(q.status, -112, `query of a call on dead A: ${q.status} ${q.reason}`);
			assert.equal(q.reason, `rtpengine ${A.addr} holding this call is down`);
			assert.ok(q.ms < 500, `answered in ${q.ms} ms`);
		}
		for (const p of env.rtpctl) assert.ok(p.alive, `${p.name} is up`);
	});

	test('both rtpengines dead: clear errors, rtpctl stays up; a restarted one is taken back', async () => {
		const [A, B] = env.eng;
		const onB = callId('onb');
		const o = await env.probe[0].send(offer(onB));
		assert.equal(o.instance, B.addr, o.reason);
		process.kill(B.proc.pid, 'SIGKILL');
		await B.proc.exited;
		await waitUntil(() => env.rtpctl.every((p) => p.lines.some((l) =>
			l.s.includes(`rtpengine ${B.addr} is down`))), 3000, 'B marked down');
		for (let i = 0; i < 10; i++) {
			const r = await env.probe[i % 2].send(offer(callId('nobody')));
			assert.equal(r.status, -113, `offer with no rtpengine: ${r.status} ${r.reason}`);
			assert.equal(r.reason, 'no rtpengine available');
			assert.ok(r.ms < 500, `answered in ${r.ms} ms`);
		}
		const q = await env.probe[1].send({ command: 'query', 'call-id': onB });
		assert.equal(q.status, -112);
		assert.equal(q.reason, `rtpengine ${B.addr} holding this call is down`);
		const ping = await env.probe[0].send({ command: 'ping' });
		assert.equal(ping.status, -113);
		for (const p of env.rtpctl) assert.ok(p.alive, `${p.name} is up`);
		/* A comes back on its port: the pings bring it in. */
		const restart = Date.now();
		A.proc = rtpengineProc(`${A.name}-again`, path.join(env.dir, `${A.name}-again.pid`), A);
		procs.push(A.proc);
		await waitUntil(() => env.rtpctl.every((p) => p.lines.some((l) => l.t >= restart &&
			l.s.includes(`rtpengine ${A.addr} is up`))), DEADLINE_MS, 'A back up');
		const r = await env.probe[1].send(offer(callId('back')));
		assert.equal(r.status, 0, r.reason);
		assert.equal(r.instance, A.addr);
	});
});
