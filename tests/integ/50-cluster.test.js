'use strict';
/*
 * 50 cluster: two edges (distinct UDP ports), two cores and a real
 * Redis.  A binding made through one edge serves requests arriving on
 * the other; requests with many Call-IDs exercise both cores (the edge
 * picks the core by rendezvous hash of the Call-ID, which a test cannot
 * steer, so it sends many); deletes reach every core; bindings live in
 * Redis and survive both cores restarting with the shared-memory cache
 * wiped.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand, freePort, waitUntil } = require('./lib/cluster');
const { runSipp, startSipp, startUas, assertOk } = require('./lib/sipp');
const { Registration, assertContacts, message } = require('./lib/flows');

describe('50 cluster', () => {
	const c = cluster({ name: '50-cluster', edges: 2, cores: 2, redis: true });

	c.test('a REGISTER through edge 1 is listed by a query through edge 2', async () => {
		const u = `ana-${rand(3)}`;
		const reg = new Registration(await c.ua('ana'), c.edge(1), u);
		await reg.register(600);
		const q = new Registration(await c.ua('ana-q'), c.edge(2), u);
		const r = await q.send({ contacts: [] });
		assert.equal(r.status, 200);
		assertContacts(r, [reg.contact], 'query through edge 2');
	});

	c.test('the binding is stored in Redis under the configured prefix', async () => {
		const u = `bea-${rand(3)}`;
		const reg = new Registration(await c.ua('bea'), c.edge(1), u);
		await reg.register(600);
		/* the core answers from its store and writes Redis behind
		 * (within a millisecond or so; a sanitized build is slower) */
		let dump = '';
		await waitUntil(async () => (dump = await c.redisDump()).includes(u), 2000,
			`${u} in Redis`, 20).catch(() => {});
		c.addEvidence(`Redis keys under ${c.prefix}`, dump);
		assert.ok(dump.length > 0, `no key under the prefix ${c.prefix}`);
		assert.ok(dump.includes(u), `the AOR user ${u} appears nowhere under ${c.prefix}`);
		assert.ok(dump.includes(`127.0.0.1:${reg.ua.port}`), `the contact 127.0.0.1:${reg.ua.port} appears nowhere under ${c.prefix}`);
	});

	c.test('40 MESSAGEs through edge 2 to a sipp UAS registered through edge 1 are all delivered', async () => {
		const u = `sippx-${rand(3)}`;
		const n = 40;
		const uas = await startUas(c, { user: u, scenario: 'uas_message.xml', calls: n, registerEdge: 1, timeout: 30 });
		const uac = await runSipp(c, {
			scenario: 'uac_message.xml', dest: c.edge(2), service: u, keys: { sm_domain: 'a.test' },
			calls: n, rate: 50, timeout: 30,
		});
		assertOk(uac, `sender of ${n} MESSAGEs through edge 2`);
		assertOk(await uas.wait(15000), `callee registered through edge 1 (${n} MESSAGEs)`);
	});

	c.test('20 AORs registered through edge 1 from a CSV, one MESSAGE to each through edge 2', async () => {
		const users = Array.from({ length: 20 }, (_, i) => `csv${i}-${rand(2)}`);
		const port = await freePort();
		const reg = await runSipp(c, {
			scenario: 'register_inf.xml', dest: c.edge(1), port, inf: users, calls: users.length, rate: 100,
			keys: { sm_domain: 'a.test', sm_expires: 600 },
		});
		assertOk(reg, `REGISTER of ${users.length} AORs, all with contact 127.0.0.1:${port}`);
		const uas = await startSipp(c, { scenario: 'uas_message.xml', port, calls: users.length, timeout: 30 });
		await uas.ready();
		const uac = await runSipp(c, {
			scenario: 'uac_message_inf.xml', dest: c.edge(2), inf: users, calls: users.length, rate: 50,
			keys: { sm_domain: 'a.test' }, timeout: 30,
		});
		assertOk(uac, `one MESSAGE to each of ${users.length} AORs through edge 2`);
		assertOk(await uas.wait(15000), `the contact of ${users.length} AORs`);
	});

	c.test('a call through edge 2 to a callee registered through edge 1 (Record-Route, ACK, BYE)', async () => {
		const u = `sippcall-${rand(3)}`;
		const uas = await startUas(c, { user: u, scenario: 'uas_call.xml', registerEdge: 1 });
		const uac = await runSipp(c, {
			scenario: 'uac_call.xml', dest: c.edge(2), service: u, keys: { sm_domain: 'a.test' },
		});
		assertOk(uac, 'caller through edge 2');
		assertOk(await uas.wait(15000), 'callee registered through edge 1');
	});

	c.test('calls with many Call-IDs through edge 2 all complete (both cores)', async () => {
		const u = `sippcalls-${rand(3)}`;
		const n = 10;
		const uas = await startUas(c, { user: u, scenario: 'uas_call.xml', registerEdge: 1, calls: n, timeout: 30 });
		const uac = await runSipp(c, {
			scenario: 'uac_call.xml', dest: c.edge(2), service: u, keys: { sm_domain: 'a.test' },
			calls: n, rate: 20, timeout: 30,
		});
		assertOk(uac, `${n} calls through edge 2`);
		assertOk(await uas.wait(15000), `callee of ${n} calls`);
	});

	c.test('contacts registered through different edges both get a forked MESSAGE', async () => {
		const u = `fork-${rand(3)}`;
		const a = await c.ua('fork-e1');
		const b = await c.ua('fork-e2');
		await new Registration(a, c.edge(1), u).register(600);
		await new Registration(b, c.edge(2), u).register(600);
		const sender = await c.ua('sender');
		for (const id of [1, 2]) {
			const r = await message(sender, c.edge(id), u);
			assert.equal(r.status, 200, `MESSAGE through edge ${id} got ${r.status}`);
		}
		/* The first 200 ends the sender's transaction: the other fork
		 * may still be on its way. */
		const got = (x) => x.distinctRequests((m) => m.method === 'MESSAGE').length;
		await waitUntil(() => got(a) === 2 && got(b) === 2, 3000, 'both contacts to get both MESSAGEs', 20)
			.catch(() => {});
		assert.equal(got(a), 2);
		assert.equal(got(b), 2);
	});

	c.test('an un-REGISTER through edge 2 is seen by both cores: MESSAGEs through edge 1 get 480', async () => {
		const u = `del-${rand(3)}`;
		const ua = await c.ua('del');
		await new Registration(ua, c.edge(1), u).register(600);
		const sender = await c.ua('sender');
		/* Warm both cores: many Call-IDs, all delivered. */
		const warm = await Promise.all(Array.from({ length: 12 }, () => message(sender, c.edge(1), u)));
		assert.deepEqual(warm.map((r) => r.status).filter((s) => s !== 200), []);
		/* Remove the binding from elsewhere (another UA, another edge). */
		const r = await new Registration(await c.ua('del-admin'), c.edge(2), u).send({ contacts: ['*'], expires: 0 });
		assert.equal(r.status, 200);
		const after = await Promise.all(Array.from({ length: 12 }, () => message(sender, c.edge(1), u)));
		const codes = after.map((x) => x.status);
		assert.deepEqual(codes.filter((s) => s !== 480), [],
			`after the un-REGISTER, MESSAGEs with 12 Call-IDs got [${codes}]; every core must have dropped the binding`);
	});

	c.test('bindings survive both cores restarting with the shared-memory cache wiped (Redis is the truth)', { timeout: 60000 }, async () => {
		const u = `keep-${rand(3)}`;
		const ua = await c.ua('keep');
		const reg = new Registration(ua, c.edge(1), u);
		await reg.register(600);
		await c.restartCores({ wipeShm: true });
		const q = new Registration(await c.ua('keep-q'), c.edge(2), u);
		assertContacts(await q.send({ contacts: [] }), [reg.contact], 'query after the restart');
		const sender = await c.ua('sender');
		const rs = await Promise.all(Array.from({ length: 8 }, () => message(sender, c.edge(2), u)));
		assert.deepEqual(rs.map((r) => r.status).filter((s) => s !== 200), [], 'MESSAGEs after the restart');
	});
});
