'use strict';
/*
 * 51 link liveness: a host lost without closing its sockets (power,
 * network, a hung process) is simulated by SIGSTOP: the process's
 * tcp:// link endpoints stay open, nothing says FIN or RST, and before
 * commit "link: heartbeats on idle links" nanomsg kept calling such a
 * peer connected for ever:
 *   - a stopped core: requests whose Call-ID hashes to it went to it
 *     and were never answered, however long the clients retried; now,
 *     within link_dead_ms + link_heartbeat_ms of the stop (2.5 s here),
 *     new REGISTER, MESSAGE and INVITE transactions on those very
 *     Call-IDs are answered by the other core, and once the core runs
 *     again (SIGCONT) its Call-IDs come back to it;
 *   - a stopped edge: a MESSAGE to a user whose TCP connection it holds
 *     waited for timer F (64*T1 = 32 s) and got 408; now it gets 430
 *     (RFC 5626 flow failed) within the dead time, a later one at once
 *     without being queued to the stopped edge (counted), and the
 *     binding stays: once the edge runs again the user gets messages;
 *   - an INVITE forwarded by a core that is then stopped: the callee's
 *     200 reached nobody (its core was lost with the transaction); now
 *     the other core forwards it along its Via and the caller gets it;
 *   - a core cut off the network: core 2 runs in a network namespace of
 *     its own, joined to the test's by a veth pair (its tcp:// link
 *     endpoints on 10.77.0.2, everyone else's on 10.77.0.1); `ip link
 *     set va down` loses every packet both ways and closes nothing: as
 *     for the stopped core, and core 2 takes the edges for lost too.
 * The links are tcp://, as between hosts.  The file runs in a network
 * namespace of its own (lib/netns.js: root).
 */
if (!require('./lib/netns').reexecInNetns(__filename, 'nameserver 127.0.0.1\n'))
	return;

const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const { spawn, spawnSync } = require('node:child_process');
const { describe, before, after } = require('node:test');
const { cluster, rand } = require('./lib/cluster');
const { buildResponse } = require('./lib/sip');
const { StreamUA } = require('./lib/ws');
const { waitUntil } = require('./lib/wait');

/* Core 2's own network namespace, and the veth pair to it. */
const NET_A = '10.77.0.1';
const NET_B = '10.77.0.2';

function sh(cmd) {
	const r = spawnSync('sh', ['-c', cmd], { encoding: 'utf8' });
	if (r.status !== 0) throw new Error(`${cmd}: ${r.stderr}`);
}

const HEARTBEAT_MS = 500;
const DEAD_MS = 2000;
/* Dead within DEAD_MS + HEARTBEAT_MS; the rest is the test's polling. */
const BOUND_MS = 3000;

