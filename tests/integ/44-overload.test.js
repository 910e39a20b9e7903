'use strict';
/*
 * 44 overload: a core holding [proxy] max_transactions live server
 * transactions answers the next request 503 with Retry-After and
 * counts it, instead of growing its tables without bound; once the
 * transactions end it serves again.  An edge with no core to take a
 * request answers 503 with Retry-After too.  Before commit "core: a
 * bound on live transactions" the table grew with every request (and
 * 503s carried no Retry-After).
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { Registration, message } = require('./lib/flows');

const MAX = 5;

describe('44 overload', () => {
	const c = cluster({
		name: '44-overload', edges: 1, cores: 1,
		proxy: { max_transactions: MAX, t1_ms: 50, t2_ms: 200, t4_ms: 250 },
	});

	c.test(`past ${MAX} live transactions the core says 503 with Retry-After, then serves again`, async () => {
		const u = `mute-${rand(3)}`;
		const callee = await c.ua('mute');
		callee.handler = () => null;	/* never answers: its transactions stay */
		await new Registration(callee, c.edge(), u).register(600);
		const sender = await c.ua('sender');
		const pending = [];
		for (let i = 0; i < MAX; i++)
			pending.push(message(sender, c.edge(), u, 'a.test', { timeout: 15000 }));
		await waitUntil(() => callee.requests.filter((r) => r.method === 'MESSAGE').length >= MAX,
			5000, `the ${MAX} MESSAGEs to reach the silent callee`);
		const r = await message(sender, c.edge(), u);
		assert.equal(r.status, 503, `request ${MAX + 1}: ${r.status} ${r.reason}`);
		assert.equal(r.get('retry-after'), '5');
		assert.equal(await c.coreStat('overloaded'), 1);
		/* Timer F (64*T1 = 3.2 s) ends them with 408; then timer J
		 * frees their slots and requests pass again. */
		for (const p of await Promise.all(pending))
			assert.equal(p.status, 408, `a MESSAGE to the silent callee: ${p.status} ${p.reason}`);
		const ok = await c.ua('ok');
		const v = `ok-${rand(3)}`;
		await new Registration(ok, c.edge(), v).register(600);
		await waitUntil(async () => (await message(sender, c.edge(), v)).status === 200,
			10000, 'a MESSAGE to pass once the transactions ended', 250);
	});

	/* Last: it kills the cluster's only core. */
	c.test('with no core reachable the edge says 503 with Retry-After', async () => {
		const k = c.cores[0].proc;
		c.procs = c.procs.filter((p) => p !== k);
		c.retired.push(k);
		process.kill(k.pid, 'SIGKILL');
		await k.exited;
		const ua = await c.ua('nocore');
		let r = null;
		await waitUntil(async () => {
			r = await message(ua, c.edge(), `x-${rand(3)}`, 'a.test', { timeout: 3000 }).catch(() => null);
			return r && r.status === 503;
		}, 10000, 'the edge to answer 503 with its core gone', 200);
		assert.equal(r.get('retry-after'), '5');
		assert.match(r.get('warning') || '', /No core reachable/);
	});
});
