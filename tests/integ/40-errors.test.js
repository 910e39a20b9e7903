'use strict';
/*
 * 40 errors: the status codes of requests the proxy cannot or must not
 * route.  Unknown AOR 404; known AOR without a live contact 480;
 * Max-Forwards 0 gets 483 (and nothing is forwarded); a request
 * without Call-ID or with a bad CSeq gets 400 from the edge or core;
 * OPTIONS to the proxy itself gets 200.  Answers are checked field by
 * field (Via branch, Call-ID, CSeq, To tag) since UAs match on them.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand } = require('./lib/cluster');
const { Registration, message, invite } = require('./lib/flows');

describe('40 errors', () => {
	const c = cluster({ name: '40-errors', edges: 1, cores: 2 });

	/* An AOR with one registered Node contact. */
	async function registered(prefix) {
		const u = `${prefix}-${rand(3)}`;
		const ua = await c.ua(prefix);
		await new Registration(ua, c.edge(), u).register(600);
		return { user: u, ua };
	}

	c.test('404 for an AOR never registered (MESSAGE and INVITE)', async () => {
		const sender = await c.ua('sender');
		const u = `ghost-${rand(3)}`;
		const m = await message(sender, c.edge(), u);
		assert.equal(m.status, 404, `MESSAGE to ${u} got ${m.status} ${m.reason}`);
		assert.equal(m.callId, m.tx.req.callId);
		assert.match(m.get('to'), /;\s*tag=/i, 'a final response carries a To tag');
		const i = await invite(sender, c.edge(), u);
		assert.equal(i.status, 404, `INVITE to ${u} got ${i.status} ${i.reason}`);
		assert.deepEqual(i.cseq, { num: 1, method: 'INVITE' });
	});

	c.test('480 for an AOR that was registered and then un-registered (MESSAGE and INVITE)', async () => {
		const { user, ua } = await registered('gone');
		const reg = new Registration(ua, c.edge(), user);
		await reg.unregister();
		const sender = await c.ua('sender');
		const m = await message(sender, c.edge(), user);
		assert.equal(m.status, 480, `MESSAGE to un-registered ${user} got ${m.status} ${m.reason}`);
		const i = await invite(sender, c.edge(), user);
		assert.equal(i.status, 480, `INVITE to un-registered ${user} got ${i.status} ${i.reason}`);
		assert.equal(ua.requests.length, 0, 'the old contact received nothing');
	});

	c.test('480 after Contact: * un-registers the AOR', async () => {
		const { user, ua } = await registered('star');
		const r = await new Registration(ua, c.edge(), user).send({ contacts: ['*'], expires: 0 });
		assert.equal(r.status, 200);
		const m = await message(await c.ua('sender'), c.edge(), user);
		assert.equal(m.status, 480, `MESSAGE after Contact: * got ${m.status} ${m.reason}`);
	});

	c.test('483 for Max-Forwards: 0 on a MESSAGE to a registered user; nothing is forwarded', async () => {
		const { user, ua } = await registered('hops');
		const sender = await c.ua('sender');
		const m = await message(sender, c.edge(), user, 'a.test', { maxForwards: 0 });
		assert.equal(m.status, 483, `MESSAGE with Max-Forwards: 0 got ${m.status} ${m.reason}`);
		/* The same MESSAGE with Max-Forwards 1 goes through, and, sent
		 * after, arrives after anything the first might have caused. */
		const ok = await message(sender, c.edge(), user, 'a.test', { maxForwards: 1 });
		assert.equal(ok.status, 200);
		assert.deepEqual(ua.distinctRequests().map((q) => q.callId), [ok.callId],
			'only the Max-Forwards: 1 MESSAGE reached the callee');
	});

	c.test('483 for Max-Forwards: 0 on an INVITE to a registered user (and it is ACKed)', async () => {
		const { user, ua } = await registered('hopsinv');
		const i = await invite(await c.ua('caller'), c.edge(), user, 'a.test', { maxForwards: 0 });
		assert.equal(i.status, 483, `INVITE with Max-Forwards: 0 got ${i.status} ${i.reason}`);
		assert.equal(ua.requests.length, 0, 'nothing reached the callee');
	});

	c.test('OPTIONS to the proxy itself (Request-URI without user) gets 200', async () => {
		const e = c.edge();
		const r = await (await c.ua('opt')).send(e, {
			method: 'OPTIONS', ruri: `sip:${e.addr}`, from: 'sip:opt@a.test', to: `sip:${e.addr}`,
		});
		assert.equal(r.status, 200, `OPTIONS sip:${e.addr} got ${r.status} ${r.reason}`);
	});

	/* Requests that are broken in one field; each must get 400. */
	const broken = [
		['no Call-ID', { omit: ['call-id'] }],
		['no CSeq', { omit: ['cseq'] }],
		['CSeq without a number', { replace: { cseq: 'abc MESSAGE' } }],
		['CSeq with a negative number', { replace: { cseq: '-1 MESSAGE' } }],
		['CSeq above 2**31-1', { replace: { cseq: '4294967296 MESSAGE' } }],
		['CSeq method not the request method', { replace: { cseq: '1 INVITE' } }],
		['CSeq without a method', { replace: { cseq: '1' } }],
		['no From', { omit: ['from'] }],
		['no To', { omit: ['to'] }],
		['a non-numeric Max-Forwards', { replace: { 'max-forwards': 'many' } }],
	];
	for (const [what, o] of broken) {
		c.test(`400 for a MESSAGE with ${what}`, async () => {
			const { user } = await registered('bad');
			const sender = await c.ua('sender');
			const to = `sip:${user}@a.test`;
			const r = await sender.send(c.edge(), {
				method: 'MESSAGE', ruri: to, to, from: 'sip:sender@a.test', body: 'x', ...o,
			}, 2500);
			assert.equal(r.status, 400, `MESSAGE with ${what} got ${r.status} ${r.reason}`);
			assert.equal(r.branch, r.tx.branch, 'the 400 comes back on our Via branch');
		});
	}

	c.test('400 for a REGISTER without Call-ID; no binding is made', async () => {
		const ua = await c.ua('nocid');
		const reg = new Registration(ua, c.edge(), `nocid-${rand(3)}`);
		const r = await ua.send(c.edge(), {
			method: 'REGISTER', ruri: 'sip:a.test', aor: reg.aor, contact: [`<${reg.contact}>`],
			expires: 600, omit: ['call-id'],
		}, 2500);
		assert.equal(r.status, 400, `REGISTER without Call-ID got ${r.status} ${r.reason}`);
		assert.deepEqual(await reg.query(), []);
	});
});
