'use strict';
/*
 * 71 Redis Sentinel, digest authentication: while the master is lost
 * and the sentinels have not yet promoted its replica (down after 1 s,
 * then an election), a core reads accounts from the replica the
 * master listed (auth/auth_store.c), so a user that no core has
 * looked up yet still registers: 200 at the first try, sent as soon
 * as the master is dead, before the promotion.  A core that had to wait for the new master answered
 * such a REGISTER 503 for the whole window (seconds) instead.
 *
 * A name the replica does not hold gets 503 then, not a challenge: a
 * replica may lag behind an account just made, and a 401 would tell
 * that user the password is wrong.  After the promotion the new master
 * answers, and both users are served as usual.
 * integ: serial
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand, waitUntil, redisCommand } = require('./lib/cluster');
const { Registration } = require('./lib/flows');
const { withAuth, addUser } = require('./lib/digest');

const DOMAIN = 'a.test';
const PASS = 'correct horse';
const REG_URI = `sip:${DOMAIN}`;

describe('71 redis sentinel, accounts', () => {
	const c = cluster({
		name: '71-sentinel-auth', edges: 1, cores: 2,
		redis: { sentinel: true, timeout_ms: 500, backoff_max_ms: 1000 },
		registrar: { auth: 'yes', domains: DOMAIN },
	});

	async function register(label, u) {
		const reg = new Registration(await c.ua(label), c.edge(), u);
		const r = await withAuth((hdrs) => reg.send({ expires: 300, headers: hdrs }), 'REGISTER', REG_URI,
			u, PASS);
		return r.res;
	}

	c.test('master killed: a user no core has cached registers through the replica before the promotion', async () => {
		const warm = `warm-${rand(3)}`, cold = `cold-${rand(3)}`, nobody = `nobody-${rand(3)}`;
		for (const u of [warm, cold]) await addUser(c, u, DOMAIN, PASS);
		let r = await register('warm', warm);
		assert.equal(r.status, 200, `REGISTER ${warm} with Redis up: ${r.status} ${r.reason}`);
		/* the replica holds the accounts before the master goes */
		await waitUntil(async () => Number(await redisCommand(c.redisReplica.port, 'EXISTS',
			`${c.prefix}:acct:${DOMAIN}:${cold}`)) === 1, 5000, 'the account on the replica');

		const first = await c.killRedisMaster('SIGKILL');
		const killed = Date.now();
		/* at once: a core's link to the replica is up before the master
		 * goes, and a lookup the master's link lost goes there again */
		r = await register('cold', cold);
		const answered = Date.now() - killed;
		const master = await c.sentinelMaster();
		assert.equal(r.status, 200, `REGISTER ${cold} ${answered} ms after the master died: ${r.status} ${r.reason}`);
		assert.equal(master, first, `the sentinels promoted the replica before the REGISTER was answered ` +
			`(${answered} ms): the window this test needs was missed`);
		assert.ok(await c.coreStat('acct-replica') >= 1, 'no account lookup counted as answered by the replica');

		r = await register('nobody', nobody);
		assert.equal(r.status, 503, `REGISTER of a name the replica lacks during the failover: ${r.status} ${r.reason}`);
		assert.ok(r.get('retry-after'), 'the 503 carries Retry-After');

		await waitUntil(async () => (await c.sentinelMaster()) !== first, 15000,
			'the sentinels to promote the replica');
		/* the cores' links follow the sentinels within their back-off */
		await waitUntil(async () => (await register('nobody', nobody)).status === 401, 10000,
			'the new master to answer for a name with no account (401)', 250);
		r = await register('cold', cold);
		assert.equal(r.status, 200, `REGISTER ${cold} after the promotion: ${r.status} ${r.reason}`);
	});
});
