'use strict';
/*
 * 74 redis shard add: a third Redis shard joins a running cluster, the
 * way an operator rolls it out (location/loc_shard.c, loc_recon.c).
 * Three redis-servers run (main, b, c); host A starts on the old list
 * (main and b), host B on the new one (main, b and c).
 *
 * - Users registered through host A land on main or b; host B, which
 *   looks for a third of them on c, still reaches every one (its store
 *   loaded and took the invalidations of every shard) and copies the
 *   moved ones to c (an old copy stays to expire).
 * - Host A's cores restart on the new list (the rolling change; its
 *   shared store stays): every user is still reached through both
 *   hosts, and a moved user removed through host A is removed on c and
 *   gone from host B too: its writes now go to the new shard.
 *
 * integ: serial
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand, waitUntil, redisCommand } = require('./lib/cluster');
const { Registration, deliver } = require('./lib/flows');
const { holders: holdersOf } = require('./lib/load');

const REDIS_KEYS = { timeout_ms: 500, backoff_max_ms: 500 };
const USERS = 45;

describe('74 redis shard add', () => {
	const a = cluster({ name: '74-host-a', edges: 1, cores: 2, redis: REDIS_KEYS, redisShards: 2, listShards: 1 });
	const b = cluster({ name: '74-host-b', edges: 1, cores: 1, shareRedis: a, redis: REDIS_KEYS });

	const holders = (reg) => holdersOf(a, reg);

	/* Every user of regs is reached through edge (waiting for each). */
	async function allReached(ua, edge, regs, what) {
		for (const reg of regs)
			await waitUntil(async () => await deliver(ua, edge, reg) === 200, 5000, `${reg.user} ${what}`);
	}

	a.test('a shard added under a running cluster: no lookup misses, the moved AORs reach it', async (t) => {
		const ua = await a.ua('add');
		const regs = [];
		for (let i = 0; i < USERS; i++) {
			const reg = new Registration(ua, a.edge(1), `ad${i}-${rand(3)}`);
			await reg.register(600);
			regs.push(reg);
		}
		/* host A (old list) writes main and b only */
		let where = [];
		await waitUntil(async () => {
			where = await Promise.all(regs.map(holders));
			return where.every((w) => w.filter((n) => n !== 'c').length === 1);
		}, 5000, 'every binding on main or b');
		/* host B (new list) reaches them all, and copies the moved ones */
		const viaB = await b.ua('add-b');
		await allReached(viaB, b.edge(1), regs, 'through host B (new list)');
		const onC = () => regs.filter((_, i) => where[i].includes('c'));
		await waitUntil(async () => {
			where = await Promise.all(regs.map(holders));
			return onC().length > 0 && Number(await redisCommand(a.shards()[2].port, 'DBSIZE')) === onC().length;
		}, 5000, 'the moved AORs copied to shard c');
		const moved = onC();
		t.diagnostic(`shards: ${moved.length} of ${USERS} AORs moved to the new shard c; ` +
			'their old copies stay to expire');
		for (const reg of moved) assert.equal((await holders(reg)).length, 2, `${reg.user}: old copy and c`);
		assert.ok(moved.length >= 5 && moved.length <= 30, `${moved.length} of ${USERS} moved (about a third)`);
		/* the rolling change: host A's cores restart on the new list */
		await a.restartCores({ whileStopped: () => a.reconfigure({ listShards: 2 }) });
		const viaA = await a.ua('add-a');
		await allReached(viaA, a.edge(1), regs, 'through host A after its restart');
		await allReached(viaB, b.edge(1), regs, 'through host B after host A\'s restart');
		/* host A now writes a moved AOR to c: a removal reaches host B */
		const gone = moved[0];
		await gone.unregister();
		await waitUntil(async () => !(await holders(gone)).includes('c'), 5000, `${gone.user} removed from c`);
		await waitUntil(async () => await deliver(viaB, b.edge(1), gone) !== 200, 5000,
			`${gone.user} gone from host B`);
		assert.notEqual(await deliver(viaA, a.edge(1), gone), 200, `${gone.user} gone from host A`);
		for (const reg of moved.slice(1, 4))
			assert.equal(await deliver(viaB, b.edge(1), reg), 200, `${reg.user} still reached`);
	});
});
