'use strict';
/*
 * 39 ctl aor: sipmesh-ctl aor list|show|rm against two hosts sharing
 * Redis with two shards ([redis] and shard b).  list finds every AOR
 * on either shard, once, filtered by domain; show names an AOR's shard
 * and its bindings' contacts (text and -j JSON); rm of one contact
 * stops only that contact from getting forked requests, on both hosts;
 * rm of the AOR makes it unknown on both hosts, for good (the next
 * reconcile passes do not bring it back); errors exit 1 with a reason.
 */
const assert = require('node:assert/strict');
const { execFileSync, spawnSync } = require('node:child_process');
const path = require('node:path');
const { describe } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { Registration, message } = require('./lib/flows');

describe('39 ctl aor', () => {
	const a = cluster({ name: '39-host-a', edges: 1, cores: 2, redis: true, redisShards: 1 });
	const b = cluster({ name: '39-host-b', edges: 1, cores: 1, shareRedis: a, redis: true });

	function ctl(...args) {
		const bin = path.join(process.env.SIPMESH_BIN || '', 'sipmesh-ctl');
		const r = spawnSync(bin, ['-c', a.confPath, ...args], { encoding: 'utf8', timeout: 10000 });
		return { code: r.status, out: r.stdout, err: r.stderr };
	}

	/* MESSAGE from sender via edge to user; which of uas got it (1 s). */
	async function reached(sender, edge, user, uas) {
		const body = `ctl ${rand(6)}`;
		const r = await message(sender, edge, user, 'a.test', { body });
		const got = [];
		await new Promise((res) => setTimeout(res, r.status === 200 ? 300 : 0));
		for (const ua of uas)
			if (ua.requests.some((m) => m.method === 'MESSAGE' && m.body.toString() === body)) got.push(ua);
		return { status: r.status, got };
	}

	a.test('list, show, rm of one contact and of the AOR, seen on both hosts', async () => {
		const users = [];
		for (let i = 0; i < 10; i++) {
			const ua = await a.ua(`ctl-${i}`);
			const reg = new Registration(ua, a.edge(1), `ctl${i}-${rand(3)}`);
			assert.equal((await reg.register(600)).status, 200);
			users.push(reg);
		}
		/* One AOR with two contacts. */
		const twin = users[0];
		const ua2 = await a.ua('ctl-0-second');
		const reg2 = new Registration(ua2, a.edge(1), twin.user);
		assert.equal((await reg2.register(600)).status, 200);
		const other = await b.ua('other-domain');
		assert.equal((await new Registration(other, b.edge(1), `od-${rand(3)}`, 'b.test').register(600)).status, 200);

		const aors = users.map((u) => `${u.user}@a.test`).sort();
		let listed = [];
		await waitUntil(() => {
			const l = ctl('-j', 'aor', 'list', 'a.test');
			assert.equal(l.code, 0, l.err);
			listed = JSON.parse(l.out);
			return aors.every((x) => listed.includes(x));
		}, 3000, 'every AOR listed');
		assert.deepEqual(listed.filter((x) => x.startsWith('ctl')), aors, 'sorted, each once');
		assert.ok(!listed.some((x) => x.endsWith('@b.test')), 'the domain filter holds');
		assert.ok(ctl('aor', 'list').out.includes('@b.test'), 'without it, every domain');

		const show = JSON.parse(ctl('-j', 'aor', 'show', `${twin.user}@a.test`).out);
		assert.ok(['main', 'b'].includes(show.shard));
		assert.deepEqual(show.bindings.map((x) => x.contact).sort(), [twin.contact, reg2.contact].sort());
		for (const x of show.bindings) {
			assert.ok(x.expires_in > 590 && x.expires_in <= 600, `expires in ${x.expires_in}`);
			assert.equal(x.transport, 'UDP');
		}
		const text = ctl('aor', 'show', `${twin.user}@a.test`);
		assert.match(text.out, new RegExp(`: 2 bindings \\(shard ${show.shard}\\)`));
		assert.ok(text.out.includes(twin.contact) && text.out.includes(reg2.contact));

		/* Both contacts get a forked MESSAGE, through either host. */
		const sender = await b.ua('sender');
		let r = await reached(sender, b.edge(1), twin.user, [twin.ua, ua2]);
		assert.equal(r.status, 200);
		assert.equal(r.got.length, 2, 'forked to both contacts');

		/* One contact removed: only the other one is reached, from
		 * either host. */
		const rm1 = ctl('aor', 'rm', `${twin.user}@a.test`, twin.contact);
		assert.equal(rm1.code, 0, rm1.err);
		assert.match(rm1.out, /1 binding removed/);
		for (const [host, edge] of [['b', b.edge(1)], ['a', a.edge(1)]]) {
			await waitUntil(async () => {
				r = await reached(sender, edge, twin.user, [twin.ua, ua2]);
				return r.status === 200 && r.got.length === 1;
			}, 3000, `host ${host} to fork to one contact`);
			assert.equal(r.got[0], ua2, `host ${host}: the contact left`);
		}

		/* The whole AOR. */
		const victim = users[1];
		assert.equal((await reached(sender, a.edge(1), victim.user, [victim.ua])).status, 200);
		const rmAll = ctl('aor', 'rm', `${victim.user}@a.test`);
		assert.equal(rmAll.code, 0, rmAll.err);
		assert.match(rmAll.out, /1 binding removed/);
		for (const edge of [a.edge(1), b.edge(1)])
			await waitUntil(async () => (await reached(sender, edge, victim.user, [victim.ua])).status >= 400,
				3000, 'the removed AOR unreachable');
		/* Reconcile passes run every second: still gone after them. */
		await new Promise((res) => setTimeout(res, 2500));
		const after = JSON.parse(ctl('-j', 'aor', 'show', `${victim.user}@a.test`).out);
		assert.deepEqual(after.bindings, []);
		r = await reached(sender, b.edge(1), victim.user, [victim.ua]);
		assert.ok([404, 480].includes(r.status), `after the passes: ${r.status}`);
		assert.deepEqual(r.got, []);
		/* The others untouched. */
		assert.equal((await reached(sender, b.edge(1), users[2].user, [users[2].ua])).status, 200);

		/* Errors. */
		const none = ctl('aor', 'rm', `${twin.user}@a.test`, 'sip:nobody@192.0.2.1');
		assert.equal(none.code, 1);
		assert.match(none.err, /has no binding sip:nobody@192\.0\.2\.1/);
		const bad = ctl('aor', 'show', 'not-an-aor');
		assert.equal(bad.code, 1);
		assert.match(bad.err, /is not USER@DOMAIN/);
		assert.equal(ctl('aor', 'frobnicate').code, 2);
	});
});