describe('51 link liveness', () => {
	let holder;	/* sleeps in core 2's namespace, holding it */
	before(async () => {
		holder = spawn('unshare', ['--net', 'sleep', '3600'], { stdio: 'ignore' });
		const ours = fs.readlinkSync('/proc/self/ns/net');
		await waitUntil(() => {
			try { return fs.readlinkSync(`/proc/${holder.pid}/ns/net`) !== ours; } catch { return false; }
		}, 2000, 'a network namespace for core 2');
		sh(`ip link add va type veth peer name vb && ip link set vb netns ${holder.pid} && ` +
			`ip addr add ${NET_A}/24 dev va && ip link set va up`);
		sh(`nsenter --net=/proc/${holder.pid}/ns/net sh -c 'ip link set lo up && ` +
			`ip addr add ${NET_B}/24 dev vb && ip link set vb up'`);
	});
	const c = cluster({
		name: '51-link-liveness', edges: 2, cores: 2, tcpLinks: true,
		linkHost: (kind, id) => (kind === 'core' && id === 2 ? NET_B : NET_A),
		wrap: (name) => (name === 'core-2' ? ['nsenter', `--net=/proc/${holder.pid}/ns/net`] : null),
		clusterKeys: {
			secret: crypto.randomBytes(24).toString('hex'),
			link_heartbeat_ms: HEARTBEAT_MS, link_dead_ms: DEAD_MS,
		},
	});

	/* Resolves once p logged a line matching re after `since`. */
	function logged(p, re, since, ms, what) {
		return waitUntil(() => p.lines.some((l) => l.t >= since && re.test(l.s)), ms, what, 20);
	}

	/* One REGISTER transaction (no retransmission) on Call-ID callId:
	 * its final status, or 0 when none came within ms. */
	async function register(ua, edge, user, callId, cseq, ms) {
		const tx = ua.request(edge, {
			method: 'REGISTER', ruri: 'sip:a.test', aor: `sip:${user}@a.test`,
			callId, cseq, contact: [`<${ua.contactUri(user)}>`], expires: 600, retransmit: false,
		});
		return tx.finalResponse(ms).then((r) => r.status, () => 0);
	}

	/*
	 * Core 2 lost by how.stop() (what: for messages) and back by
	 * how.resume(): its Call-IDs are served by core 1 within BOUND_MS,
	 * every method, and are its own again once the edges hear it,
	 * within how.backMs.
	 */
	async function coreLost(t, how) {
		const core2 = c.cores.find((k) => k.id === 2).proc;
		const callee = await c.ua('callee');
		callee.handler = (req) => (req.method === 'INVITE' ? 486 : 200);
		const user = `lv-${rand(4)}`;
		assert.equal(await register(callee, c.edge(1), user, `callee-${rand(6)}@integ`, 1, 5000), 200,
			'the callee registers while both cores run');
		const ua = await c.ua('caller');
		const ids = Array.from({ length: 16 }, () => `lv-${rand(10)}@integ`);

		const stopped = Date.now();
		let mine = [];
		how.stop();
		try {
			/* Right after the loss, the Call-IDs of core 2 go unanswered:
			 * that is how the test knows them. */
			const first = await Promise.all(ids.map((id) => register(ua, c.edge(1), `p-${rand(4)}`, id, 1, 800)));
			mine = ids.filter((id, i) => first[i] === 0);
			c.addEvidence(`first REGISTER per Call-ID after ${how.what}`,
				ids.map((id, i) => `${id}: ${first[i] || 'no answer'}`).join('\n'));
			assert.ok(mine.length > 0 && mine.length < ids.length,
				`of 16 Call-IDs, some must hash to each core; unanswered: ${mine.length}`);
			assert.ok(first.every((s) => s === 0 || s === 200), `statuses ${first}`);

			/* A new transaction on a Call-ID of core 2 every 100 ms until
			 * one is answered. */
			let cseq = 2;
			let served = 0;
			while (Date.now() - stopped < BOUND_MS + 5000) {
				if (await register(ua, c.edge(1), `p-${rand(4)}`, mine[0], cseq++, 100) === 200) {
					served = Date.now() - stopped;
					break;
				}
			}
			t.diagnostic(`Call-ID of core 2 served again ${served} ms after ${how.what}`);
			c.addEvidence(`time from ${how.what} to a Call-ID of core 2 answered`, `${served} ms`);
			assert.ok(served > 0, `a Call-ID of core 2 never got an answer in ${BOUND_MS + 5000} ms`);
			assert.ok(served < BOUND_MS, `answered only ${served} ms after ${how.what} (bound ${BOUND_MS} ms)`);
			for (const e of c.edges)
				await logged(e.proc, /core 2 silent for 2000 ms/, stopped, 1000, `edge ${e.id} to log core 2 lost`);

			/* Every method, on every Call-ID of the lost core, at once. */
			for (const id of mine) {
				const t0 = Date.now();
				assert.equal(await register(ua, c.edge(1), `p-${rand(4)}`, id, cseq++, 1000), 200, `REGISTER on ${id}`);
				const m = await ua.send(c.edge(2), {
					method: 'MESSAGE', ruri: `sip:${user}@a.test`, from: 'sip:caller@a.test',
					to: `sip:${user}@a.test`, callId: id, cseq: cseq++, body: `on ${id}`, contentType: 'text/plain',
				}, 1000);
				assert.equal(m.status, 200, `MESSAGE on ${id} through edge 2 reached the callee`);
				const inv = await ua.send(c.edge(1), {
					method: 'INVITE', ruri: `sip:${user}@a.test`, from: 'sip:caller@a.test',
					to: `sip:${user}@a.test`, callId: id, cseq: cseq++,
					contact: [`<${ua.contactUri('caller')}>`],
				}, 1000);
				assert.equal(inv.status, 486, `INVITE on ${id}: the callee's own answer`);
				assert.ok(Date.now() - t0 < 1000, `three transactions on ${id} took ${Date.now() - t0} ms`);
			}
		} finally {
			how.resume();
		}

		/* Back: its Call-IDs go to it again (its REGISTER counter moves,
		 * core 1's does not). */
		const resumed = Date.now();
		for (const e of c.edges)
			await logged(e.proc, /core 2 heard again/, resumed, how.backMs, `edge ${e.id} to hear core 2 again`);
		t.diagnostic(`edges heard core 2 again ${Date.now() - resumed} ms after it came back`);
		const before2 = await c.coreStatOf(2, 'registers');
		const before1 = await c.coreStatOf(1, 'registers');
		let cseq = 100;
		for (const id of mine)
			assert.equal(await register(ua, c.edge(1), `p-${rand(4)}`, id, cseq++, 2000), 200, `REGISTER on ${id} once back`);
		/* At least: what reached it late (queued while it was lost)
		 * counts too. */
		const more = await c.coreStatOf(2, 'registers') - before2;
		assert.ok(more >= mine.length, `core 2 serves its Call-IDs again: ${more} REGISTERs, want ${mine.length}`);
		assert.equal(await c.coreStatOf(1, 'registers') - before1, 0, 'core 1 no longer serves them');
	}

	c.test('a stopped core\'s Call-IDs are served by the other core within the dead time, and come back', async (t) => {
		const core2 = c.cores.find((k) => k.id === 2).proc;
		await coreLost(t, {
			what: 'SIGSTOP of core 2', backMs: 2000,
			stop: () => process.kill(core2.pid, 'SIGSTOP'),
			resume: () => process.kill(core2.pid, 'SIGCONT'),
		});
	});

	/* The callee answers after the core that forwarded the INVITE is
	 * lost: the transaction died with it, but the 2xx is not dropped,
	 * the other core forwards it along its Via (RFC 3261 16.7 step 5,
	 * as a proxy that lost the transaction does), and the call is up. */
	c.test('an INVITE answered after its core is lost: the 2xx reaches the caller through the other core', async () => {
		const core2 = c.cores.find((k) => k.id === 2).proc;
		const callee = await c.ua('callee');
		callee.handler = (req) => (req.method === 'INVITE' ? null : 200);
		const user = `ans-${rand(4)}`;
		assert.equal(await register(callee, c.edge(1), user, `callee-${rand(6)}@integ`, 1, 5000), 200);
		const ua = await c.ua('caller');
		const txs = Array.from({ length: 8 }, () => ua.request(c.edge(1), {
			method: 'INVITE', ruri: `sip:${user}@a.test`, from: 'sip:caller@a.test',
			to: `sip:${user}@a.test`, contact: [`<${ua.contactUri('caller')}>`],
		}));
		await waitUntil(() => new Set(callee.requests.filter((r) => r.method === 'INVITE').map((r) => r.callId)).size === 8,
			5000, 'the callee to get the 8 INVITEs', 20);
		const invites = callee.requests.filter((r) => r.method === 'INVITE');
		const held = invites.find((r) => /^z9hG4bKsm2\./.test(r.branch));
		assert.ok(held, `an INVITE through core 2 among branches ${invites.map((r) => r.branch)}`);
		const tx = txs.find((x) => x.req.callId === held.callId);
		const answer = (req, status, reason, headers = []) =>
			callee.sendRaw(req.source, buildResponse(req, status, reason, { toTag: rand(4), headers }));
		const stopped = Date.now();
		process.kill(core2.pid, 'SIGSTOP');
		try {
			for (const e of c.edges)
				await logged(e.proc, /core 2 silent for 2000 ms/, stopped, BOUND_MS, `edge ${e.id} to log core 2 lost`);
			await answer(held, 200, 'OK', [['Contact', `<${callee.contactUri(user)}>`]]);
			const r = await tx.finalResponse(1000);
			assert.equal(r.status, 200, 'the caller gets the 2xx of its INVITE');
			assert.ok(!/z9hG4bKsm/.test(r.get('via')), 'with the cores\' Via gone');
		} finally {
			process.kill(core2.pid, 'SIGCONT');
			for (const inv of invites.filter((x) => x !== held)) await answer(inv, 486, 'Busy Here');
		}
		const resumed = Date.now();
		for (const e of c.edges)
			await logged(e.proc, /core 2 heard again/, resumed, 2000, `edge ${e.id} to hear core 2 again`);
	});

	/* The link down: packets to and from core 2's namespace are lost,
	 * nobody's socket closes.  Back up, TCP's retransmission back-off
	 * (a few seconds after a cut this long) decides when it is heard. */
	c.test('a core cut off the network: its Call-IDs are served by the other core within the dead time, and come back', async (t) => {
		await coreLost(t, {
			what: 'the link to core 2 cut', backMs: 20000,
			stop: () => sh('ip link set va down'),
			resume: () => sh('ip link set va up'),
		});
		const core2 = c.cores.find((k) => k.id === 2).proc;
		assert.ok(core2.lines.some((l) => /edge 1 silent for 2000 ms/.test(l.s)),
			'core 2, cut off, took the edges for lost too');
	});

	c.test('a stopped edge: a MESSAGE to a user on it fails with 430 within the dead time, and is not queued to it', async (t) => {
		const edge2 = c.edges.find((e) => e.id === 2).proc;
		const user = `tcp-${rand(4)}`;
		const callee = await StreamUA.open({ host: c.edge(2).host, port: c.edge(2).port });
		c.addEvidence('TCP callee on edge 2', { toString: () => callee.transcript.join('\n') });
		try {
			const r = await callee.send({
				method: 'REGISTER', ruri: 'sip:a.test', from: `sip:${user}@a.test`, to: `sip:${user}@a.test`,
				user, expires: 600,
			});
			assert.equal(r.status, 200, 'REGISTER over TCP through edge 2');
			const ua = await c.ua('caller');
			const send = (body, ms) => ua.send(c.edge(1), {
				method: 'MESSAGE', ruri: `sip:${user}@a.test`, from: 'sip:caller@a.test',
				to: `sip:${user}@a.test`, body, contentType: 'text/plain',
			}, ms);
			const refusedBefore = await c.coreStat('envelopes-to-dead-peers');

			const stopped = Date.now();
			process.kill(edge2.pid, 'SIGSTOP');
			try {
				/* Sent at once: the cores still take edge 2 for alive and
				 * hand it the MESSAGE, which nobody reads. */
				const m1 = await send('during', BOUND_MS + 35000).catch((e) => ({ status: 0, e }));
				const took = Date.now() - stopped;
				t.diagnostic(`MESSAGE to a user of the stopped edge: ${m1.status} after ${took} ms`);
				c.addEvidence('MESSAGE sent right after SIGSTOP of edge 2', `${m1.status} after ${took} ms`);
				assert.equal(m1.status, 430, `final status ${m1.status} after ${took} ms`);
				assert.ok(took < BOUND_MS, `430 came ${took} ms after the stop (bound ${BOUND_MS} ms)`);

				/* Once every core knows edge 2 lost, the next fails at
				 * once (each core ticks on its own clock). */
				for (const k of c.cores)
					await logged(k.proc, /edge 2 silent for 2000 ms/, stopped, 1000, `core ${k.id} to log edge 2 lost`);
				const t0 = Date.now();
				const m2 = await send('after', 2000);
				assert.equal(m2.status, 430, 'a MESSAGE once edge 2 is known lost');
				assert.ok(Date.now() - t0 < 500, `took ${Date.now() - t0} ms`);
				assert.ok(await c.coreStat('envelopes-to-dead-peers') > refusedBefore,
					'the cores refused envelopes for the stopped edge instead of queueing them');
			} finally {
				process.kill(edge2.pid, 'SIGCONT');
			}

			/* The binding stayed: the resumed edge's user gets messages. */
			const resumed = Date.now();
			for (const k of c.cores)
				await logged(k.proc, /edge 2 heard again/, resumed, 2000, `core ${k.id} to hear edge 2 again`);
			const got = callee.waitRequest((m) => m.method === 'MESSAGE' && /back again/.test(String(m.body)), 3000,
				'the MESSAGE sent after SIGCONT');
			const m3 = send('back again', 3000);
			callee.reply(await got, 200, 'OK');
			assert.equal((await m3).status, 200, 'MESSAGE to the user of the resumed edge');
		} finally {
			callee.close();
		}
	});

	after(() => {
		if (holder) holder.kill('SIGKILL');
	});
});
