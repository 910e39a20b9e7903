'use strict';
/*
 * 73 redis shards: the bindings sharded by AOR over three Redis
 * masters ([redis] address, "main", and [redis] shards b and c;
 * location/loc_shard.c).  Host A (one edge, two cores) and host B (one
 * edge, one core) share them.
 *
 * - Users registered through host A spread over every shard, each on
 *   one only (every Redis is asked directly).
 * - MESSAGE and INVITE between users of different shards, registered
 *   on different hosts, cross the hosts both ways.
 * - Shard b killed: users of the other shards still register through
 *   either host and receive MESSAGE sent through the other; users of b
 *   get what a Redis outage gives today: REGISTER answered from the
 *   host's shared store, reached through the host they registered on;
 *   the other host, whose store is out of step with b, answers 503
 *   (ask again) for the new ones until b is back.  b restarted empty gets
 *   every binding of its users back, and host B reaches them all.
 *
 * It kills a Redis and times recovery: integ: serial
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand, waitUntil, redisCommand } = require('./lib/cluster');
const { Registration, deliver, invite } = require('./lib/flows');
const { key, field, holders: holdersOf } = require('./lib/load');

const REDIS_KEYS = { timeout_ms: 500, backoff_max_ms: 500 };
const USERS = 45;

describe('73 redis shards', () => {
	const a = cluster({ name: '73-host-a', edges: 1, cores: 2, redis: REDIS_KEYS, redisShards: 2 });
	const b = cluster({ name: '73-host-b', edges: 1, cores: 1, shareRedis: a, redis: REDIS_KEYS });

	const holders = (reg) => holdersOf(a, reg);

	/* Registers USERS users through host A and waits until each binding
	 * is on one shard: a Map of shard name -> [Registration]. */
	async function registerSpread(label) {
		const ua = await a.ua(label);
		const regs = [];
		for (let i = 0; i < USERS; i++) {
			const reg = new Registration(ua, a.edge(1), `${label}${i}-${rand(3)}`);
			await reg.register(600);
			regs.push(reg);
		}
		let where = [];
		await waitUntil(async () => {
			where = await Promise.all(regs.map(holders));
			return where.every((w) => w.length === 1);
		}, 5000, 'every binding on exactly one shard');
		const byShard = new Map();
		regs.forEach((reg, i) => {
			const list = byShard.get(where[i][0]) || [];
			list.push(reg);
			byShard.set(where[i][0], list);
		});
		return byShard;
	}

	a.test('users registered through one host spread over every shard, each on one', async (t) => {
		const byShard = await registerSpread('sh');
		const counts = a.shards().map((s) => `${s.name} ${(byShard.get(s.name) || []).length}`);
		t.diagnostic(`shards: ${USERS} users: ${counts.join(', ')}`);
		a.addEvidence('users per shard', counts.join(', '));
		for (const s of a.shards()) {
			assert.ok((byShard.get(s.name) || []).length > 0, `no user on shard ${s.name}: ${counts}`);
			/* nothing but this test's AOR keys (the first test) */
			const keys = await redisCommand(s.port, 'KEYS', `${a.prefix}:aor:*`);
			assert.equal(keys.length, byShard.get(s.name).length, `AOR keys on shard ${s.name}`);
		}
	});

	a.test('MESSAGE and INVITE between users of different shards, across the hosts', async () => {
		const uaA = await a.ua('x-a');
		const uaB = await b.ua('x-b');
		const onA = new Registration(uaA, a.edge(1), `xa-${rand(4)}`);
		await onA.register(600);
		let shardA = [];
		await waitUntil(async () => (shardA = await holders(onA)).length === 1, 5000, 'its shard');
		/* users through host B until one lands on another shard */
		let onB, shardB;
		for (let i = 0; i < 20 && !onB; i++) {
			const reg = new Registration(uaB, b.edge(1), `xb${i}-${rand(4)}`);
			await reg.register(600);
			let w = [];
			await waitUntil(async () => (w = await holders(reg)).length === 1, 5000, 'its shard');
			if (w[0] !== shardA[0]) [onB, shardB] = [reg, w[0]];
		}
		assert.ok(onB, 'no user of host B on another shard than host A\'s');
		assert.notEqual(shardA[0], shardB);
		/* each host learns the other's user through that user's shard */
		await waitUntil(async () => await deliver(uaA, a.edge(1), onB) === 200, 5000,
			`host A to reach ${onB.user} (shard ${shardB})`);
		await waitUntil(async () => await deliver(uaB, b.edge(1), onA) === 200, 5000,
			`host B to reach ${onA.user} (shard ${shardA[0]})`);
		const call = await invite(uaA, a.edge(1), onB.user);
		assert.equal(call.status, 200, `INVITE from shard ${shardA[0]} to shard ${shardB}`);
		await uaB.waitRequest((m) => m.method === 'INVITE', 5000, 'the INVITE');
		const back = await invite(uaB, b.edge(1), onA.user);
		assert.equal(back.status, 200, `INVITE from shard ${shardB} to shard ${shardA[0]}`);
	});

	a.test('one shard killed holds back only its own users; back empty, it gets them all', async (t) => {
		const victim = 'b';
		const byShard = await registerSpread('ks');
		const others = [...byShard.entries()].filter(([n]) => n !== victim).flatMap(([, r]) => r);
		const mine = byShard.get(victim);
		const sender = await b.ua('k-sender');
		const senderA = await a.ua('k-sender-a');
		const killed = Date.now();
		await a.stopShard(victim);
		await Promise.all([...a.cores, ...b.cores].map((k) => waitUntil(
			() => /redis shard b, .*: down/.test(k.proc.text(killed)), 5000,
			`${k.proc.name} to find shard b down`)));
		/* the other shards' users: re-REGISTER, reached through host B */
		for (const reg of others) await reg.register(600);
		for (const reg of others.slice(0, 10))
			assert.equal(await deliver(sender, b.edge(1), reg), 200, `${reg.user} through host B`);
		/* new users through host A during the outage */
		const ua = await a.ua('k-new');
		const fresh = [];
		for (let i = 0; i < 30; i++) {
			const reg = new Registration(ua, a.edge(1), `kn${i}-${rand(3)}`);
			await reg.register(600);
			fresh.push(reg);
		}
		/* b's users (old and new) still REGISTER, from host A's store */
		for (const reg of mine) await reg.register(600);
		const where = await Promise.all(fresh.map(holders));
		const live = fresh.filter((_, i) => where[i].length === 1);
		const onVictim = fresh.filter((_, i) => where[i].length === 0);
		t.diagnostic(`shards: during the outage ${live.length} new users on live shards, ` +
			`${onVictim.length} on shard b`);
		assert.ok(live.length > 0 && onVictim.length > 0, 'new users on both kinds of shard');
		for (const reg of live)
			assert.equal(await deliver(sender, b.edge(1), reg), 200, `${reg.user} (live shard) through host B`);
		for (const reg of [...onVictim, ...mine.slice(0, 5)])
			assert.equal(await deliver(senderA, a.edge(1), reg), 200, `${reg.user} (shard b) through host A`);
		/* b's old users: host B serves them from its own store */
		for (const reg of mine.slice(0, 5))
			assert.equal(await deliver(sender, b.edge(1), reg), 200, `${reg.user} (shard b, known) through host B`);
		/* b's new users: host B never heard of them, and knows its
		 * store is out of step with shard b: 503 (ask again), not
		 * 404 (no such user) */
		for (const reg of onVictim) {
			const st = await deliver(sender, b.edge(1), reg);
			assert.equal(st, 503, `${reg.user} (new on shard b) through host B during the outage`);
		}
		/* back, empty: host A pushes every binding of b's users to it */
		await a.startShard(victim);
		const restarted = Date.now();
		const port = a.shards().find((s) => s.name === victim).port;
		const want = [...mine, ...onVictim];
		await waitUntil(async () => {
			for (const reg of want)
				if (Number(await redisCommand(port, 'HEXISTS', key(a, reg), field(reg))) !== 1) return false;
			return true;
		}, 10000, `all ${want.length} bindings of shard b's users back on it`);
		const recovery = (Date.now() - restarted) / 1000;
		for (const reg of live)
			assert.deepEqual(await holders(reg), where[fresh.indexOf(reg)], `${reg.user} stayed on its shard`);
		for (const reg of onVictim) {
			await waitUntil(async () => await deliver(sender, b.edge(1), reg) === 200, 5000,
				`host B to reach ${reg.user} after shard b came back`);
		}
		t.diagnostic(`fault: shard b kill -9, restarted empty | bindings back in ${recovery.toFixed(2)} s`);
		a.addEvidence('recovery', `${recovery.toFixed(2)} s`);
		assert.ok(recovery < 5, `recovery took ${recovery} s`);
	});
});
