'use strict';
/*
 * 11 register domains: with [registrar] domains = a.test, only a.test
 * is local.  A REGISTER for another domain is refused with 403; a
 * request from another domain for a user of another domain is relayed
 * nowhere: 403 (issue 11, no open relay; the proxy must neither deliver
 * it nor hang).  Routing from a.test users to other domains is
 * 80-federation's.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand } = require('./lib/cluster');
const { Registration, assertContacts, message, invite } = require('./lib/flows');

describe('11 register domains', () => {
	const c = cluster({
		name: '11-register-domains', edges: 1, cores: 2,
		registrar: { domains: 'a.test', min_expires: 60, max_expires: 3600 },
	});

	c.test('REGISTER for the local domain a.test gets 200', async () => {
		const reg = new Registration(await c.ua('ann'), c.edge(), `ann-${rand(3)}`, 'a.test');
		const r = await reg.register(600);
		assertContacts(r, [reg.contact], 'REGISTER a.test');
	});

	c.test('the local domain matches case-insensitively (A.TEST is a.test)', async () => {
		const reg = new Registration(await c.ua('ben'), c.edge(), `ben-${rand(3)}`, 'A.TEST');
		const r = await reg.send({ expires: 600 });
		assert.equal(r.status, 200, `REGISTER sip:A.TEST got ${r.status} ${r.reason}`);
	});

	c.test('REGISTER for a foreign domain b.test gets 403 and stores nothing', async () => {
		const ua = await c.ua('cat');
		const u = `cat-${rand(3)}`;
		const reg = new Registration(ua, c.edge(), u, 'b.test');
		const r = await reg.send({ expires: 600 });
		assert.equal(r.status, 403, `REGISTER sip:b.test got ${r.status} ${r.reason}`);
		/* Nothing leaked into a.test either. */
		const q = new Registration(await c.ua('cat-q'), c.edge(), u, 'a.test');
		assert.deepEqual(await q.query(), []);
	});

	c.test('a MESSAGE from and to a foreign domain gets 403, and is not delivered', async () => {
		const u = `dan-${rand(3)}`;
		/* The same user exists in a.test: it must not get b.test's mail. */
		const local = await c.ua('dan-local');
		await new Registration(local, c.edge(), u, 'a.test').register(600);
		const sender = await c.ua('sender');
		const r = await message(sender, c.edge(), u, 'b.test', { timeout: 8000 });
		assert.equal(r.status, 403, `MESSAGE to ${u}@b.test got ${r.status} ${r.reason}`);
		assert.equal(local.requests.length, 0, 'the a.test namesake received nothing');
	});

	c.test('an INVITE from and to a foreign domain gets 403', async () => {
		const sender = await c.ua('caller');
		const r = await invite(sender, c.edge(), `eve-${rand(3)}`, 'b.test', { timeout: 8000 });
		assert.equal(r.status, 403, `INVITE to b.test got ${r.status} ${r.reason}`);
	});
});
