'use strict';
/*
 * 20 message: MESSAGE (a non-INVITE request) through the proxy to
 * registered contacts: delivery to sipp and Node callees, parallel
 * forking to every contact of an AOR (what KwikyKonf relies on), best
 * response selection, and the proxy's own timeout (408) when a callee
 * never answers.  T1 is 100 ms here so that timer F (64*T1) is 6.4 s.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand } = require('./lib/cluster');
const { runSipp, startUas, assertOk } = require('./lib/sipp');
const { Registration, message, barrier } = require('./lib/flows');
const { parseUri } = require('./lib/sip');

describe('20 message', () => {
	const c = cluster({ name: '20-message', edges: 1, cores: 2, proxy: { t1_ms: 100, t2_ms: 400 } });

	/* Registers n Node UAs as contacts of one fresh AOR. */
	async function aorWith(n, prefix) {
		const u = `${prefix}-${rand(3)}`;
		const uas = [];
		for (let i = 0; i < n; i++) {
			const ua = await c.ua(`${prefix}-${i}`);
			await new Registration(ua, c.edge(), u).register(600);
			uas.push(ua);
		}
		return { user: u, uas };
	}

	c.test('MESSAGE reaches a registered sipp UAS and the sender gets 200', async () => {
		const u = `sippbob-${rand(3)}`;
		const uas = await startUas(c, { user: u, scenario: 'uas_message.xml', calls: 1 });
		const uac = await runSipp(c, {
			scenario: 'uac_message.xml', dest: c.edge(), service: u, keys: { sm_domain: 'a.test' },
		});
		assertOk(uac, 'sender');
		assertOk(await uas.wait(10000), 'callee');
	});

	c.test('MESSAGE to an AOR with two sipp contacts reaches both; the sender gets 200', async () => {
		const u = `sippconf-${rand(3)}`;
		const a = await startUas(c, { user: u, scenario: 'uas_message.xml', calls: 1 });
		const b = await startUas(c, { user: u, scenario: 'uas_message.xml', calls: 1 });
		const uac = await runSipp(c, {
			scenario: 'uac_message.xml', dest: c.edge(), service: u, keys: { sm_domain: 'a.test' },
		});
		assertOk(uac, 'sender');
		assertOk(await a.wait(10000), 'first contact');
		assertOk(await b.wait(10000), 'second contact');
	});

	c.test('30 MESSAGEs with distinct Call-IDs (spread over both cores) are all delivered', async () => {
		const u = `sippmany-${rand(3)}`;
		const n = 30;
		const uas = await startUas(c, { user: u, scenario: 'uas_message.xml', calls: n, timeout: 30 });
		const uac = await runSipp(c, {
			scenario: 'uac_message.xml', dest: c.edge(), service: u, keys: { sm_domain: 'a.test' },
			calls: n, rate: 50, timeout: 30,
		});
		assertOk(uac, `sender of ${n} MESSAGEs`);
		assertOk(await uas.wait(15000), `callee of ${n} MESSAGEs`);
	});

	c.test('the proxy retargets to the contact, decrements Max-Forwards, adds its Via, keeps the rest', async () => {
		const { user, uas: [callee] } = await aorWith(1, 'kit');
		const sender = await c.ua('sender');
		const body = `hello ${user} \u00e9t\u00e9`;
		const r = await message(sender, c.edge(), user, 'a.test', { body, maxForwards: 70 });
		assert.equal(r.status, 200);
		const got = await callee.waitRequest((m) => m.method === 'MESSAGE', 2000, 'MESSAGE');
		const ruri = parseUri(got.ruri);
		assert.equal(`${ruri.host}:${ruri.port}`, callee.addr, `Request-URI ${got.ruri} is the contact`);
		assert.equal(got.get('max-forwards'), '69', 'Max-Forwards decremented by one');
		const vias = got.list('via');
		assert.equal(vias.length, 2, `two Vias (proxy's, sender's): ${JSON.stringify(vias)}`);
		assert.match(got.topVia.params.branch || '', /^z9hG4bK/, 'the proxy Via has an RFC 3261 branch');
		assert.match(vias[1], new RegExp(`${sender.addr.replace(/\./g, '\\.')}`), 'the sender Via is second');
		assert.equal(got.callId, r.tx.req.callId, 'Call-ID unchanged');
		assert.equal(got.get('from'), r.tx.req.get('from'), 'From unchanged');
		assert.equal(got.get('to'), r.tx.req.get('to'), 'To unchanged');
		assert.equal(got.get('cseq'), r.tx.req.get('cseq'), 'CSeq unchanged');
		assert.equal(got.body.toString('latin1'), Buffer.from(body).toString('latin1'), 'body unchanged');
		/* The response the sender gets is the callee's, with only our Via. */
		assert.equal(r.list('via').length, 1, 'one Via in the response to the sender');
		assert.match(r.get('to'), new RegExp(`tag=${callee.toTag}`), 'the callee\'s To tag');
	});

	c.test('a MESSAGE with Max-Forwards: 1 is delivered with Max-Forwards: 0', async () => {
		const { user, uas: [callee] } = await aorWith(1, 'lee');
		const r = await message(await c.ua('sender'), c.edge(), user, 'a.test', { maxForwards: 1 });
		assert.equal(r.status, 200);
		const got = await callee.waitRequest((m) => m.method === 'MESSAGE', 2000, 'MESSAGE');
		assert.equal(got.get('max-forwards'), '0');
	});

	c.test('forking to two Node contacts: both get the MESSAGE, the sender gets exactly one 200', async () => {
		const { user, uas } = await aorWith(2, 'mo');
		const sender = await c.ua('sender');
		const me = `sender-${rand(3)}`;
		await new Registration(sender, c.edge(), me).register(600);
		const r = await message(sender, c.edge(), user);
		assert.equal(r.status, 200);
		for (const ua of uas)
			await ua.waitRequest((m) => m.method === 'MESSAGE', 2000, `MESSAGE at ${ua.label}`);
		/* A non-INVITE proxy forwards one final response only.  Each
		 * callee answered 200 on receipt; a barrier with the same
		 * Call-ID from each, sent after its 200, reaches the sender
		 * after any 200 the proxy forwarded. */
		for (const ua of uas)
			await barrier(ua, sender, c.edge(), me, r.tx.req.callId, `barrier from ${ua.label}`);
		const finals = r.tx.responses.filter((x) => x.status >= 200);
		assert.equal(finals.length, 1, `the sender got ${finals.length} final responses: ` +
			`${finals.map((x) => x.status)} (stray: ${sender.stray.map((x) => x.status)})`);
		assert.deepEqual(sender.stray.filter((x) => x.callId === r.tx.req.callId).map((x) => x.status), [],
			'responses the sender could not match');
		for (const ua of uas)
			assert.equal(ua.distinctRequests((m) => m.method === 'MESSAGE' && m.callId === r.tx.req.callId &&
				m.cseq.num === r.tx.req.cseq.num).length, 1, `${ua.label} got it once`);
	});

	for (const [codes, want, why] of [
		[[486, 200], 200, 'a 2xx wins'],
		[[486, 486], 486, 'the only class is 4xx'],
		[[480, 603], 603, 'a 6xx wins over 4xx'],
	]) {
		c.test(`forking, best response: contacts answer ${codes.join(' and ')} -> ${want} (${why})`, async () => {
			const { user, uas } = await aorWith(2, `best${want}`);
			uas.forEach((ua, i) => { ua.handler = () => codes[i]; });
			const r = await message(await c.ua('sender'), c.edge(), user);
			assert.equal(r.status, want, `answers ${codes} gave the sender ${r.status} ${r.reason}`);
		});
	}

	c.test('a callee that never answers: the proxy retransmits, then answers 408 (timer F)', { timeout: 30000 }, async () => {
		const { user, uas: [callee] } = await aorWith(1, 'mute');
		callee.handler = () => null;
		const sender = await c.ua('sender');
		const r = await message(sender, c.edge(), user, 'a.test', { timeout: 15000 });
		assert.equal(r.status, 408, `a silent callee gave the sender ${r.status} ${r.reason}`);
		const copies = callee.requests.filter((m) => m.method === 'MESSAGE').length;
		assert.ok(copies >= 3, `the proxy sent the MESSAGE ${copies} time(s) to the silent callee; ` +
			'a UDP client transaction retransmits (timer E)');
	});
});
