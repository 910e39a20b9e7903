'use strict';
/*
 * 10 register: the registrar (RFC 3261 section 10.3) seen from a UA.
 * Open mode (every domain local), min_expires 60, max_expires 3600,
 * default_expires 1200, max_contacts 3.  Each test uses its own AORs.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand } = require('./lib/cluster');
const {
	Registration, bindings, assertContacts, assertExpires, message,
} = require('./lib/flows');

const REG = { min_expires: 60, max_expires: 3600, default_expires: 1200, max_contacts: 3, domains: '' };

describe('10 register', () => {
	const c = cluster({ name: '10-register', edges: 1, cores: 2, registrar: REG });
	const user = (p) => `${p}-${rand(3)}`;

	c.test('REGISTER adds a binding; the 200 lists it with the expires granted', async () => {
		const ua = await c.ua('alice');
		const reg = new Registration(ua, c.edge(), user('alice'));
		const r = await reg.register(600);
		assertContacts(r, [reg.contact], 'first REGISTER');
		assertExpires(r, reg.contact, 590, 600, 'first REGISTER');
		assert.equal(r.callId, reg.callId, 'Call-ID echoed');
		assert.deepEqual(r.cseq, { num: 1, method: 'REGISTER' }, 'CSeq echoed');
		assert.match(r.get('to'), /;\s*tag=/i, 'the 200 carries a To tag');
		assert.match(r.get('to'), new RegExp(`sip:${reg.user}@a\\.test`), 'To is the AOR');
	});

	c.test('re-REGISTER (same Call-ID, higher CSeq) refreshes the binding, does not add one', async () => {
		const ua = await c.ua('bob');
		const reg = new Registration(ua, c.edge(), user('bob'));
		await reg.register(600);
		const r = await reg.register(300);
		assertContacts(r, [reg.contact], 're-REGISTER');
		assertExpires(r, reg.contact, 290, 300, 're-REGISTER');
	});

	c.test('a second contact is added next to the first; both are listed with their own expires', async () => {
		const u = user('carol');
		const ua1 = await c.ua('carol-desk');
		const ua2 = await c.ua('carol-phone');
		const r1 = new Registration(ua1, c.edge(), u);
		const r2 = new Registration(ua2, c.edge(), u);
		await r1.register(900);
		const r = await r2.register(300);
		assertContacts(r, [r1.contact, r2.contact], 'second contact');
		assertExpires(r, r1.contact, 880, 900, 'second contact');
		assertExpires(r, r2.contact, 290, 300, 'second contact');
	});

	c.test('REGISTER without Contact is a query: lists the bindings, changes nothing', async () => {
		const ua = await c.ua('dave');
		const reg = new Registration(ua, c.edge(), user('dave'));
		await reg.register(600);
		const other = new Registration(await c.ua('dave-query'), c.edge(), reg.user);
		const r = await other.send({ contacts: [] });
		assert.equal(r.status, 200);
		assertContacts(r, [reg.contact], 'query');
		assertExpires(r, reg.contact, 580, 600, 'query');
		const again = await other.send({ contacts: [] });
		assertContacts(again, [reg.contact], 'second query');
	});

	c.test('a query for an AOR never registered gets 200 with no Contact', async () => {
		const reg = new Registration(await c.ua('nobody'), c.edge(), user('nobody'));
		const r = await reg.send({ contacts: [] });
		assert.equal(r.status, 200);
		assert.deepEqual(bindings(r), []);
	});

	c.test('un-REGISTER (Expires: 0) removes that contact only', async () => {
		const u = user('erin');
		const r1 = new Registration(await c.ua('erin-1'), c.edge(), u);
		const r2 = new Registration(await c.ua('erin-2'), c.edge(), u);
		await r1.register(600);
		await r2.register(600);
		const r = await r2.unregister();
		assertContacts(r, [r1.contact], 'after un-REGISTER of the second contact');
		assertContacts(await r1.send({ contacts: [] }), [r1.contact], 'query after un-REGISTER');
	});

	c.test('un-REGISTER with the expires=0 contact parameter removes the contact', async () => {
		const u = user('fay');
		const r1 = new Registration(await c.ua('fay-1'), c.edge(), u);
		const r2 = new Registration(await c.ua('fay-2'), c.edge(), u);
		await r1.register(600);
		await r2.register(600);
		const r = await r2.send({ contacts: [`<${r2.contact}>;expires=0`], expires: 600 });
		assert.equal(r.status, 200);
		assertContacts(r, [r1.contact], 'after ;expires=0');
	});

	c.test('the expires contact parameter wins over the Expires header', async () => {
		const reg = new Registration(await c.ua('gus'), c.edge(), user('gus'));
		const r = await reg.send({ contacts: [`<${reg.contact}>;expires=120`], expires: 900 });
		assert.equal(r.status, 200);
		assertExpires(r, reg.contact, 110, 120, 'expires=120 with Expires: 900');
	});

	c.test('Contact: * with Expires: 0 removes every binding of the AOR', async () => {
		const u = user('hal');
		const r1 = new Registration(await c.ua('hal-1'), c.edge(), u);
		const r2 = new Registration(await c.ua('hal-2'), c.edge(), u);
		await r1.register(600);
		await r2.register(600);
		const r = await r1.send({ contacts: ['*'], expires: 0 });
		assert.equal(r.status, 200, `Contact: * got ${r.status} ${r.reason}`);
		assert.deepEqual(bindings(r), [], 'the 200 to Contact: * lists no binding');
		assert.deepEqual(await r2.query(), [], 'a query afterwards lists no binding');
	});

	c.test('Contact: * without Expires: 0 gets 400 and removes nothing', async () => {
		const reg = new Registration(await c.ua('ivy'), c.edge(), user('ivy'));
		await reg.register(600);
		const r = await reg.send({ contacts: ['*'], expires: 600 });
		assert.equal(r.status, 400, `Contact: * with Expires: 600 got ${r.status} ${r.reason}`);
		const r2 = await reg.send({ contacts: ['*'] });
		assert.equal(r2.status, 400, `Contact: * without Expires got ${r2.status} ${r2.reason}`);
		assert.equal((await reg.query()).length, 1, 'the binding is still there');
	});

	c.test('Contact: * together with another contact gets 400', async () => {
		const reg = new Registration(await c.ua('jay'), c.edge(), user('jay'));
		const r = await reg.send({ contacts: ['*', `<${reg.contact}>`], expires: 0 });
		assert.equal(r.status, 400, `Contact: * plus a contact got ${r.status} ${r.reason}`);
	});

	c.test('Expires below min_expires gets 423 with Min-Expires, and adds no binding', async () => {
		const reg = new Registration(await c.ua('kim'), c.edge(), user('kim'));
		const r = await reg.send({ expires: 30 });
		assert.equal(r.status, 423, `Expires: 30 got ${r.status} ${r.reason}`);
		assert.equal(r.get('min-expires'), String(REG.min_expires), 'Min-Expires header');
		const p = await reg.send({ contacts: [`<${reg.contact}>;expires=10`] });
		assert.equal(p.status, 423, `;expires=10 got ${p.status} ${p.reason}`);
		assert.equal(p.get('min-expires'), String(REG.min_expires), 'Min-Expires header');
		assert.deepEqual(await reg.query(), [], 'no binding was added');
	});

	c.test('Expires above max_expires is cut to max_expires', async () => {
		const reg = new Registration(await c.ua('lou'), c.edge(), user('lou'));
		const r = await reg.register(100000);
		assertExpires(r, reg.contact, REG.max_expires - 10, REG.max_expires, 'Expires: 100000');
	});

	c.test('a REGISTER with neither Expires header nor parameter gets default_expires', async () => {
		const reg = new Registration(await c.ua('max'), c.edge(), user('max'));
		const r = await reg.send({});
		assert.equal(r.status, 200);
		assertExpires(r, reg.contact, REG.default_expires - 10, REG.default_expires, 'no Expires');
	});

	c.test('AORs are per domain: alice@a.test and alice@b.test are different', async () => {
		const u = user('alice');
		const uaA = await c.ua('alice-a');
		const uaB = await c.ua('alice-b');
		const ra = new Registration(uaA, c.edge(), u, 'a.test');
		const rb = new Registration(uaB, c.edge(), u, 'b.test');
		await ra.register(600);
		const r = await rb.register(600);
		assertContacts(r, [rb.contact], `REGISTER ${u}@b.test`);
		assertContacts(await ra.send({ contacts: [] }), [ra.contact], `query ${u}@a.test`);
		const sender = await c.ua('sender');
		const m = await message(sender, c.edge(), u, 'b.test');
		assert.equal(m.status, 200, `MESSAGE to ${u}@b.test got ${m.status}`);
		assert.equal(uaB.distinctRequests((q) => q.method === 'MESSAGE').length, 1, 'b.test contact got it');
		assert.equal(uaA.distinctRequests((q) => q.method === 'MESSAGE').length, 0, 'a.test contact did not');
	});

	c.test('the domain of an AOR is case-insensitive (RFC 3261 URI comparison)', async () => {
		const u = user('nia');
		const r1 = new Registration(await c.ua('nia'), c.edge(), u, 'A.Test');
		await r1.register(600);
		const q = new Registration(await c.ua('nia-q'), c.edge(), u, 'a.test');
		assertContacts(await q.send({ contacts: [] }), [r1.contact], `query ${u}@a.test after REGISTER ${u}@A.Test`);
	});

	c.test('a REGISTER that would go past max_contacts gets 503 and changes nothing', async () => {
		const u = user('oli');
		const regs = [];
		for (let i = 0; i < REG.max_contacts; i++) {
			const r = new Registration(await c.ua(`oli-${i}`), c.edge(), u);
			await r.register(600);
			regs.push(r);
		}
		const extra = new Registration(await c.ua('oli-extra'), c.edge(), u);
		const r = await extra.send({ expires: 600 });
		assert.equal(r.status, 503, `contact ${REG.max_contacts + 1} got ${r.status} ${r.reason}`);
		assertContacts(await regs[0].send({ contacts: [] }), regs.map((x) => x.contact), 'after the 503');
		/* Refreshing an existing contact is still fine at the limit. */
		await regs[1].register(300);
	});

	c.test('one REGISTER carrying more than max_contacts contacts gets 503', async () => {
		const ua = await c.ua('pam');
		const reg = new Registration(ua, c.edge(), user('pam'));
		const contacts = Array.from({ length: REG.max_contacts + 1 },
			(_, i) => `<sip:${reg.user}@127.0.0.1:${ua.port};line=${i}>`);
		const r = await reg.send({ contacts, expires: 600 });
		assert.equal(r.status, 503, `${contacts.length} contacts got ${r.status} ${r.reason}`);
		assert.deepEqual(await reg.query(), [], 'none of them was added');
	});

	c.test('a REGISTER with the same Call-ID and a lower CSeq fails and changes nothing (RFC 3261 10.3 step 7)', async () => {
		const reg = new Registration(await c.ua('quin'), c.edge(), user('quin'));
		await reg.register(600, { cseq: 10 });
		const r = await reg.send({ expires: 120, cseq: 5 });
		assert.ok(r.status >= 400, `an out-of-order REGISTER (CSeq 5 after 10) got ${r.status} ${r.reason}; it must fail`);
		const q = await new Registration(await c.ua('quin-q'), c.edge(), reg.user).query();
		assert.equal(q.length, 1);
		assert.ok(q[0].expires > 500, `the binding kept its expiry (expires=${q[0].expires})`);
	});
});
