'use strict';
/*
 * 52 standby core: [core 2] standby = yes makes core 2 a spare.  Every
 * Call-ID goes to core 1 while it takes them (so on a host with few
 * CPUs one core gets whole batches: bench/README.md), to core 2 once
 * core 1 is lost (here SIGSTOP: nothing closes, the link's liveness
 * finds it silent within link_dead_ms + link_heartbeat_ms), and back
 * to core 1 once the edge hears it again.  What a user sees: no
 * REGISTER or MESSAGE goes unanswered for longer than the dead time,
 * and the registrations made through the spare hold after the switch
 * back (they live in the host's shared store, not in a core).
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand } = require('./lib/cluster');
const { waitUntil } = require('./lib/wait');

const HEARTBEAT_MS = 200;
const DEAD_MS = 800;
/* Dead within DEAD_MS + HEARTBEAT_MS; the rest is the test's polling. */
const BOUND_MS = 2500;

describe('52 standby core', () => {
	const c = cluster({
		name: '52-core-standby', edges: 1, cores: 2,
		clusterKeys: { link_heartbeat_ms: HEARTBEAT_MS, link_dead_ms: DEAD_MS },
		sections: () => ({ 'core 2': { standby: 'yes' } }),
	});

	/* One REGISTER transaction (no retransmission): its final status,
	 * or 0 when none came within ms. */
	function register(ua, user, callId, ms) {
		const tx = ua.request(c.edge(1), {
			method: 'REGISTER', ruri: 'sip:a.test', aor: `sip:${user}@a.test`,
			callId, cseq: 1, contact: [`<${ua.contactUri(user)}>`], expires: 600, retransmit: false,
		});
		return tx.finalResponse(ms).then((r) => r.status, () => 0);
	}

	/* n REGISTERs of new users on new Call-IDs: their statuses. */
	function registerMany(ua, n, ms) {
		return Promise.all(Array.from({ length: n }, () =>
			register(ua, `sb-${rand(6)}`, `sb-${rand(10)}@integ`, ms)));
	}

	function message(ua, user, body) {
		return ua.send(c.edge(1), {
			method: 'MESSAGE', ruri: `sip:${user}@a.test`, from: 'sip:caller@a.test',
			to: `sip:${user}@a.test`, body, contentType: 'text/plain',
		}, 2000).then((r) => r.status, () => 0);
	}

	c.test('every Call-ID goes to the active core, to the spare while it is lost, and back', async (t) => {
		const core1 = c.cores.find((k) => k.id === 1).proc;
		const ua = await c.ua('sb');
		const callee = await c.ua('callee');
		callee.handler = () => 200;
		const user = `callee-${rand(4)}`;
		assert.equal(await register(callee, user, `callee-${rand(8)}@integ`, 5000), 200);

		/* Both running: core 1 serves all of them, core 2 none. */
		let b1 = await c.coreStatOf(1, 'registers'), b2 = await c.coreStatOf(2, 'registers');
		let st = await registerMany(ua, 32, 3000);
		assert.ok(st.every((s) => s === 200), `REGISTERs with both cores up: ${st}`);
		assert.equal(await message(ua, user, 'both up'), 200, 'MESSAGE with both cores up');
		assert.equal(await c.coreStatOf(1, 'registers') - b1, 32, 'core 1 served the 32 REGISTERs');
		assert.equal(await c.coreStatOf(2, 'registers') - b2, 0, 'the standby core served none');

		/* Core 1 lost: within the dead time core 2 serves everything. */
		const stopped = Date.now();
		process.kill(core1.pid, 'SIGSTOP');
		try {
			let served = 0;
			while (Date.now() - stopped < BOUND_MS + 3000) {
				if (await register(ua, `sb-${rand(6)}`, `sb-${rand(10)}@integ`, 100) === 200) {
					served = Date.now() - stopped;
					break;
				}
			}
			t.diagnostic(`served by the standby core ${served} ms after SIGSTOP of core 1`);
			assert.ok(served > 0 && served < BOUND_MS,
				`a REGISTER answered ${served} ms after core 1 stopped (bound ${BOUND_MS} ms)`);
			b2 = await c.coreStatOf(2, 'registers');
			st = await registerMany(ua, 32, 1000);
			assert.ok(st.every((s) => s === 200), `REGISTERs with core 1 lost: ${st}`);
			assert.equal(await message(ua, user, 'core 1 lost'), 200, 'MESSAGE with core 1 lost');
			assert.equal(await c.coreStatOf(2, 'registers') - b2, 32, 'the standby core served them');
			/* made through the spare, checked after the switch back */
			assert.equal(await register(callee, user, `callee-${rand(8)}@integ`, 1000), 200);
		} finally {
			process.kill(core1.pid, 'SIGCONT');
		}

		/* Back: core 1 takes every Call-ID again. */
		const resumed = Date.now();
		await waitUntil(() => c.edges[0].proc.lines.some((l) => l.t >= resumed && /core 1 heard again/.test(l.s)),
			3000, 'edge 1 to hear core 1 again', 20);
		b1 = await c.coreStatOf(1, 'registers');
		b2 = await c.coreStatOf(2, 'registers');
		st = await registerMany(ua, 32, 3000);
		assert.ok(st.every((s) => s === 200), `REGISTERs with core 1 back: ${st}`);
		assert.equal(await message(ua, user, 'core 1 back'), 200,
			'MESSAGE to the user registered through the spare');
		assert.equal(await c.coreStatOf(1, 'registers') - b1, 32, 'core 1 serves them again');
		assert.equal(await c.coreStatOf(2, 'registers') - b2, 0, 'the standby core is idle again');
	});
});
