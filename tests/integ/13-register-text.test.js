'use strict';
/*
 * 13 register text: the core registers a REGISTER in the plain forms
 * phones and SIP.js send from its text, without libosip2's parse
 * (core_reg_scanned), and leaves every other one to the parsed path.
 * Both must store the same binding and answer the same 200, and every
 * refusal must come from the parsed path, as before.  Which path took a
 * request shows in the cores' registers_scanned_total.
 */
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { describe } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { Registration, assertContacts, assertExpires } = require('./lib/flows');
const { httpGet } = require('./lib/wait');

const REG = { min_expires: 60, max_expires: 3600, default_expires: 1200, max_contacts: 3, domains: '' };

describe('13 register text', () => {
	const c = cluster({ name: '13-register-text', edges: 1, cores: 2, redis: true, metrics: true, registrar: REG });

	function ctl(...args) {
		const bin = path.join(process.env.SIPMESH_BIN || '', 'sipmesh-ctl');
		const r = spawnSync(bin, ['-c', c.confPath, ...args], { encoding: 'utf8', timeout: 10000 });
		assert.equal(r.status, 0, r.stderr);
		return r.stdout;
	}

	/* Sum of a core counter over both cores. */
	async function coreCount(name) {
		let sum = 0;
		for (const m of c.metrics.filter((x) => x.kind === 'core')) {
			const r = await httpGet(m.addr, '/metrics', 3000);
			const line = r.body.split('\n').find((l) => l.startsWith(`${name} `));
			assert.ok(line, `core ${m.id} reports ${name}`);
			sum += Number(line.split(' ')[1]);
		}
		return sum;
	}
	const scanned = () => coreCount('sipmesh_core_registers_scanned_total');

	/* What sipmesh-ctl shows of aor once it holds n bindings: the core
	 * answers from its store and writes Redis behind (2 s bound). */
	async function shown(aor, n) {
		let show = null;
		await waitUntil(() => {
			show = JSON.parse(ctl('-j', 'aor', 'show', aor));
			return show.bindings.length === n;
		}, 2000, `${aor} with ${n} binding(s) in Redis`, 20).catch(() => {});
		return show;
	}

	/* The binding sipmesh-ctl shows for reg's AOR, without what differs
	 * by user (contact, received, edge connection). */
	async function stored(reg) {
		const show = await shown(`${reg.user}@a.test`, 1);
		assert.equal(show.bindings.length, 1, JSON.stringify(show));
		const b = show.bindings[0];
		assert.equal(b.contact, reg.contact);
		return { q: b.q, transport: b.transport, instance: b.instance, reg_id: b.reg_id,
			user_agent: b.user_agent, expires_in: Math.round(b.expires_in / 10) };
	}

	const sipjsParams = (id) => `;+sip.ice;reg-id=1;+sip.instance="<urn:uuid:${id}>";q=0.7;expires=900`;

	c.test('a SIP.js-style REGISTER is read from its text; the same one in a form left to libosip2 stores the same binding and gets the same 200', async () => {
		const id = '0c6c0e1e-5a46-4b4b-8d6e-2a6c9b3e1f00';
		const ua = 'SIP.js/0.21.2 (text test)';
		const headers = [['User-Agent', ua], ['Allow', 'ACK,CANCEL,INVITE,MESSAGE,BYE'], ['Supported', 'path, outbound']];
		const a = new Registration(await c.ua('text'), c.edge(), `text-${rand(3)}`);
		const b = new Registration(await c.ua('parsed'), c.edge(), `parsed-${rand(3)}`);
		const before = await scanned();
		const ra = await a.register(600, { contacts: [`<${a.contact}>${sipjsParams(id)}`], headers });
		assert.equal(await scanned(), before + 1, 'read from its text');
		/* Accept is a header libosip2 parses itself: the text path
		 * leaves such a request to it */
		const rb = await b.register(600, { contacts: [`<${b.contact}>${sipjsParams(id)}`],
			headers: [...headers, ['Accept', 'application/sdp']] });
		assert.equal(await scanned(), before + 1, 'the second one was parsed');
		for (const [r, reg] of [[ra, a], [rb, b]]) {
			assertContacts(r, [reg.contact], reg.user);
			assertExpires(r, reg.contact, 890, 900, reg.user);
			assert.match(r.get('to'), /;tag=sm[0-9a-f]{16}$/, 'our To tag');
			assert.match(r.all('contact')[0], /;q=0\.700$/, 'q listed');
		}
		const sa = await stored(a);
		assert.deepEqual(sa, { q: 700, transport: 'UDP', instance: `<urn:uuid:${id}>`, reg_id: 1,
			user_agent: ua, expires_in: 90 });
		assert.deepEqual(await stored(b), sa, 'the same binding either way');
		/* a retransmission of the 200's request gets the same To tag */
		const again = await a.send({ cseq: a.cseq, contacts: [`<${a.contact}>${sipjsParams(id)}`], headers, expires: 600,
			branch: ra.branch });
		assert.equal(again.status, 200);
		assert.equal(again.get('to'), ra.get('to'), 'same To tag for the same request');
	});

	c.test('what the registrar refuses is refused as before: 423, stale CSeq, too many contacts, bad expires', async () => {
		const before = await scanned();
		const reg = new Registration(await c.ua('refused'), c.edge(), `ref-${rand(3)}`);
		let r = await reg.send({ expires: 30 });
		assert.equal(r.status, 423);
		assert.equal(r.get('min-expires'), '60');
		await reg.register(600);
		r = await reg.send({ expires: 600, cseq: reg.cseq - 1 });
		assert.equal(r.status, 500, 'stale CSeq');
		const many = [1, 2, 3, 4].map((i) => `<sip:${reg.user}-${i}@127.0.0.1:${5000 + i}>`);
		r = await reg.send({ expires: 600, contacts: many });
		assert.equal(r.status, 503, 'over max_contacts');
		r = await reg.send({ contacts: [`<${reg.contact}>;expires=abc`] });
		assert.equal(r.status, 400);
		assert.equal(await scanned(), before + 1, 'only the good REGISTER was read from its text');
		const show = await shown(`${reg.user}@a.test`, 1);
		assert.deepEqual(show.bindings.map((x) => x.contact), [reg.contact], 'nothing refused changed the store');
	});

	c.test('a To user holding an escaped control character is refused 400 and stored nowhere', async () => {
		const u = `ctl-${rand(3)}`;
		const reg = new Registration(await c.ua('ctlchar'), c.edge(), `${u}%0Aevil`);
		const r = await reg.send({ expires: 600 });
		assert.equal(r.status, 400);
		assert.equal(r.reason, 'Bad To AOR');
		const l = ctl('aor', 'list', 'a.test');
		assert.ok(!l.includes(u), l);
	});

	c.test('an escaped user in the To is registered as libosip2 reads it (the parsed path)', async () => {
		const before = await scanned();
		const u = `esc-${rand(3)}`;
		const reg = new Registration(await c.ua('esc'), c.edge(), `%65${u.slice(1)}`);
		const r = await reg.register(600);
		/* libosip2 writes the Contact's user unescaped too */
		assertContacts(r, [reg.contact.replace('%65', 'e')], 'escaped AOR');
		assert.equal(await scanned(), before, 'left to libosip2');
		const show = await shown(`${u}@a.test`, 1);
		assert.equal(show.bindings.length, 1, 'stored under the unescaped user');
	});
});
