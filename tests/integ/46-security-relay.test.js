'use strict';
/*
 * 46 security relay: the attacks of issue 9 on responses, in-dialog
 * routing and the cluster's own addresses.  Each fails against the
 * code before commit "core: signed Via branches and Record-Route, own
 * addresses normalised by transport":
 *   - a forged 200 OK whose second Via names a listener the test owns
 *     (UDP, and TCP) reaches neither: its branch was not minted by the
 *     cluster for its Call-ID (random ones, a real branch with another
 *     Call-ID, the old unsigned form);
 *   - 486s sprayed on branches next to one the attacker saw in its own
 *     call, minted just after a victim's (serial and MAC incremented
 *     and decremented, the other core, random ones) end nobody's call:
 *     the victim's callee's 200 still reaches the caller;
 *   - an in-dialog request with a Route naming the edge (bare, with a
 *     made-up signature, a flow token, a real Record-Route of another
 *     dialog, disguised addresses of the edge) aimed at a numeric
 *     Request-URI gets 403 and nothing reaches that address; stray
 *     ACKs are dropped and counted; the real dialog still routes;
 *   - a sipp UAS registered from the UDP port whose number is the TLS
 *     listener's receives its calls (it got 500 No Branch Forwarded).
 * "Nothing arrived" is read after an event that proves the moment
 * passed: the edge's and the cores' counters of what they dropped,
 * then a real message through the same path.
 */
const assert = require('node:assert/strict');
const net = require('node:net');
const crypto = require('node:crypto');
const { describe } = require('node:test');
const { rand, HOST } = require('./lib/cluster');
const { buildResponse, parseNameAddr } = require('./lib/sip');
const { Registration } = require('./lib/flows');
const { streamCluster } = require('./lib/ws');
const { runSipp, startUas, assertOk } = require('./lib/sipp');

const hex16 = () => crypto.randomBytes(8).toString('hex');
const BRANCH = /^z9hG4bKsm(\d+)\.([0-9a-f]{16})\.([0-9a-f]{16})$/;

/* n + d as 16 hex digits, wrapping like a uint64. */
function hexAdd(h, d) {
	return ((BigInt(`0x${h}`) + BigInt(d)) & 0xffffffffffffffffn).toString(16).padStart(16, '0');
}

function tagOf(v) {
	const m = /;\s*tag=([^;>\s]+)/i.exec(v || '');
	return m ? m[1] : undefined;
}

