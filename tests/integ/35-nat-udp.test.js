'use strict';
/*
 * 35 nat udp: UDP phones behind NAT (issue 11).  Such a phone writes
 * its private address in its Contact; the proxy reaches it where its
 * NAT maps, the address its REGISTER or INVITE came from, for the
 * initial request and, through the flow token in the Record-Route
 * entry facing it ("sm-n<edge>-<address>-<port>", signed with the
 * dialog's Call-ID), for every in-dialog request too, whose
 * Request-URI is that private Contact.
 *
 * NAT on loopback: the phone (sipp or a Node UA) binds 127.0.0.1 and
 * writes a Contact at 127.0.0.99, its "private address", where a trap
 * socket that never answers records anything sent there.  (An RFC 1918
 * address would do as well for the core, but this machine has a
 * default route: the code before this change would have sent those
 * requests off the host; the trap also proves that nothing was sent.)
 * Each test asserts that the trap got nothing and that the phone got
 * every request: the scenarios fail on a missing ACK, re-INVITE or BYE.
 *
 * Calls: a UDP caller to a NATed callee (re-INVITE and BYE from
 * either side), a NATed caller to a UDP callee (re-INVITE and BYE from
 * the callee; the caller's own requests follow its route set and
 * worked before); the same with a SIP.js (WebSocket) user on the other
 * side; MESSAGE to a
 * registered NATed phone; a BYE after every core restarted mid-call
 * (the token is all the state there is); a tampered token (its address or port
 * changed, aimed at the private address or at the edge itself, no or a
 * made-up signature, a real one replayed in another dialog) gets 403
 * or, for an ACK, is dropped and counted, and reaches no one.
 *
 * Each fails against the code before commit "core: in-dialog requests
 * reach a UDP phone behind NAT through a flow token".
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { rand, freePort, HOST } = require('./lib/cluster');
const { startSipp, runSipp, startUas, assertOk } = require('./lib/sipp');
const { sipjsTests, streamCluster, SipJsUA, within } = require('./lib/ws');
const { Registration } = require('./lib/flows');
const { parseNameAddr } = require('./lib/sip');

const PRIVATE_HOST = '127.0.0.99';
const TOKEN = /sm-n(\d+)-([0-9a-fA-F._]+)-(\d+)@/;

function tagOf(v) {
	const m = /;\s*tag=([^;>\s]+)/i.exec(v || '');
	return m ? m[1] : undefined;
}

describe('35 nat udp', () => {
	const c = streamCluster({ name: '35-nat-udp', edges: 1, cores: 2, proxy: { t1_ms: 100, t2_ms: 400 } });
	const { open, test: wsTest } = sipjsTests(c);

	/* The phone's private address: a socket that never answers. */
	async function trap() {
		const t = await c.ua('private-address', { host: PRIVATE_HOST });
		t.handler = () => null;
		return t;
	}

	function assertUntouched(t) {
		assert.deepEqual([...t.requests, ...t.stray].map((m) => m.method || m.status), [],
			`something was sent to the phone's private address ${t.addr}`);
		assert.equal(t.garbage.length, 0, `bytes were sent to the phone's private address ${t.addr}`);
	}

	/*
	 * A sipp phone behind NAT as callee: REGISTER from the port it then
	 * binds, Contact at the trap; returns the running UAS.
	 */
	async function natCallee(user, scenario, t) {
		const port = await freePort();
		const keys = { sm_user: user, sm_domain: 'a.test', sm_contact: t.addr };
		const reg = await runSipp(c, {
			scenario: 'nat_register.xml', dest: c.edge(), port, keys: { ...keys, sm_expires: 300 },
			label: `sipp REGISTER ${user}@a.test from ${HOST}:${port}, Contact at ${t.addr}`,
		});
		assertOk(reg, `REGISTER of ${user} behind NAT`);
		const uas = await startSipp(c, {
			scenario, port, keys,
			label: `sipp NATed UAS ${scenario} for ${user} on ${HOST}:${port} (Contact ${t.addr})`,
		});
		return uas.ready();
	}

	/* A plain sipp callee (Contact: its own socket). */
	async function plainCallee(user, scenario) {
		const port = await freePort();
		return startUas(c, { user, scenario, port, keys: { sm_contact: `${HOST}:${port}` } });
	}

	/* A sipp caller whose Contact is contact (null: its own socket). */
	async function caller(scenario, service, contact, domain = 'a.test') {
		const port = await freePort();
		return runSipp(c, {
			scenario, dest: c.edge(), port, service,
			keys: { sm_domain: domain, sm_contact: contact || `${HOST}:${port}` },
		});
	}

	async function sipjs(name, o = {}) {
		const u = await SipJsUA.open({ user: `${name}-${rand(3)}`, server: c.wsUrl(1), domain: 'a.test', ...o });
		open.push(u);
		c.addEvidence(`SIP.js ${u.user} log`, u.log.join('\n'));
		return u;
	}

	/* A re-INVITE on an established SIP.js session, answered 2xx. */
	function sipjsReinvite(s) {
		return within(new Promise((res, rej) => {
			s.invite({
				requestDelegate: {
					onAccept: () => res(),
					onReject: (r) => rej(new Error(`re-INVITE got ${r.message.statusCode}`)),
				},
			}).catch(rej);
		}), 10000, 're-INVITE answered');
	}

	/* The flow token naming a NATed phone at HOST:port in Record-Route values rrs. */
	function assertToken(rrs, port) {
		const m = rrs.map((r) => TOKEN.exec(r)).find(Boolean);
		assert.ok(m, `no NAT flow token in the Record-Route ${JSON.stringify(rrs)}`);
		assert.equal(m[2], HOST);
		assert.equal(Number(m[3]), port);
	}

	wsTest('UDP caller to a NATed callee: its ACK, re-INVITE and BYE reach the phone, not its private Contact', async () => {
		const t = await trap();
		const user = `natcallee-${rand(3)}`;
		const uas = await natCallee(user, 'nat_uas_answer.xml', t);
		const r = await caller('nat_uac_reinvite_bye.xml', user, null);
		assertOk(r, 'UDP caller (re-INVITE, BYE)');
		assertOk(await uas.wait(10000), 'NATed callee (got ACK, re-INVITE, BYE)');
		assertToken(r.parsed.filter((m) => /^SIP\/2\.0 200[^]*CSeq:\s*1 INVITE/i.test(m.text))
			.flatMap((m) => m.text.split(/\r?\n/).filter((l) => /^Record-Route:/i.test(l))), uas.port);
		assertUntouched(t);
	});

	wsTest('NATed callee re-INVITEs and hangs up: the UDP caller\'s ACK reaches the phone, the caller gets both', async () => {
		const t = await trap();
		const user = `natcallee-${rand(3)}`;
		const uas = await natCallee(user, 'nat_uas_reinvite_bye.xml', t);
		const r = await caller('nat_uac_answer.xml', user, null);
		assertOk(r, 'UDP caller (got re-INVITE, BYE)');
		assertOk(await uas.wait(10000), 'NATed callee (re-INVITE, BYE)');
		assertUntouched(t);
	});

	wsTest('NATed caller to a UDP callee: the callee\'s re-INVITE and BYE reach the phone', async () => {
		const t = await trap();
		const user = `callee-${rand(3)}`;
		const uas = await plainCallee(user, 'nat_uas_reinvite_bye.xml');
		const r = await caller('nat_uac_answer.xml', user, t.addr);
		assertOk(r, 'NATed caller (got re-INVITE, BYE)');
		assertOk(await uas.wait(10000), 'UDP callee (re-INVITE, BYE)');
		assertUntouched(t);
	});

	wsTest('SIP.js (WebSocket) calls a NATed phone: its re-INVITE and BYE reach the phone', async () => {
		const t = await trap();
		const user = `natcallee-${rand(3)}`;
		const uas = await natCallee(user, 'nat_uas_answer.xml', t);
		const a = await sipjs('web');
		const s = await a.invite(`sip:${user}@a.test`);
		await sipjsReinvite(s);
		await a.bye(s);
		assertOk(await uas.wait(10000), 'NATed callee (got ACK, re-INVITE, BYE from the WebSocket side)');
		assertUntouched(t);
	});

	wsTest('a NATed phone calls SIP.js (WebSocket): its re-INVITE and BYE reach the phone', async () => {
		const t = await trap();
		const b = await sipjs('webcallee');
		const done = caller('nat_uac_answer.xml', b.user, t.addr);
		await b.waitFor(() => b.invites.length === 1, 10000, 'the INVITE');
		/* SIP.js re-INVITEs only once the ACK of its 200 is in: this
		 * ACK is the first request that the NATed phone sends in dialog. */
		let acked = false;
		b.invites[0].delegate.onAck = () => { acked = true; b._wake(); };
		await b.waitFor(() => acked && b.invites[0].state === 'Established', 10000, 'the ACK of its 200');
		await sipjsReinvite(b.invites[0]);
		await b.bye(b.invites[0]);
		assertOk(await done, 'NATed caller (got re-INVITE and BYE from the WebSocket side)');
		assertUntouched(t);
	});

	wsTest('every core restarted mid-call: the caller\'s BYE still reaches the NATed phone (no per-dialog state)', async () => {
		const t = await trap();
		const phone = await c.ua('nat-phone');
		phone.contactUri = (u) => `sip:${u}@${t.addr}`;	/* its private address */
		const user = `natphone-${rand(3)}`;
		await new Registration(phone, c.edge(), user).register(300);
		phone.handler = (req) => (req.method === 'INVITE' ? [180, 200] : 200);
		const alice = await c.ua('alice');
		const edge = c.edge();
		const tx = alice.request(edge, {
			method: 'INVITE', ruri: `sip:${user}@a.test`, from: 'sip:alice@a.test', to: `sip:${user}@a.test`,
			contact: [`<${alice.contactUri('alice')}>`],
		});
		const ok = await tx.waitFor((r) => r.status === 200, 5000, 'the NATed phone\'s 200');
		const o = tx.opts;
		const dialog = {
			ruri: parseNameAddr(ok.get('contact')).uri, from: o.from, fromTag: o.fromTag, to: o.to,
			toTag: tagOf(ok.get('to')), callId: o.callId,
			headers: [...ok.list('record-route')].reverse().map((r) => ['Route', r]),
		};
		alice.request(edge, { ...dialog, method: 'ACK', cseq: 1, retransmit: false });
		await phone.waitRequest((m) => m.method === 'ACK', 5000, 'the caller\'s ACK');
		await c.restartCores();
		const bye = await alice.send(edge, { ...dialog, method: 'BYE', cseq: 2 });
		assert.equal(bye.status, 200, `BYE after the cores restarted got ${bye.status} ${bye.reason}`);
		assert.equal(phone.distinctRequests((m) => m.method === 'BYE').length, 1, 'the phone got the BYE');
		assertUntouched(t);
	});

	wsTest('a tampered NAT token gets 403 (an ACK: dropped, counted) and reaches no one; MESSAGE and the real token work', async () => {
		const t = await trap();
		const listener = await c.ua('attacker-target');
		listener.handler = () => null;
		const phone = await c.ua('nat-phone');
		phone.contactUri = (u) => `sip:${u}@${t.addr}`;	/* its private address */
		const user = `natphone-${rand(3)}`;
		await new Registration(phone, c.edge(), user).register(300);
		const edge = c.edge();
		const alice = await c.ua('alice');

		const msg = await alice.send(edge, {
			method: 'MESSAGE', ruri: `sip:${user}@a.test`, from: 'sip:alice@a.test', to: `sip:${user}@a.test`,
			body: 'hello behind NAT', contentType: 'text/plain',
		});
		assert.equal(msg.status, 200, `MESSAGE to the NATed phone got ${msg.status} ${msg.reason}`);
		await phone.waitRequest((m) => m.method === 'MESSAGE', 5000, 'MESSAGE');

		phone.handler = (req) => (req.method === 'INVITE' ? [180, 200] : 200);
		const tx = alice.request(edge, {
			method: 'INVITE', ruri: `sip:${user}@a.test`, from: 'sip:alice@a.test', to: `sip:${user}@a.test`,
			contact: [`<${alice.contactUri('alice')}>`],
		});
		const ok = await tx.waitFor((r) => r.status === 200, 5000, 'the NATed phone\'s 200');
		const rrs = ok.list('record-route');
		assertToken(rrs, phone.port);
		const o = tx.opts;
		const toTag = tagOf(ok.get('to'));
		const ruri = parseNameAddr(ok.get('contact')).uri;
		assert.equal(ruri, `sip:callee@${t.addr}`, 'the 200\'s Contact is the private address');
		const routes = [...rrs].reverse();
		const inDialog = (method, cseq, rs, extra = {}) => ({
			method, ruri, from: o.from, fromTag: o.fromTag, to: o.to, toTag, callId: o.callId, cseq,
			headers: rs.map((r) => ['Route', r]), ...extra,
		});
		alice.request(edge, { ...inDialog('ACK', 1, routes), retransmit: false });
		await phone.waitRequest((m) => m.method === 'ACK', 5000, 'the caller\'s ACK');

		const tok = TOKEN.exec(routes.join(','))[0];
		const retoken = (to) => routes.map((r) => r.replace(tok, to));
		const forged = [
			retoken(`sm-n1-${HOST}-${listener.port}@`),		/* another port */
			retoken(`sm-n1-${PRIVATE_HOST}-${t.port}@`),		/* the private address */
			retoken(`sm-n1-${edge.host}-${edge.port}@`),		/* the edge itself */
			routes.map((r) => r.replace(/;smsig=[0-9a-f]+/, '')),		/* unsigned */
			routes.map((r) => r.replace(/;smsig=[0-9a-f]+/, ';smsig=0123456789abcdef')),
		];
		const refused = await c.coreStat('refused-routes');
		const stray = await c.coreStat('stray-acks');
		let cseq = 2;
		for (const rs of forged) {
			for (const method of ['BYE', 'INVITE']) {
				const r = await alice.send(edge, inDialog(method, cseq++, rs));
				assert.equal(r.status, 403, `${method} with Route ${rs.join(', ')} got ${r.status} ${r.reason}`);
			}
			alice.request(edge, { ...inDialog('ACK', cseq++, rs), retransmit: false });
		}
		/* The real route set in a dialog of the attacker's own (another
		 * Call-ID): the token's signature is for its dialog only. */
		const replay = await alice.send(edge, { ...inDialog('BYE', 1, routes), callId: `${rand(10)}@replay` });
		assert.equal(replay.status, 403, `the real token in another dialog got ${replay.status} ${replay.reason}`);
		let n = 0;
		for (const end = Date.now() + 5000; Date.now() < end && n < refused + forged.length * 2 + 1;)
			n = await c.coreStat('refused-routes');
		assert.equal(n, refused + forged.length * 2 + 1, 'refused-routes counted every forged request');
		/* Our ACKs, and the ACK the UA sends along the same Route for
		 * each 403 to its INVITEs. */
		let a = 0;
		for (const end = Date.now() + 5000; Date.now() < end && a < stray + forged.length * 2;)
			a = await c.coreStat('stray-acks');
		assert.equal(a, stray + forged.length * 2, 'stray-acks counted every forged ACK');

		/* The real token: the BYE reaches the phone at its NAT address. */
		const bye = await alice.send(edge, inDialog('BYE', cseq++, routes));
		assert.equal(bye.status, 200, `BYE along the real route set got ${bye.status} ${bye.reason}`);
		assert.equal(phone.distinctRequests((m) => m.method === 'BYE').length, 1, 'the phone got one BYE');
		assert.equal(phone.distinctRequests((m) => m.method === 'ACK').length, 1, 'the phone got one ACK');
		assert.deepEqual(listener.requests.map((m) => m.method), [], 'a forged token reached its target');
		assertUntouched(t);
	});
});
