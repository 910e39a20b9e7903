'use strict';
/*
 * 70 Redis faults: the location store under REGISTER + MESSAGE load
 * while Redis fails (location/loc_redis.c, "Faults").  Host A is one
 * edge and two cores sharing a shared-memory store; host B is a second
 * host (its own edge, core and store) on the same Redis.
 *
 * - kill -9 of Redis, restarted empty on the same port: the hosts push
 *   every live binding back within seconds, and SIP never stops.
 * - SIGSTOP of Redis for 10 s: REGISTER and MESSAGE go on from shared
 *   memory, the cores' memory stays bounded, and after SIGCONT Redis
 *   holds the bindings added and removed during the stall.
 * - a binding removed on host B while host A's subscription is down is
 *   not resurrected by A's reconcile when it comes back.
 * - one process per host listens for the invalidations; when host A's
 *   listener is killed, its other core takes over, and a binding host B
 *   made while nobody on A listened is served by A.
 * - Redis restarted empty while host A holds a registration Redis never
 *   got, and A's cores are late to link again (stopped): host B, back
 *   in step first, answers a request for that AOR 503 with Retry-After
 *   (a registration may still be on its way), not 404; once A pushes it,
 *   B delivers.
 *
 * Each test reports its figures (requests, failures, bindings lost,
 * recovery time) as a diagnostic line "fault: ...".  It times recovery
 * and counts failures under load, which a busy machine distorts:
 * integ: serial
 */
const assert = require('node:assert/strict');
const { describe, afterEach } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { Registration, message } = require('./lib/flows');
const {
	hold, startLoad, stopLoads, field, key, inRedis, registerMany, unreachable, report,
} = require('./lib/load');

const REDIS_KEYS = { timeout_ms: 500, backoff_max_ms: 1000 };
const AORS = 60;

/* VmRSS of a process, in KiB. */
function rssKiB(pid) {
	const m = /VmRSS:\s+(\d+)/.exec(require('node:fs').readFileSync(`/proc/${pid}/status`, 'utf8'));
	return m ? Number(m[1]) : 0;
}