describe('46 security relay', () => {
	const c = streamCluster({ name: '46-security-relay', edges: 1, cores: 2, proxy: { t1_ms: 100, t2_ms: 400 } });
	/* A TCP listener the test owns (closed at its end); counts
	 * connections and bytes. */
	async function tcpListener() {
		const l = { conns: 0, bytes: 0 };
		l.srv = net.createServer((s) => {
			l.conns++;
			s.on('data', (d) => { l.bytes += d.length; });
			s.on('error', () => {});
		});
		await new Promise((r) => l.srv.listen(0, HOST, r));
		l.port = l.srv.address().port;
		c.own({ stop: async () => l.srv.close() });
		return l;
	}

	/* Forged responses dropped so far: by the edge, which checks the
	 * branch MAC before parsing (drop_resp_foreign), and by the cores,
	 * which check it again (forged-responses). */
	async function forgedDropped() {
		return await c.edgeStat('drop_resp_foreign') + await c.coreStat('forged-responses');
	}
	/* Waits until the cores' counter `name` reached want (5 s). */
	async function statReaches(name, want) {
		let n = 0;
		for (const end = Date.now() + 5000; Date.now() < end;) {
			n = await c.coreStat(name);
			if (n >= want) return n;
		}
		assert.fail(`the cores counted ${n} ${name}, expected ${want}`);
	}
	/* Waits until forgedDropped() reached want (5 s). */
	async function droppedReaches(want) {
		let n = 0;
		for (const end = Date.now() + 5000; Date.now() < end;) {
			n = await forgedDropped();
			if (n >= want) return n;
		}
		assert.fail(`the edge and cores dropped ${n} forged responses, expected ${want}`);
	}
	/*
	 * A live call: a UDP callee that rings and holds, a UDP caller.
	 * Returns {callee, caller, tx, inv} once the callee has the INVITE.
	 */
	async function ringing(label) {
		const callee = await c.ua(`${label}-callee`);
		const user = `${label}-${rand(3)}`;
		await new Registration(callee, c.edge(), user).register(300);
		callee.handler = (req) => (req.method === 'INVITE' ? 180 : 200);
		const caller = await c.ua(`${label}-caller`);
		const tx = caller.request(c.edge(), {
			method: 'INVITE', ruri: `sip:${user}@a.test`, from: 'sip:caller@a.test', to: `sip:${user}@a.test`,
			contact: [`<${caller.contactUri('caller')}>`],
		});
		const inv = await callee.waitRequest((m) => m.method === 'INVITE', 5000, 'INVITE');
		await tx.waitFor((r) => r.status === 180, 5000, '180');
		assert.match(inv.branch, BRANCH, 'the proxy\'s branch has the signed form');
		return { callee, caller, tx, inv, user };
	}

	/* The callee answers 200; the caller gets it and ACKs along the route set. */
	async function answer(call) {
		const { callee, caller, tx, inv } = call;
		await callee.sendRaw(inv.source, buildResponse(inv, 200, 'OK', {
			toTag: callee.toTag, headers: [['Contact', `<${callee.contactUri('callee')}>`]],
		}));
		const ok = await tx.waitFor((r) => r.status === 200, 5000, 'the callee\'s 200');
		const o = tx.opts;
		caller.request(c.edge(), {
			method: 'ACK', ruri: parseNameAddr(ok.get('contact')).uri, from: o.from, fromTag: o.fromTag, to: o.to,
			toTag: tagOf(ok.get('to')), callId: o.callId, cseq: o.cseq, retransmit: false,
			headers: ok.list('record-route').reverse().map((r) => ['Route', r]),
		});
		await callee.waitRequest((m) => m.method === 'ACK', 5000, 'the caller\'s ACK');
		return ok;
	}

	c.test('a forged 200 OK with its second Via at our UDP or TCP listener reaches neither', async () => {
		const udp = await c.ua('udp-listener');
		const tcp = await tcpListener();
		const base = await forgedDropped();
		const call = await ringing('fwd');
		const real = call.inv.branch;
		const [, core, serial, mac] = BRANCH.exec(real);
		const branches = [
			`z9hG4bKsm1.${hex16()}.${hex16()}`, `z9hG4bKsm2.${hex16()}.${hex16()}`,
			real,					/* sent with another Call-ID below */
			`z9hG4bKsm${core}.${hexAdd(serial, 1)}.${mac}`,
			`z9hG4bKsm${core}.${serial}.${hexAdd(mac, 1)}`,
		];
		const unsigned = ['z9hG4bKsm1.1', `z9hG4bKsm${core}.${serial}`];
		const marker = `forged-${rand(6)}`;
		const att = await c.ua('attacker');
		let sent = 0;
		for (const b of [...branches, ...unsigned])
			for (const [tp, port] of [['UDP', udp.port], ['TCP', tcp.port]]) {
				const body = `${marker} ${b} ${tp}`;
				await att.sendRaw(c.edge(), [
					'SIP/2.0 200 OK',
					`Via: SIP/2.0/UDP ${c.edge().addr};branch=${b};rport`,
					`Via: SIP/2.0/${tp} 192.0.2.1:5060;received=${HOST};rport=${port};branch=z9hG4bK${rand(6)}`,
					'From: <sip:caller@a.test>;tag=1', 'To: <sip:x@a.test>;tag=2', `Call-ID: ${rand(10)}@forged`,
					'CSeq: 1 INVITE', `Contact: <sip:x@${HOST}:${port}>`, 'Content-Type: text/plain',
					`Content-Length: ${body.length}`, '', body,
				].join('\r\n'));
				if (!unsigned.includes(b)) sent++;
			}
		/* Every one dropped (the edge all of them, now that it
		 * checks MACs; before, the cores the signed-looking ones). */
		await droppedReaches(base + sent + unsigned.length * 2);
		/* The real transaction is untouched and the path still works. */
		await answer(call);
		assert.deepEqual([...udp.requests, ...udp.stray].map((m) => m.method || m.status), [],
			'the UDP listener received a message');
		assert.deepEqual(udp.garbage, []);
		assert.equal(tcp.conns, 0, 'the proxy connected to the TCP listener');
		assert.equal(tcp.bytes, 0);
	});

	c.test('486s sprayed on branches next to the attacker\'s own end nobody\'s call: the callee\'s 200 reaches the caller', async () => {
		const base = await forgedDropped();
		const call = await ringing('victim');
		const vcore = BRANCH.exec(call.inv.branch)[1];
		/* The attacker calls itself until a call lands on the victim's
		 * core: its branch is the one minted right after the victim's. */
		let own = null;
		for (let i = 0; i < 16 && !own; i++) {
			const o = await ringing(`own${i}`);
			if (BRANCH.exec(o.inv.branch)[1] === vcore) own = o;
		}
		assert.ok(own, `no call of the attacker landed on core ${vcore}`);
		const [, core, serial, mac] = BRANCH.exec(own.inv.branch);
		const other = core === '1' ? '2' : '1';
		const guesses = [];
		for (const d of [-3, -2, -1, 1, 2, 3]) {
			guesses.push(`z9hG4bKsm${core}.${hexAdd(serial, d)}.${mac}`);
			guesses.push(`z9hG4bKsm${core}.${serial}.${hexAdd(mac, d)}`);
			guesses.push(`z9hG4bKsm${core}.${hexAdd(serial, d)}.${hexAdd(mac, d)}`);
		}
		guesses.push(`z9hG4bKsm${other}.${serial}.${mac}`);
		for (let i = 0; i < 40; i++) guesses.push(`z9hG4bKsm${i % 2 + 1}.${hex16()}.${hex16()}`);
		/* The victim's callee's 486 (its Vias and Call-ID: the worst
		 * case, an attacker who knows them), each guess as the branch. */
		const real = call.inv.branch;
		const busy = buildResponse(call.inv, 486, 'Busy Here', { toTag: rand(4) }).toString('latin1');
		const att = await c.ua('sprayer');
		for (const g of guesses) await att.sendRaw(c.edge(), busy.replace(real, g));
		await droppedReaches(base + guesses.length);
		assert.deepEqual(call.tx.responses.filter((r) => r.status >= 300).map((r) => r.status), [],
			'the caller got a final failure from a forged response');
		const ok = await answer(call);
		assert.equal(ok.status, 200);
		assert.deepEqual(call.tx.responses.filter((r) => r.status >= 300).map((r) => r.status), []);
	});

	c.test('in dialog, a Route naming the edge without our signature for the call: 403, nothing reaches the Request-URI', async () => {
		const udp = await c.ua('udp-target');
		const tcp = await tcpListener();
		/* A real dialog: its Record-Route is signed for its Call-ID only. */
		const call = await ringing('dlg');
		const ok = await answer(call);
		const rrs = ok.list('record-route');
		assert.ok(rrs.length >= 1 && rrs.every((r) => /;smsig=[0-9a-f]{16}/.test(r)),
			`signed Record-Route values: ${JSON.stringify(rrs)}`);
		const edge = c.edge();
		const routes = [
			[],
			[`<sip:${edge.addr};lr>`],
			[`<sip:${edge.addr};lr;smsig=${hex16()}>`],
			[`<sip:sm-f1-1-1@${edge.addr};lr>`],
			[`<sip:sm-f1-1-2@${edge.addr};transport=tcp;lr;smsig=${hex16()}>`],
			rrs,					/* another dialog's */
			[`<sip:0.0.0.0:${edge.port};lr>`],
			[`<sip:[::ffff:127.0.0.1]:${edge.port};lr>`],
			[`<sip:127.0.0.2:${edge.port};lr>`],
		];
		const targets = [`sip:x@${udp.addr}`, `sip:x@${HOST}:${tcp.port};transport=tcp`];
		const att = await c.ua('relayer');
		const marker = `relay-${rand(6)}`;
		const acksBefore = await c.coreStat('stray-acks');
		let acks = 0;
		for (const ruri of targets)
			for (const rs of routes) {
				const headers = rs.map((r) => ['Route', r]);
				for (const method of ['MESSAGE', 'INVITE', 'BYE']) {
					const r = await att.send(edge, {
						method, ruri, from: 'sip:ceo@a.test', to: 'sip:x@a.test', toTag: rand(4), headers,
						body: `${marker} ${method} ${rs.join(',')}`, contentType: 'text/plain',
					});
					assert.equal(r.status, 403, `${method} ${ruri} with Route ${rs.join(', ')} got ${r.status} ${r.reason}`);
				}
				att.request(edge, {
					method: 'ACK', ruri, from: 'sip:ceo@a.test', to: 'sip:x@a.test', toTag: rand(4), headers,
					body: `${marker} ACK`, contentType: 'text/plain', retransmit: false,
				});
				acks++;
			}
		await statReaches('stray-acks', acksBefore + acks);
		/* The real dialog still routes: the caller's BYE reaches the callee. */
		const o = call.tx.opts;
		const bye = await call.caller.send(edge, {
			method: 'BYE', ruri: parseNameAddr(ok.get('contact')).uri, from: o.from, fromTag: o.fromTag, to: o.to,
			toTag: tagOf(ok.get('to')), callId: o.callId, cseq: 2,
			headers: [...rrs].reverse().map((r) => ['Route', r]),
		});
		assert.equal(bye.status, 200, `BYE along the real route set got ${bye.status} ${bye.reason}`);
		assert.deepEqual(udp.requests.map((m) => m.method), [], 'the UDP target received requests');
		assert.equal(tcp.conns, 0, 'the proxy connected to the TCP target');
	});

	c.test('a sipp UAS on the UDP port numbered like the TLS listener receives its calls', async () => {
		const port = c.tlsDest().port;
		const user = `tlsport-${rand(3)}`;
		const callee = await startUas(c, { user, scenario: 'uas_call.xml', port });
		const caller = await runSipp(c, {
			scenario: 'uac_call.xml', dest: c.edge(), service: user, keys: { sm_domain: 'a.test' },
		});
		const calleeRes = await callee.wait(25000);
		assertOk(caller, `caller to a callee on UDP ${HOST}:${port}`);
		assertOk(calleeRes, `callee on UDP ${HOST}:${port} (the TLS listener's port number)`);
	});
});
