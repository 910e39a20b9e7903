'use strict';
/*
 * 71 Redis Sentinel: the processes find the Redis master through three
 * sentinels ([redis] sentinels, no address) and follow a failover
 * under REGISTER + MESSAGE load (lib/rconn.c, "Sentinel").
 *
 * A Contact at the master, the replica or a sentinel (addresses the
 * cores learn from the sentinels, not from the file) is never a next
 * hop: a SIP body is a valid Redis command.
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
const { cluster, rand, waitUntil, redisCommand, HOST } = require('./lib/cluster');
const { Registration } = require('./lib/flows');
const {
	hold, startLoad, stopLoads, field, key, inRedis, registerMany, unreachable, report,
} = require('./lib/load');

const AORS = 60;

describe('71 redis sentinel', () => {
	const c = cluster({
		name: '71-sentinel', edges: 1, cores: 2,
		redis: { sentinel: true, timeout_ms: 500, backoff_max_ms: 1000 },
		/* a branch never sent times out after 64 T1: 6.4 s */
		proxy: { t1_ms: 100 },
	});
	afterEach(stopLoads);

	/* Runs first: the failover test kills the master. */
	c.test('a Contact at the master, the replica or a sentinel is never a next hop', async (t) => {
		const canary = `${c.prefix}canary-${rand(3)}`;
		await c.redisCmd('SET', canary, 'alive');
		const targets = [
			{ what: 'master', port: c.redis.port },
			{ what: 'replica', port: c.redisReplica.port },
			{ what: 'sentinel', port: c.sentinels[0].port },
		];
		/* every line a command to a Redis or a sentinel that read it */
		const body = `FLUSHALL\r\nSENTINEL REMOVE sipmesh\r\nREPLICAOF NO ONE\r\n`;
		const accepted = async (port) =>
			Number(/total_connections_received:(\d+)/.exec(await redisCommand(port, 'INFO', 'stats'))[1]);
		const sender = await c.ua('infra-sender');
		for (const x of targets) {
			const reg = await c.ua(`infra-${x.what}`);
			x.user = `infra-${x.what}-${rand(3)}`;
			const r = await new Registration(reg, c.edge(1), x.user).send({
				contacts: [`<sip:${x.user}@${HOST}:${x.port};transport=tcp>`], expires: 300,
			});
			assert.equal(r.status, 200);
			reg.close();	/* whoever registered it is gone */
			x.conns0 = await accepted(x.port);
		}
		/* at once: each waits for its branch to time out (64 T1) */
		await Promise.all(targets.map(async (x) => {
			x.m = await sender.send(c.edge(1), {
				method: 'MESSAGE', ruri: `sip:${x.user}@a.test`, from: 'sip:infra-sender@a.test',
				to: `sip:${x.user}@a.test`, body, contentType: 'text/plain',
			}, 10000);
		}));
		for (const x of targets) {
			t.diagnostic(`MESSAGE to a Contact at the ${x.what}: ${x.m.status} ${x.m.reason}`);
			assert.ok(x.m.status >= 300, `the sender gets an error, got ${x.m.status} ${x.m.reason}`);
			/* Redis accepts in order: the count includes ours only */
			assert.equal(await accepted(x.port) - x.conns0, 1,
				`the ${x.what} accepted a connection from the proxy`);
		}
		assert.equal(await c.redisCmd('GET', canary), 'alive', 'the canary key survived');
		assert.match(String(await redisCommand(c.redisReplica.port, 'ROLE')), /^slave/, 'the replica is one still');
		assert.equal(await c.sentinelMaster(), c.redis.port, 'the sentinels still watch the master');
	});

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
		/* A core whose link failed late (its back-off running when the
		 * replica was promoted) may still be on its way. */
		let onNew = 0;
		await waitUntil(async () => {
			const clients = String(await c.redisCmd('CLIENT', 'LIST'));
			onNew = c.cores.filter((k) => clients.includes(`name=sipmesh-loc-${k.proc.pid} `)).length;
			return onNew === c.cores.length;
		}, 5000, 'every core linked to the new master').catch(() => {});
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