describe('70 redis faults', () => {
	const a = cluster({ name: '70-host-a', edges: 1, cores: 2, redis: REDIS_KEYS });
	const b = cluster({ name: '70-host-b', edges: 1, cores: 1, shareRedis: a, redis: REDIS_KEYS });
	afterEach(stopLoads);

	a.test('kill -9 of Redis, restarted empty: every binding is back within seconds', async (t) => {
		const ua = await a.ua('kill-ua');
		const regs = await registerMany(a, ua, a.edge(1), 'k', AORS);
		await waitUntil(async () => (await inRedis(a, regs)) === AORS, 5000, 'the bindings in Redis');
		const load = startLoad(await a.ua('kill-sender'), a.edge(1), regs);
		await hold(500);
		await a.restartRedis('SIGKILL');
		const restarted = Date.now();
		await waitUntil(async () => (await inRedis(a, regs)) === AORS, 10000,
			`all ${AORS} bindings back in the restarted Redis`);
		const recovery = (Date.now() - restarted) / 1000;
		await hold(500);
		const fig = await load.stop();
		const lost = AORS - await inRedis(a, regs);
		const bad = await unreachable(await a.ua('kill-check'), a.edge(1), regs);
		report(t, 'Redis kill -9, restarted empty', { ...fig, lost, recovery });
		a.addEvidence('load', JSON.stringify(fig));
		assert.equal(lost, 0, 'bindings missing from Redis');
		assert.equal(bad, 0, 'AORs unreachable after the restart');
		assert.ok(fig.failed <= 2, `${fig.failed} of ${fig.sent} requests failed: ${fig.failures.join('; ')}`);
		assert.ok(recovery < 5, `recovery took ${recovery} s`);
		/* Host B, which never held these, learns them from Redis. */
		const q = await new Registration(await b.ua('kill-q'), b.edge(1), regs[0].user).query();
		assert.deepEqual(q.map((x) => x.uri), [regs[0].contact]);
	});

	a.test('SIGSTOP of Redis for 10 s: SIP goes on, memory stays bounded, Redis gets the writes', async (t) => {
		const ua = await a.ua('stop-ua');
		const regs = await registerMany(a, ua, a.edge(1), 's', AORS);
		const leaving = regs.slice(0, 5);
		const staying = regs.slice(5);
		await waitUntil(async () => (await inRedis(a, regs)) === AORS, 5000, 'the bindings in Redis');
		const cores = a.cores.map((k) => k.proc.pid);
		const rss0 = cores.map(rssKiB);
		const load = startLoad(await a.ua('stop-sender'), a.edge(1), staying);
		await hold(300);
		process.kill(a.redis.proc.pid, 'SIGSTOP');
		const stopped = Date.now();
		let added, rssMax = rss0.slice();
		try {
			/* writes once the cores hold Redis for down (so that none
			 * is still on its way): new AORs, and removals */
			await Promise.all(a.cores.map((k) => waitUntil(
				() => /serving from shared memory/.test(k.proc.text(stopped)), 5000,
				`${k.proc.name} to find Redis stalled`)));
			added = await registerMany(a, ua, a.edge(1), 'n', 20);
			for (const reg of leaving) await reg.unregister();
			const until = stopped + 10000;
			while (Date.now() < until) {
				await hold(500);
				rssMax = rssMax.map((m, i) => Math.max(m, rssKiB(cores[i])));
			}
		} finally {
			process.kill(a.redis.proc.pid, 'SIGCONT');
		}
		const resumed = Date.now();
		await waitUntil(async () => (await inRedis(a, added)) === added.length &&
			(await inRedis(a, leaving)) === 0, 10000,
			'the bindings added and removed during the stall, in Redis');
		const recovery = (Date.now() - resumed) / 1000;
		const fig = await load.stop();
		const lost = AORS - leaving.length - await inRedis(a, staying);
		const bad = await unreachable(await a.ua('stop-check'), a.edge(1), [...staying, ...added]);
		const growth = Math.max(...rssMax.map((m, i) => m - rss0[i]));
		report(t, 'Redis SIGSTOP 10 s', { ...fig, lost, recovery, extra: `core RSS growth ${growth} KiB` });
		a.addEvidence('load', JSON.stringify(fig));
		assert.equal(lost, 0, 'bindings missing from Redis');
		assert.equal(bad, 0, 'AORs unreachable after the stall');
		assert.ok(fig.failed <= 2, `${fig.failed} of ${fig.sent} requests failed: ${fig.failures.join('; ')}`);
		/* bounded: max_pending commands at most (ASan quarantine adds ~20 MB) */
		assert.ok(growth < 64 * 1024, `a core grew by ${growth} KiB during the stall`);
		assert.ok(recovery < 5, `recovery took ${recovery} s`);
	});

	a.test('a binding removed on host B while host A was unsubscribed is not resurrected', async (t) => {
		const ua = await a.ua('gone-ua');
		const reg = new Registration(ua, a.edge(1), `gone-${rand(4)}`);
		await reg.register(600);
		const viaB = new Registration(await b.ua('gone-b'), b.edge(1), reg.user);
		await waitUntil(async () => (await viaB.query()).length === 1, 5000, 'host B to see the binding');
		/* Host A's cores stop; their Redis connections are cut, so the
		 * invalidation of the removal never reaches them. */
		const pids = a.cores.map((k) => k.proc.pid);
		for (const pid of pids) process.kill(pid, 'SIGSTOP');
		let resumed;
		try {
			const clients = String(await a.redisCmd('CLIENT', 'LIST')).split('\n');
			for (const pid of pids) {
				for (const line of clients.filter((l) => l.includes(`name=sipmesh-loc-${pid} `)))
					await a.redisCmd('CLIENT', 'KILL', 'ID', /id=(\d+)/.exec(line)[1]);
			}
			const r = await viaB.send({ contacts: [`<${reg.contact}>`], expires: 0 });
			assert.equal(r.status, 200, 'the removal through host B');
			/* written through after the 200, not before it */
			await waitUntil(async () => Number(await a.redisCmd('HEXISTS', key(a, reg), field(reg))) === 0,
				2000, 'the removal to reach Redis');
		} finally {
			for (const pid of pids) process.kill(pid, 'SIGCONT');
			resumed = Date.now();
		}
		await Promise.all(a.cores.map((k) => waitUntil(() => /reconciled/.test(k.proc.text(resumed)),
			10000, `${k.proc.name} to reconcile with Redis`)));
		const recovery = (Date.now() - resumed) / 1000;
		const q = await new Registration(await a.ua('gone-q'), a.edge(1), reg.user).query();
		const back = Number(await a.redisCmd('HEXISTS', key(a, reg), field(reg)));
		const msg = await message(await a.ua('gone-sender'), a.edge(1), reg.user);
		report(t, 'removal missed by an unsubscribed host', {
			sent: 1, failed: 0, lost: 0, recovery, extra: `resurrected ${back + q.length}`,
		});
		assert.deepEqual(q, [], 'host A still lists the removed binding');
		assert.equal(back, 0, 'the removed binding came back in Redis');
		assert.notEqual(msg.status, 200, 'a MESSAGE through host A still reached the removed contact');
	});

	a.test('a registration another host still owes a restarted Redis: 503 meanwhile, not 404', async (t) => {
		const reg = new Registration(await a.ua('owed-ua'), a.edge(1), `owed-${rand(4)}`);
		await a.stopRedis('SIGKILL');
		await reg.register(600);	/* only in host A's store */
		const cores = a.cores.map((k) => k.proc.pid);
		const since = Date.now();
		for (const pid of cores) process.kill(pid, 'SIGSTOP');
		let r;
		try {
			await a.startRedis();	/* empty */
			await waitUntil(() => /reconciled/.test(b.cores[0].proc.text(since)), 5000,
				'host B\'s core to reconcile with the restarted Redis');
			r = await message(await b.ua('owed-sender'), b.edge(1), reg.user);
		} finally {
			for (const pid of cores) process.kill(pid, 'SIGCONT');
		}
		t.diagnostic(`host B, in step first, answered ${r.status} ${r.reason}`);
		assert.equal(r.status, 503, `a request to an AOR host A still owes Redis, via host B: ${r.status} ${r.reason}`);
		assert.ok(r.get('retry-after'), 'the 503 carries Retry-After');
		await waitUntil(async () => (await message(await b.ua('owed-sender2'), b.edge(1), reg.user)).status === 200,
			10000, 'host B to deliver once host A wrote the registration', 250);
	});

	a.test('one listener per host; when A\'s is killed, its other core takes over and catches up', async (t) => {
		const chan = `${a.prefix}:inval`;
		const numsub = async () => Number((await a.redisCmd('PUBSUB', 'NUMSUB', chan))[1]);
		/* host A: two cores, one subscription; host B: one */
		await waitUntil(async () => await numsub() === 2, 5000, 'one subscriber per host');
		const clients = String(await a.redisCmd('CLIENT', 'LIST')).split('\n');
		const listening = a.cores.filter((k) => clients.some((l) =>
			l.includes(`name=sipmesh-loc-${k.proc.pid} `) && / sub=1 /.test(l)));
		assert.equal(listening.length, 1, `host A's cores subscribed: ${listening.map((k) => k.id)}`);
		const dead = listening[0];
		const other = a.cores.find((k) => k !== dead);
		/* Nobody on A listens while B registers: the other core is
		 * stopped until the listener is gone and B's write is in Redis. */
		process.kill(other.proc.pid, 'SIGSTOP');
		let resumed;
		const reg = new Registration(await b.ua('listen-ua'), b.edge(1), `listen-${rand(4)}`);
		try {
			await a.kill('core', dead.id);
			await reg.register(600);
			await waitUntil(async () => Number(await a.redisCmd('HEXISTS', key(a, reg), field(reg))) === 1,
				2000, 'the binding of host B in Redis');
		} finally {
			process.kill(other.proc.pid, 'SIGCONT');
			resumed = Date.now();
		}
		await waitUntil(() => /now hears the host's invalidations/.test(other.proc.text(resumed)),
			2000, `${other.proc.name} to take over listening`);
		const q = new Registration(await a.ua('listen-q'), a.edge(1), reg.user);
		await waitUntil(async () => {
			try { return (await q.query()).length === 1; } catch { return false; }
		}, 10000, 'host A to serve the binding host B made');
		const recovery = (Date.now() - resumed) / 1000;
		report(t, 'listener killed, binding made meanwhile on another host', {
			sent: 1, failed: 0, lost: 0, recovery,
		});
		assert.equal(await numsub(), 2, 'subscribers after the take-over');
		await a.startAgain('core', dead.id);
		assert.equal(await numsub(), 2, 'subscribers after the restart (it does not listen too)');
	});
});
