'use strict';
/*
 * 71 Redis Sentinel: the processes find the Redis master through three
 * sentinels ([redis] sentinels, no address) and follow a failover
 * under REGISTER + MESSAGE load (lib/rconn.c, "Sentinel").
 *
 * kill -9 of the master: the sentinels promote the replica (down after
 * 1 s); SIP never stops (the cores serve from shared memory), every
 * binding made before and during the failover is in the new master
 * afterwards (the location layer sees another run_id and pushes its
 * store), each core's link is on the new master, and a new REGISTER
 * reaches it within seconds.  The figures (requests, failures, bindings
 * lost, recovery time) are a diagnostic line "fault: ...".  It times
 * recovery and counts failures under load, which a busy machine
 * distorts:
 * integ: serial
 */
const assert = require('node:assert/strict');
const { describe, afterEach } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { Registration } = require('./lib/flows');
const {
	hold, startLoad, stopLoads, field, key, inRedis, registerMany, unreachable, report,
} = require('./lib/load');

const AORS = 60;

describe('71 redis sentinel', () => {
	const c = cluster({
		name: '71-sentinel', edges: 1, cores: 2,
		redis: { sentinel: true, timeout_ms: 500, backoff_max_ms: 1000 },
	});
	afterEach(stopLoads);

	c.test('kill -9 of the master: the replica takes over, no binding lost, SIP goes on', async (t) => {
		const ua = await c.ua('sen-ua');
		const before = await registerMany(c, ua, c.edge(1), 'b', AORS);
		await waitUntil(async () => (await inRedis(c, before)) === AORS, 5000, 'the bindings in Redis');
		const first = await c.sentinelMaster();
		assert.equal(first, c.redis.port, 'the sentinels name the first master');
		assert.match(await c.redisCmd('CONFIG', 'GET', 'port').then((r) => r[1]), new RegExp(`^${first}$`));

		const load = startLoad(await c.ua('sen-sender'), c.edge(1), before);
		await hold(500);
		const killed = Date.now();
		await c.killRedisMaster('SIGKILL');
		/* new AORs while no master answers: the cores keep them */
		const during = await registerMany(c, ua, c.edge(1), 'd', 20);
		await waitUntil(async () => (await c.sentinelMaster()) !== first, 15000,
			'the sentinels to promote the replica');
		const promoted = (Date.now() - killed) / 1000;
		const all = [...before, ...during];
		await waitUntil(async () => (await inRedis(c, all)) === all.length, 10000,
			`all ${all.length} bindings in the new master`);
		const recovery = (Date.now() - killed) / 1000;
		/* a REGISTER after the failover goes through to the new master */
		const fresh = new Registration(ua, c.edge(1), `f-${rand(4)}`);
		const r = await fresh.register(600);
		const freshAt = Date.now();
		await waitUntil(async () => Number(await c.redisCmd('HEXISTS', key(c, fresh), field(fresh))) === 1,
			3000, 'the new REGISTER in the new master');
		const freshMs = Date.now() - freshAt;
		await hold(500);
		const fig = await load.stop();
		const lost = all.length - await inRedis(c, all);
		const bad = await unreachable(await c.ua('sen-check'), c.edge(1), all);
		const clients = String(await c.redisCmd('CLIENT', 'LIST'));
		const onNew = c.cores.filter((k) => clients.includes(`name=sipmesh-loc-${k.proc.pid} `)).length;
		report(t, 'Redis master kill -9, Sentinel failover', {
			...fig, lost, recovery,
			extra: `promoted after ${promoted.toFixed(2)} s | new REGISTER in Redis after ${freshMs} ms`,
		});
		c.addEvidence('load', JSON.stringify(fig));
		assert.equal(r.status, 200, 'the REGISTER after the failover');
		assert.equal(lost, 0, 'bindings missing from the new master');
		assert.equal(bad, 0, 'AORs unreachable after the failover');
		assert.equal(onNew, c.cores.length, 'every core linked to the new master');
		assert.ok(fig.failed <= 2, `${fig.failed} of ${fig.sent} requests failed: ${fig.failures.join('; ')}`);
		assert.ok(recovery < 10, `recovery took ${recovery} s`);
	});
});
