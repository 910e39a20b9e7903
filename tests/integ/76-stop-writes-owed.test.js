'use strict';
/*
 * 76 A core stopping with writes owed (location/loc.c loc_drain): a
 * binding a core took while Redis was away lives only in its host's
 * shared store until the core's link is back; a host that stops then
 * (a rolling restart, a reboot) would take it along.
 *
 * - Redis away, a REGISTER answered from the shared store, Redis back
 *   (empty) while the core's back-off still runs, SIGTERM at once: the
 *   core links again without waiting for its back-off, writes the
 *   binding, says so, and exits 0.
 * - Redis still away: the core gives up after LOC_DRAIN_MS (2 s), says
 *   how many AORs it leaves in the host's store, and exits 0.
 * - A crash instead (SIGKILL, nothing drained) while Redis is away: the
 *   binding stays in the host's store, which also says since when it is
 *   out of step with Redis; the restarted core reconciles the whole
 *   store when Redis is back (empty) and writes the binding there.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { Registration } = require('./lib/flows');
const { hold, field, key } = require('./lib/load');

/* A long back-off: without the drain the core would not link again
 * between Redis's return and its stop. */
const REDIS_KEYS = { timeout_ms: 300, backoff_max_ms: 8000 };

/* Stops core 1 by SIGTERM as systemd does; its process leaves the
 * cluster's list (teardown must not stop it again).  Resolves with
 * {problem, ms, log}. */
async function stopCore(c) {
	const k = c.cores[0];
	const p = k.proc;
	const t0 = Date.now();
	const problem = await p.stop();
	c.retired.push(p);
	c.procs = c.procs.filter((q) => q !== p);
	k.proc = null;
	return { problem, ms: Date.now() - t0, log: p.text() };
}

describe('76 stop writes owed', () => {
	const c = cluster({ name: '76-back', edges: 1, cores: 1, redis: REDIS_KEYS });

	c.test('Redis back while the back-off runs: a stopping core writes the binding it took first', async (t) => {
		const ua = await c.ua('owed-ua');
		const reg = new Registration(ua, c.edge(1), `owed-${rand(4)}`);
		await c.stopRedis('SIGKILL');
		await reg.register(600);
		/* failed attempts double the back-off towards 8 s */
		await hold(3000);
		await c.startRedis();
		const st = await stopCore(c);
		const inRedis = Number(await c.redisCmd('HEXISTS', key(c, reg), field(reg)));
		t.diagnostic(`stop took ${st.ms} ms; binding in Redis: ${inRedis}`);
		assert.equal(st.problem, null, `the core's stop: ${st.problem}`);
		assert.equal(inRedis, 1, `the binding taken while Redis was away is not in Redis:\n${st.log.slice(-2000)}`);
		assert.match(st.log, /wrote the 1 AOR\(s\) owed to Redis before stopping/);
		assert.ok(st.ms < 2000, `the stop took ${st.ms} ms`);
	});
});

describe('76 stop writes owed, Redis away', () => {
	const c = cluster({ name: '76-away', edges: 1, cores: 1, redis: REDIS_KEYS });

	c.test('Redis still away: a stopping core gives up after 2 s and says what it leaves', async () => {
		const ua = await c.ua('away-ua');
		const reg = new Registration(ua, c.edge(1), `away-${rand(4)}`);
		await c.stopRedis('SIGKILL');
		await reg.register(600);
		const st = await stopCore(c);
		assert.equal(st.problem, null, `the core's stop: ${st.problem}`);
		assert.match(st.log, /stopping with 1 AOR\(s\) not written to Redis/);
		assert.ok(st.ms >= 1900 && st.ms < 4500, `the stop took ${st.ms} ms`);
		await c.startRedis();	/* for the teardown's checks */
	});
});

describe('76 stop writes owed, crash', () => {
	const c = cluster({ name: '76-crash', edges: 1, cores: 1, redis: { timeout_ms: 300, backoff_max_ms: 500 } });

	c.test('a core killed -9 while Redis is away: its restart writes the binding to Redis once back', async (t) => {
		const ua = await c.ua('crash-ua');
		const reg = new Registration(ua, c.edge(1), `crash-${rand(4)}`);
		await c.stopRedis('SIGKILL');
		await reg.register(600);
		await c.kill('core', 1);
		await c.startRedis();	/* empty: no persistence */
		await c.startAgain('core', 1);
		const t0 = Date.now();
		await waitUntil(async () => Number(await c.redisCmd('HEXISTS', key(c, reg), field(reg))) === 1,
			5000, 'the binding taken before the crash in Redis');
		t.diagnostic(`binding in Redis ${Date.now() - t0} ms after the core's restart`);
		const q = (await reg.query()).map((b) => b.uri);
		assert.ok(q.includes(reg.contact), `the AOR lists ${q.join(' ') || 'nothing'}`);
	});
});
