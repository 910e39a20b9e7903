'use strict';
/*
 * 12 register expiry: bindings disappear when their time is up, and
 * an AOR whose bindings are all gone answers 480, not 404.  Short
 * expiries need min_expires = 1.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, waitUntil, rand } = require('./lib/cluster');
const { Registration, message, invite, normUri } = require('./lib/flows');

describe('12 register expiry', () => {
	const c = cluster({
		name: '12-register-expiry', edges: 1, cores: 2,
		registrar: { min_expires: 1, max_expires: 3600, default_expires: 600 },
	});

	c.test('a binding expires on time; the other contact of the AOR stays', async () => {
		const u = `ida-${rand(3)}`;
		const short = new Registration(await c.ua('ida-short'), c.edge(), u);
		const long = new Registration(await c.ua('ida-long'), c.edge(), u);
		await long.register(600);
		const t0 = Date.now();
		await short.register(2);
		const q = new Registration(await c.ua('ida-q'), c.edge(), u);
		await waitUntil(async () => {
			const b = await q.query();
			return !b.some((x) => x.uri === normUri(short.contact));
		}, 6000, `the 2 s binding of ${u} to expire`, 200);
		/* Expiry may be kept in whole seconds: a 2 s binding lives more than 1 s. */
		assert.ok(Date.now() - t0 >= 900, `expired after ${Date.now() - t0} ms, well before its 2 s`);
		const b = await q.query();
		assert.deepEqual(b.map((x) => x.uri), [normUri(long.contact)], 'the 600 s binding is still there');
		/* Delivery goes to the live contact only. */
		const r = await message(await c.ua('sender'), c.edge(), u);
		assert.equal(r.status, 200);
		assert.equal(long.ua.distinctRequests((m) => m.method === 'MESSAGE').length, 1);
		assert.equal(short.ua.distinctRequests((m) => m.method === 'MESSAGE').length, 0);
	});

	c.test('an AOR whose only binding expired answers 480 to MESSAGE and INVITE', async () => {
		const u = `jo-${rand(3)}`;
		const reg = new Registration(await c.ua('jo'), c.edge(), u);
		await reg.register(1);
		const q = new Registration(await c.ua('jo-q'), c.edge(), u);
		await waitUntil(async () => (await q.query()).length === 0, 5000, `${u}'s 1 s binding to expire`, 200);
		const sender = await c.ua('sender');
		const m = await message(sender, c.edge(), u);
		assert.equal(m.status, 480, `MESSAGE to ${u} (expired) got ${m.status} ${m.reason}`);
		const i = await invite(sender, c.edge(), u);
		assert.equal(i.status, 480, `INVITE to ${u} (expired) got ${i.status} ${i.reason}`);
		assert.equal(reg.ua.requests.length, 0, 'the expired contact received nothing');
	});
});
