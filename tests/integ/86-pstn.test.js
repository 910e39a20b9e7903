'use strict';
/*
 * 86 pstn: calls to the phone network through SIP trunks ([pstn]).  Two
 * gateways, UDP listeners of the test's own: the first answers 503 to
 * everything, the second takes calls and messages.  Numbers nobody
 * registered, asked for by a user proven with an account, go to the
 * gateways in turn, the Request-URI cut by strip and prefixed
 * (+4930... -> 004930...@gateway), with a P-Asserted-Identity of the
 * authenticated user in place of whatever identity the caller wrote.
 * A DID ([pstn] dids) is a local user's number: a carrier's request for
 * it, at the domain or at the edge's address, reaches that user, and
 * her calls out show it as the caller; one whose user never registered
 * gets 404 and goes to no gateway although it looks like a number.
 * Refused: a KwikyKonf guest (403) and a request from another domain
 * (404, as an unknown user: a carrier's call for a number nobody holds
 * must not go back out); a number registered here is delivered here,
 * and once unregistered gets 480, never the trunk.  Nothing else reaches
 * a gateway's address: an account holder dialling it as a domain, a
 * Contact naming it, and the toll fraud of a re-INVITE for a number
 * inside a call an outsider made to a local phone all get 403; a
 * gateway's own call to a user lets the user's BYE back to it.
 *
 * A gateway that challenges (a third cluster with [pstn] username and
 * password): the call goes again with valid credentials and CSeq one
 * up, ACK and BYE moved with it, the answers moved back; a SHA-256
 * challenge without qop is answered; one refused again ends in 502; a
 * 486 after the credentials reaches the caller as 486.
 *
 * With media anchored (a second cluster, one rtpengine): a browser's
 * call over WebSocket (UDP/TLS/RTP/SAVPF, ICE, DTLS) reaches the gateway
 * as plain RTP/AVP on rtpengine, the browser gets rtpengine's DTLS
 * answer, and the gateway's BYE, along the Record-Route, reaches the
 * browser and ends the session on rtpengine.
 */
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const { describe, before, after } = require('node:test');
const { rand, waitUntil } = require('./lib/cluster');
const { httpGet } = require('./lib/wait');
const { runSipp, assertOk, countMessages } = require('./lib/sipp');
const { SipUA } = require('./lib/sip');
const { sipjsTests, streamCluster, SipJsUA, SDP, guestCreds, WsUA } = require('./lib/ws');
const { addUser, withAuth, parseChallenge, h } = require('./lib/digest');
const { Registration } = require('./lib/flows');
const SIP = require('sip.js');

const DOMAIN = 'a.test';
const PASS = 'pstn-secret';
const NUMBER = '+4930123456';
const DIALLED = '004930123456';		/* strip 1, prefix 00 */
const DID = '+4930555111';		/* dora's */
const DID_IDLE = '+4930555112';		/* a user who never registered */

describe('86 pstn', () => {
	let busy = null;	/* gateway 1: 503 to everything */
	let gw = null;		/* gateway 2: answers */
	before(async () => {
		/* gateways on addresses of their own: only trunk calls may
		 * reach a gateway's address, and the phones are on 127.0.0.1 */
		busy = await SipUA.open({ label: 'gateway-1-busy', host: '127.0.5.1' });
		busy.handler = () => 503;
		gw = await SipUA.open({ label: 'gateway-2', host: '127.0.5.2' });
		gw.handler = (req) => (req.method === 'INVITE' ?
			[180, { status: 200, body: SDP('gw'), contentType: 'application/sdp' }] : 200);
	});
	after(() => {
		if (busy) busy.close();
		if (gw) gw.close();
	});
	const c = streamCluster({
		/* one core: the gateways it found dead are its own (per core) */
		name: '86-pstn', edges: 1, cores: 1, redis: true,
		/* MD5 alone: sipp answers the first challenge, SIP.js the last */
		registrar: { auth: 'yes', domains: DOMAIN, auth_algorithms: 'MD5' },
		sections: () => ({
			pstn: {
				gateways: `sip:${busy.addr} sip:${gw.addr}`,
				strip: 1, prefix: '00',
				dids: `${DID}=dora@${DOMAIN} ${DID_IDLE}=idle@${DOMAIN}`,
			},
		}),
	});
	const { open, test: wsTest } = sipjsTests(c);

	/* A SIP.js user with an account, registered. */
	async function user(name, o = {}) {
		const u = o.exact ? name : `${name}-${rand(3)}`;
		await addUser(c, u, DOMAIN, PASS);
		const ua = await SipJsUA.open({
			user: u, domain: DOMAIN, server: c.wsUrl(1), register: false,
			uaOptions: { authorizationUsername: u, authorizationPassword: PASS },
		});
		open.push(ua);
		c.addEvidence(`SIP.js ${u} log`, { toString: () => ua.log.join('\n') });
		await ua.register(300);
		return ua;
	}

	const seen = (ua, method) => ua.distinctRequests((r) => r.method === method);
	const gatewaysSaw = () => busy.requests.length + gw.requests.length;

	wsTest('a MESSAGE to a number goes to the first gateway that answers, cut, prefixed and shown as the user', async () => {
		const a = await user('alice');
		const pstn = await c.coreStat('pstn');
		assert.equal(await a.message(`sip:${NUMBER}@${DOMAIN}`, 'sms to the phone network'), 200);
		const tried = seen(busy, 'MESSAGE');
		const got = seen(gw, 'MESSAGE');
		assert.equal(tried.length, 1, 'gateway 1 was tried first');
		assert.equal(got.length, 1, 'gateway 2 got it after the 503');
		for (const [r, g] of [[tried[0], busy], [got[0], gw]])
			assert.equal(r.ruri, `sip:${DIALLED}@${g.addr}`, 'the number at the gateway');
		assert.equal(got[0].body.toString(), 'sms to the phone network');
		assert.deepEqual(got[0].all('p-asserted-identity'), [`<${a.aor}>`]);
		assert.ok(!got[0].has('proxy-authorization'), 'our credentials stay here');
		assert.equal(await c.coreStat('pstn'), pstn + 1);
		/* gateway 1 is remembered dead ([federation] blocklist_s): the
		 * next message goes straight to gateway 2 */
		assert.equal(await a.message(`sip:${NUMBER}@${DOMAIN}`, 'and another'), 200);
		assert.equal(seen(busy, 'MESSAGE').length, 1, 'gateway 1 not asked again');
		assert.equal(seen(gw, 'MESSAGE').length, 2);
	});

	c.test('a phone\'s call to a number: the gateway sees only the caller\'s own identity, BYE goes through', async () => {
		const caller = `caller-${rand(3)}`;
		await addUser(c, caller, DOMAIN, PASS);
		const before = seen(gw, 'INVITE').length;
		/* uac_auth_call.xml writes P-Asserted-Identity and
		 * Remote-Party-ID of other numbers into its INVITE. */
		const r = await runSipp(c, {
			scenario: 'uac_auth_call.xml', dest: c.edge(), service: NUMBER,
			keys: { sm_user: caller, sm_domain: DOMAIN }, timeout: 20,
			args: ['-au', caller, '-ap', PASS],
		});
		assertOk(r, 'sipp caller to the trunk');
		assert.ok(countMessages(r, 'sent', /P-Asserted-Identity: <sip:\+19005550100/), 'sipp forged one');
		const inv = seen(gw, 'INVITE').slice(before);
		assert.equal(inv.length, 1);
		assert.equal(inv[0].ruri, `sip:${DIALLED}@${gw.addr}`);
		assert.deepEqual(inv[0].all('p-asserted-identity'), [`<sip:${caller}@${DOMAIN}>`]);
		assert.ok(!inv[0].has('remote-party-id'), 'Remote-Party-ID removed');
		assert.doesNotMatch(inv[0].raw.toString('latin1'), /\+1900555010/, 'no forged number reaches the trunk');
		assert.ok(inv[0].all('record-route').length >= 1, 'the cluster stays in the dialog');
		const bye = await gw.waitRequest((m) => m.method === 'BYE' && m.callId === inv[0].callId, 5000, 'BYE');
		assert.ok(!bye.has('proxy-authorization'));
	});

	wsTest('a KwikyKonf guest cannot call a number nor another domain: 403, nothing leaves', async () => {
		const g = await guestCreds(c, `r${rand(4)}`);
		const ua = await SipJsUA.open({
			user: g.user, domain: DOMAIN, server: c.wsUrl(1), register: false,
			uaOptions: { authorizationUsername: g.username, authorizationPassword: g.password },
		});
		open.push(ua);
		const n = gatewaysSaw();
		const refused = await c.coreStat('guests-refused');
		assert.equal(await ua.message(`sip:${NUMBER}@${DOMAIN}`, 'free call?'), 403);
		/* gateway 2 by its address: a foreign domain, no DNS needed */
		assert.equal(await ua.message(`sip:${DIALLED}@${gw.addr}`, 'straight to it?'), 403);
		assert.equal(gatewaysSaw(), n);
		assert.equal(await c.coreStat('guests-refused'), refused + 2);
	});

	c.test('a request from another domain for a number gets 404 and reaches no gateway', async () => {
		const ua = await c.ua('carrier');
		const n = gatewaysSaw();
		const res = await ua.send(c.edge(), {
			method: 'MESSAGE', from: 'sip:+15550001@carrier.example', to: `sip:${NUMBER}@${DOMAIN}`,
			ruri: `sip:${NUMBER}@${DOMAIN}`, body: 'hairpin?',
		});
		assert.equal(res.status, 404);
		assert.equal(gatewaysSaw(), n);
	});

	wsTest('a carrier\'s request for a DID reaches its user; her calls out show it', async () => {
		const dora = await user('dora', { exact: true });
		const dids = await c.coreStat('pstn-dids');
		const n = gatewaysSaw();
		const carrier = await c.ua('carrier-did');
		for (const ruri of [`sip:${DID}@${DOMAIN}`, `sip:${DID}@${c.edge().addr}`]) {
			const res = await carrier.send(c.edge(), {
				method: 'MESSAGE', from: 'sip:+15550001@carrier.example', to: ruri, ruri,
				body: `for ${ruri}`,
			});
			assert.equal(res.status, 200, ruri);
			await dora.waitMessage(`for ${ruri}`);
		}
		const idle = await carrier.send(c.edge(), {
			method: 'MESSAGE', from: 'sip:+15550001@carrier.example', to: `sip:${DID_IDLE}@${DOMAIN}`,
			ruri: `sip:${DID_IDLE}@${DOMAIN}`, body: 'nobody home',
		});
		assert.equal(idle.status, 404, 'a DID of a user never registered');
		assert.equal(gatewaysSaw(), n, 'no DID went out to a gateway');
		assert.equal(await c.coreStat('pstn-dids'), dids + 3);
		/* dora calls out: the carrier sees her number, not her name */
		const before = seen(gw, 'MESSAGE').length;
		assert.equal(await dora.message(`sip:${NUMBER}@${DOMAIN}`, 'from my number'), 200);
		const got = seen(gw, 'MESSAGE').slice(before);
		assert.equal(got.length, 1);
		assert.deepEqual(got[0].all('p-asserted-identity'), [`<sip:${DID}@${DOMAIN}>`]);
	});

	wsTest('a number registered here is delivered here; unregistered it gets 480, not the trunk', async () => {
		const a = await user('alice');
		const local = `+4930999${100 + Math.floor(Math.random() * 900)}`;
		const b = await user(local, { exact: true });
		const n = gatewaysSaw();
		assert.equal(await a.message(b.aor, 'to a local number'), 200);
		await b.waitMessage('to a local number');
		await b.unregister();
		assert.equal(await a.message(b.aor, 'again'), 480);
		assert.equal(gatewaysSaw(), n);
	});

	wsTest('nothing else reaches a gateway: a user dialling its address, a Contact there, a request inside another call', async () => {
		const a = await user('alice');
		const n = gatewaysSaw();
		const bypass = await c.coreStat('pstn-bypass-refused');
		/* an account holder straight to the gateway: no number rules,
		 * its own P-Asserted-Identity */
		assert.equal(await a.message(`sip:${DIALLED}@${gw.addr}`, 'around the trunk'), 403);
		/* a binding whose Contact names the gateway: anyone calling
		 * that user would call out (the Contact is not where the
		 * REGISTER came from, so it is taken for a NAT's: the
		 * request goes to the registering address, never to it) */
		const carol = `carol-${rand(3)}`;
		await addUser(c, carol, DOMAIN, PASS);
		const reg = new Registration(await c.ua('reg-at-gateway'), c.edge(), carol, DOMAIN);
		const r0 = await withAuth((hdrs) => reg.send({
			contacts: [`<sip:${DIALLED}@${gw.addr}>`], expires: 300, headers: hdrs,
		}), 'REGISTER', `sip:${DOMAIN}`, carol, PASS, 'MD5');
		assert.equal(r0.res.status, 200);
		const out = await c.ua('outsider');
		await out.send(c.edge(), {
			method: 'MESSAGE', from: 'sip:mallory@evil.example', to: reg.aor, ruri: reg.aor, body: 'via carol',
		});
		/* an outsider who called dave, a UDP phone (one Record-Route
		 * entry: the Request-URI picks the next hop), sends, inside that
		 * call, an INVITE for a number at the gateway along the Route
		 * it got */
		const dave = `dave-${rand(3)}`;
		await addUser(c, dave, DOMAIN, PASS);
		const phone = await c.ua('dave-phone');
		phone.handler = (req) => (req.method === 'INVITE' ?
			{ status: 200, body: SDP('dave'), contentType: 'application/sdp' } : 200);
		const dreg = new Registration(phone, c.edge(), dave, DOMAIN);
		const r1 = await withAuth((hdrs) => dreg.send({ expires: 300, headers: hdrs }),
			'REGISTER', `sip:${DOMAIN}`, dave, PASS, 'MD5');
		assert.equal(r1.res.status, 200);
		const callId = `${rand(10)}@evil`;
		const fromTag = rand(6);
		const res = await out.send(c.edge(), {
			method: 'INVITE', from: 'sip:mallory@evil.example', fromTag, to: dreg.aor, ruri: dreg.aor,
			callId, contact: `<${out.contactUri('mallory')}>`, body: SDP('mallory'), contentType: 'application/sdp',
		}, 8000);
		assert.equal(res.status, 200, 'dave answers');
		const toTag = /tag=([^;>\s]+)/.exec(res.get('to'))[1];
		const route = res.all('record-route').reverse().map((v) => ['Route', v]);
		out.request(c.edge(), {
			method: 'ACK', from: 'sip:mallory@evil.example', fromTag, to: dreg.aor, toTag,
			ruri: /<([^>]+)>/.exec(res.get('contact'))[1], callId, cseq: 1, headers: route, retransmit: false,
		});
		const fraud = await out.send(c.edge(), {
			method: 'INVITE', from: 'sip:mallory@evil.example', fromTag, to: dreg.aor, toTag,
			ruri: `sip:${DIALLED}@${gw.addr}`, callId, cseq: 2, headers: route,
			contact: `<${out.contactUri('mallory')}>`, body: SDP('mallory'), contentType: 'application/sdp',
		});
		assert.equal(fraud.status, 403);
		assert.equal(gatewaysSaw(), n, 'no gateway saw any of it');
		/* the MESSAGE, the re-INVITE, and the re-INVITE's ACK for the
		 * 403, which the UA sends after the 403: waited for */
		await waitUntil(async () => await c.coreStat('pstn-bypass-refused') >= bypass + 3,
			3000, 'three requests for the gateway counted');
		assert.equal(gatewaysSaw(), n, 'nor the ACK');
	});

	wsTest('a gateway\'s call to a user: the user\'s BYE goes back to the gateway', async () => {
		const bob = await user('bob');
		const callId = `${rand(10)}@carrier`;
		const fromTag = rand(6);
		const res = await gw.send(c.edge(), {
			method: 'INVITE', from: 'sip:+15550001@carrier.example', fromTag, to: bob.aor, ruri: bob.aor,
			callId, contact: `<${gw.contactUri('carrier')}>`, body: SDP('carrier'), contentType: 'application/sdp',
		}, 8000);
		assert.equal(res.status, 200);
		const toTag = /tag=([^;>\s]+)/.exec(res.get('to'))[1];
		gw.request(c.edge(), {
			method: 'ACK', from: 'sip:+15550001@carrier.example', fromTag, to: bob.aor, toTag,
			ruri: /<([^>]+)>/.exec(res.get('contact'))[1], callId, cseq: 1, retransmit: false,
			headers: res.all('record-route').reverse().map((v) => ['Route', v]),
		});
		await bob.waitFor(() => bob.invites.length > 0 && bob.invites[0].state === SIP.SessionState.Established,
			5000, 'the call up');
		await bob.bye(bob.invites[0]);
		const bye = await gw.waitRequest((m) => m.method === 'BYE' && m.callId === callId, 5000, 'BYE at the gateway');
		assert.ok(bye);
	});

	wsTest('when every gateway fails, the one found dead earlier is tried last, and the caller gets 500', async () => {
		const a = await user('alice');
		/* gateway 1 found dead first (this test's own) */
		assert.equal(await a.message(`sip:${NUMBER}@${DOMAIN}`, 'first'), 200);
		const tried = seen(busy, 'MESSAGE').length;
		const got = seen(gw, 'MESSAGE').length;
		const answers = gw.handler;
		gw.handler = () => 503;
		try {
			assert.equal(await a.message(`sip:${NUMBER}@${DOMAIN}`, 'nobody takes it'), 500);
		} finally {
			gw.handler = answers;
		}
		assert.equal(seen(gw, 'MESSAGE').length, got + 1, 'gateway 2 first: gateway 1 is dead');
		assert.equal(seen(busy, 'MESSAGE').length, tried + 1, 'then gateway 1, the last resort');
		const last = seen(busy, 'MESSAGE').at(-1).at;
		assert.ok(last >= seen(gw, 'MESSAGE').at(-1).at, 'in that order');
	});
});

/* A Chromium-like audio offer once its candidate is gathered:
 * DTLS-SRTP, ICE, rtcp-mux, a host candidate on port. */
function browserOffer(port) {
	const fp = Array.from({ length: 32 }, (_, i) => (i * 7 + 16).toString(16).toUpperCase().padStart(2, '0')).join(':');
	return ['v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0',
		`m=audio ${port} UDP/TLS/RTP/SAVPF 111 0`, 'c=IN IP4 127.0.0.1', `a=rtcp:${port} IN IP4 127.0.0.1`,
		`a=candidate:1 1 udp 2122260223 127.0.0.1 ${port} typ host generation 0`,
		'a=ice-ufrag:pstn', 'a=ice-pwd:pstnpstnpstnpstnpstnpstn', `a=fingerprint:sha-256 ${fp}`,
		'a=setup:actpass', 'a=mid:0', 'a=sendrecv', 'a=rtcp-mux',
		'a=rtpmap:111 opus/48000/2', 'a=rtpmap:0 PCMU/8000', ''].join('\r\n');
}

describe('86 pstn media', () => {
	let gw = null;
	let media = null;	/* the browser's ICE host candidate */
	before(async () => {
		gw = await SipUA.open({ label: 'gateway-media', host: '127.0.5.3' });
		gw.handler = (req) => (req.method === 'INVITE' ? [180, {
			status: 200, contentType: 'application/sdp',
			body: 'v=0\r\no=gw 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\n' +
				'm=audio 40000 RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\n',
		}] : 200);
		media = dgram.createSocket('udp4');
		await new Promise((res) => media.bind(0, '127.0.0.1', res));
	});
	after(() => {
		if (gw) gw.close();
		if (media) media.close();
	});
	const c = streamCluster({
		name: '86-pstn-media', edges: 1, cores: 1, redis: true,
		registrar: { auth: 'yes', domains: DOMAIN, auth_algorithms: 'MD5' },
		media: { rtpengines: 1 },
		sections: () => ({ pstn: { gateways: `sip:${gw.addr}`, strip: 1, prefix: '00' } }),
	});

	c.test('a browser\'s call to a number: RTP/AVP to the gateway, DTLS-SRTP to the browser, the gateway\'s BYE ends it', async () => {
		const u = `browser-${rand(3)}`;
		await addUser(c, u, DOMAIN, PASS);
		const ws = await WsUA.open({ url: c.wsUrl(1) });
		try {
			const ruri = `sip:${NUMBER}@${DOMAIN}`;
			const callId = `${rand(10)}@pstn.test`;
			const fromTag = rand(6);
			const dialog = { ruri, from: `sip:${u}@${DOMAIN}`, to: ruri, fromTag, callId, user: u };
			const { res } = await withAuth(async (hdrs, n) => {
				const r = await ws.send({
					method: 'INVITE', ...dialog, cseq: 1 + n, headers: hdrs,
					body: browserOffer(media.address().port), contentType: 'application/sdp',
				}, 8000);
				/* the 407's ACK, on the INVITE's branch */
				if (r.status === 407)
					ws.write(`ACK ${ruri} SIP/2.0\r\nVia: ${r.get('via')}\r\nMax-Forwards: 70\r\n` +
						`From: ${r.get('from')}\r\nTo: ${r.get('to')}\r\nCall-ID: ${callId}\r\n` +
						`CSeq: ${1 + n} ACK\r\nContent-Length: 0\r\n\r\n`);
				return r;
			}, 'INVITE', ruri, u, PASS, 'MD5');
			assert.equal(res.status, 200, 'the browser\'s INVITE answered');
			const inv = gw.distinctRequests((r) => r.method === 'INVITE' && r.callId === callId);
			assert.equal(inv.length, 1);
			const offer = inv[0].body.toString();
			assert.match(offer, /^m=audio \d+ RTP\/AVP /m, 'the gateway gets plain RTP');
			assert.match(offer, /^c=IN IP4 127\.0\.0\.1/m, 'on rtpengine');
			assert.doesNotMatch(offer, /a=(fingerprint|ice-ufrag|candidate|setup)/, 'no WebRTC left for the gateway');
			const answer = res.body.toString();
			assert.match(answer, /^m=audio \d+ UDP\/TLS\/RTP\/SAVPF /m, 'the browser gets DTLS-SRTP');
			assert.match(answer, /^a=fingerprint:sha-256 /m);
			assert.match(answer, /^a=ice-ufrag:/m);
			assert.match(answer, /^a=rtcp-mux/m);
			const engine = c.rtpengines[0];
			assert.equal((await c.ngQuery(engine, callId)).result, 'ok', 'rtpengine holds the call');
			/* The gateway hangs up along the Record-Route it got. */
			const bye = gw.request(inv[0].source, {
				method: 'BYE', ruri: /<([^>]+)>/.exec(inv[0].get('contact'))[1],
				from: ruri, fromTag: gw.toTag, to: dialog.from, toTag: fromTag, callId, cseq: 1,
				headers: inv[0].all('record-route').map((v) => ['Route', v]),
			});
			const got = await ws.waitRequest((r) => r.method === 'BYE' && r.callId === callId, 5000,
				'the gateway\'s BYE at the browser');
			ws.reply(got, 200, 'OK');
			assert.equal((await bye.finalResponse(5000)).status, 200);
			await waitUntil(async () => (await c.ngQuery(engine, callId)).result !== 'ok', 3000,
				'the session gone from rtpengine');
		} finally {
			ws.close();
		}
	});
});

/* The Authorization / Proxy-Authorization of req, checked as the
 * gateway would: the response for user/pass and the challenge ch
 * ({realm, nonce, alg, qop}).  Returns its parameters, or throws. */
function checkCredentials(req, name, ch, user, pass) {
	const v = req.get(name);
	assert.ok(v, `${req.method} without ${name}`);
	const p = parseChallenge(v);
	assert.equal(p.username, user);
	assert.equal(p.realm, ch.realm);
	assert.equal(p.nonce, ch.nonce);
	assert.equal(p.uri, req.ruri);
	assert.equal((p.algorithm || 'MD5').toUpperCase(), ch.alg);
	const ha1 = h(ch.alg, `${user}:${ch.realm}:${pass}`);
	const ha2 = h(ch.alg, `${req.method}:${p.uri}`);
	const want = ch.qop ? h(ch.alg, `${ha1}:${ch.nonce}:${p.nc}:${p.cnonce}:auth:${ha2}`) :
		h(ch.alg, `${ha1}:${ch.nonce}:${ha2}`);
	assert.equal(p.response, want, `${name} response`);
	if (ch.opaque) assert.equal(p.opaque, ch.opaque);
	return p;
}

describe('86 pstn trunk credentials', () => {
	const TRUNK_USER = 'trunk-7731';
	const TRUNK_PASS = 'carrier-secret';
	/* INVITE: 407, MD5 with qop and opaque; MESSAGE: 401, SHA-256
	 * without qop (RFC 2069, as Asterisk asks) */
	const inviteCh = { realm: 'carrier.example', nonce: 'n-invite-1', alg: 'MD5', qop: true, opaque: 'op7' };
	const msgCh = { realm: 'carrier.example', nonce: 'n-message-1', alg: 'SHA-256', qop: false };
	let gw = null;
	let refuse = false;	/* challenge every request, credentials or not */
	let busyAfter = false;	/* 486 to an INVITE with good credentials */
	before(async () => {
		gw = await SipUA.open({ label: 'gateway-digest', host: '127.0.5.4' });
		gw.handler = (req) => {
			const invite = req.method === 'INVITE';
			if (req.method !== 'INVITE' && req.method !== 'MESSAGE') return 200;
			const ch = invite ? inviteCh : msgCh;
			const name = invite ? 'proxy-authorization' : 'authorization';
			let ok = false;
			if (!refuse && req.has(name)) {
				try {
					checkCredentials(req, name, ch, TRUNK_USER, TRUNK_PASS);
					ok = true;
				} catch { /* challenged again */ }
			}
			if (!ok) {
				const v = `Digest realm="${ch.realm}", nonce="${ch.nonce}"` +
					(ch.qop ? ', qop="auth"' : '') + (ch.opaque ? `, opaque="${ch.opaque}"` : '') +
					`, algorithm=${ch.alg}`;
				return invite ? { status: 407, reason: 'Proxy Authentication Required', headers: [['Proxy-Authenticate', v]] } :
					{ status: 401, reason: 'Unauthorized', headers: [['WWW-Authenticate', v]] };
			}
			if (invite && busyAfter) return 486;
			return invite ? [180, { status: 200, body: SDP('gw'), contentType: 'application/sdp' }] : 200;
		};
	});
	after(() => { if (gw) gw.close(); });
	const c = streamCluster({
		name: '86-pstn-auth', edges: 1, cores: 1, redis: true,
		registrar: { auth: 'yes', domains: DOMAIN, auth_algorithms: 'MD5' },
		sections: () => ({
			pstn: { gateways: `sip:${gw.addr}`, username: TRUNK_USER, password: TRUNK_PASS },
		}),
	});
	const { open, test: wsTest } = sipjsTests(c);

	c.test('a gateway\'s 407: the call goes again with the trunk\'s credentials, CSeq one up, ACK and BYE moved with it', async () => {
		const caller = `caller-${rand(3)}`;
		await addUser(c, caller, DOMAIN, PASS);
		const r = await runSipp(c, {
			scenario: 'uac_auth_call.xml', dest: c.edge(), service: NUMBER,
			keys: { sm_user: caller, sm_domain: DOMAIN }, timeout: 20,
			args: ['-au', caller, '-ap', PASS],
		});
		assertOk(r, 'sipp caller through a trunk that challenges');
		const inv = gw.distinctRequests((m) => m.method === 'INVITE');
		assert.equal(inv.length, 2, 'the INVITE, then the INVITE with credentials');
		const callId = inv[0].callId;
		assert.ok(!inv[0].has('proxy-authorization'), 'the caller\'s own credentials never reach the gateway');
		const p = checkCredentials(inv[1], 'proxy-authorization', inviteCh, TRUNK_USER, TRUNK_PASS);
		assert.equal(p.qop, 'auth');
		const cseq = (m) => Number(m.get('cseq').split(/\s+/)[0]);
		assert.equal(cseq(inv[1]), cseq(inv[0]) + 1, 'CSeq one up (RFC 3261 22.2)');
		assert.notEqual(inv[1].branch, inv[0].branch);
		/* (a 200 or 407 resent on a slow machine brings its ACK again) */
		const acks = gw.distinctRequests((m) => m.method === 'ACK' && m.callId === callId);
		assert.deepEqual([...new Set(acks.map(cseq))], [cseq(inv[0]), cseq(inv[1])],
			'the 407\'s ACK (hop by hop), then the caller\'s ACK for the 200, moved up');
		const bye = await gw.waitRequest((m) => m.method === 'BYE' && m.callId === callId, 5000, 'BYE');
		assert.equal(cseq(bye), cseq(inv[1]) + 1, 'the caller\'s BYE, moved up past the INVITE');
		/* the caller saw its own CSeq numbers, and never the gateway's challenge */
		assert.ok(countMessages(r, 'received', /^SIP\/2\.0 200[\s\S]*CSeq: 2 INVITE/) >= 1, 'the 200 for CSeq 2');
		assert.ok(countMessages(r, 'received', /^SIP\/2\.0 200[\s\S]*CSeq: 3 BYE/) >= 1, 'the 200 for its BYE, CSeq 3');
		assert.equal(countMessages(r, 'received', /CSeq: (3 INVITE|4 BYE)/), 0, 'never the gateway\'s numbers');
		assert.equal(countMessages(r, 'received', /carrier\.example/), 0);
		assert.ok(await c.coreStat('pstn-auth') >= 1);
	});

	wsTest('a gateway\'s 401 without qop (SHA-256): the MESSAGE goes again with the trunk\'s credentials; refused again, the caller gets 502', async () => {
		await addUser(c, 'alice-a', DOMAIN, PASS);
		const a = await SipJsUA.open({
			user: 'alice-a', domain: DOMAIN, server: c.wsUrl(1), register: false,
			uaOptions: { authorizationUsername: 'alice-a', authorizationPassword: PASS },
		});
		open.push(a);
		const before = gw.distinctRequests((m) => m.method === 'MESSAGE').length;
		assert.equal(await a.message(`sip:${NUMBER}@${DOMAIN}`, 'sms via a trunk with an account'), 200);
		const msgs = gw.distinctRequests((m) => m.method === 'MESSAGE').slice(before);
		assert.equal(msgs.length, 2);
		const p = checkCredentials(msgs[1], 'authorization', msgCh, TRUNK_USER, TRUNK_PASS);
		assert.equal(p.qop, undefined, 'no qop: RFC 2069');
		/* a gateway that will not take them: one retry, then 502 */
		refuse = true;
		try {
			const failed = await c.coreStat('pstn-auth-failed');
			assert.equal(await a.message(`sip:${NUMBER}@${DOMAIN}`, 'refused'), 502);
			assert.equal(gw.distinctRequests((m) => m.method === 'MESSAGE').length, before + 4, 'two tries, no loop');
			assert.equal(await c.coreStat('pstn-auth-failed'), failed + 1);
		} finally {
			refuse = false;
		}
	});

	wsTest('the answer to the credentials is the caller\'s (486), never the gateway\'s challenge', async () => {
		await addUser(c, 'alice-b', DOMAIN, PASS);
		const a = await SipJsUA.open({
			user: 'alice-b', domain: DOMAIN, server: c.wsUrl(1), register: false,
			uaOptions: { authorizationUsername: 'alice-b', authorizationPassword: PASS },
		});
		open.push(a);
		busyAfter = true;
		try {
			await assert.rejects(a.invite(`sip:${NUMBER}@${DOMAIN}`), /failed with 486/);
		} finally {
			busyAfter = false;
		}
	});
});

/*
 * A trunk that sends our calls only to a contact registered at it
 * ([pstn] register = yes): the core registers the trunk's user at the
 * gateway with its edge's contact, answers the challenge with CSeq one
 * up, refreshes before what the carrier granted runs out (2 s here), and
 * a call the carrier sends to that contact for a DID reaches its user.
 * A carrier that refuses our credentials: counted, and no storm of
 * REGISTERs (the next try waits 30 s).  The edge the contact names
 * killed: the core registers again at once through the other edge.
 */
describe('86 pstn registration', () => {
	const TRUNK_USER = 'trunk-reg-5521';
	const TRUNK_PASS = 'reg-secret';
	const ch = { realm: 'carrier.example', nonce: 'n-reg-1', alg: 'MD5', qop: true };
	let gw = null;
	let refuse = false;
	before(async () => {
		gw = await SipUA.open({ label: 'gateway-registrar', host: '127.0.5.6' });
		gw.handler = (req) => {
			if (req.method !== 'REGISTER') return 200;
			let ok = false;
			if (!refuse && req.has('authorization')) {
				try {
					checkCredentials(req, 'authorization', ch, TRUNK_USER, TRUNK_PASS);
					ok = true;
				} catch { /* challenged again */ }
			}
			if (!ok) {
				return { status: 401, reason: 'Unauthorized', headers: [['WWW-Authenticate',
					`Digest realm="${ch.realm}", nonce="${ch.nonce}", qop="auth", algorithm=MD5`]] };
			}
			return { status: 200, headers: [['Contact', `${req.get('contact')};expires=2`]] };
		};
	});
	after(() => { if (gw) gw.close(); });
	const c = streamCluster({
		name: '86-pstn-reg', edges: 2, cores: 1, redis: true, metrics: true,
		registrar: { auth: 'yes', domains: DOMAIN, auth_algorithms: 'MD5' },
		sections: () => ({
			pstn: {
				gateways: `sip:${gw.addr}`, username: TRUNK_USER, password: TRUNK_PASS,
				register: 'yes', dids: `${DID}=dora@${DOMAIN}`,
			},
		}),
	});
	const { open, test: wsTest } = sipjsTests(c);
	/* sipmesh_core_pstn_registered of core 1 */
	async function registered() {
		const m = c.metrics.find((x) => x.kind === 'core');
		const r = await httpGet(m.addr, '/metrics', 3000);
		const line = r.body.split('\n').find((l) => l.startsWith('sipmesh_core_pstn_registered '));
		assert.ok(line, 'the core reports sipmesh_core_pstn_registered');
		return Number(line.split(' ')[1]);
	}

	wsTest('registers at the carrier, answers its challenge, refreshes; the carrier\'s call to that contact reaches the DID\'s user', async () => {
		const authed = () => gw.distinctRequests((m) => m.method === 'REGISTER' && m.has('authorization'));
		await waitUntil(() => authed().length >= 2, 10000, 'registered, then refreshed');
		const regs = gw.distinctRequests((m) => m.method === 'REGISTER');
		assert.ok(!regs[0].has('authorization'), 'the first without credentials');
		const cseq = (m) => Number(m.get('cseq').split(/\s+/)[0]);
		for (let i = 1; i < regs.length; i++) {
			assert.equal(regs[i].callId, regs[0].callId, 'one Call-ID');
			assert.equal(cseq(regs[i]), cseq(regs[i - 1]) + 1, 'CSeq one up each time');
		}
		const a = authed()[0];
		assert.equal(a.ruri, `sip:${gw.addr}`);
		assert.match(a.get('to'), new RegExp(`<sip:${TRUNK_USER}@${gw.addr}>`));
		const contact = /<([^>]+)>/.exec(a.get('contact'))[1];
		assert.equal(contact, `sip:${TRUNK_USER}@${c.edge().addr}`, 'the edge\'s contact');
		assert.equal(a.get('expires'), '600');
		assert.ok(await c.coreStat('pstn-reg-ok') >= 2);
		assert.equal(await c.coreStat('pstn-reg-failed'), 0);
		assert.equal(await registered(), 1, 'the gauge says registered');

		await addUser(c, 'dora', DOMAIN, PASS);
		const dora = await SipJsUA.open({
			user: 'dora', domain: DOMAIN, server: c.wsUrl(1), register: false,
			uaOptions: { authorizationUsername: 'dora', authorizationPassword: PASS },
		});
		open.push(dora);
		await dora.register(300);
		const res = await gw.send(c.edge(), {
			method: 'MESSAGE', from: 'sip:+15550001@carrier.example', to: `sip:${DID}@carrier.example`,
			ruri: contact, body: 'to the registered contact',
		});
		assert.equal(res.status, 200);
		await dora.waitMessage('to the registered contact');
	});

	c.test('the edge its contact names is lost: it registers again through the other edge', async () => {
		const at = (edge) => gw.distinctRequests((m) => m.method === 'REGISTER' && m.has('authorization') &&
			m.get('contact').includes(`@${c.edge(edge).addr}`));
		assert.ok(at(1).length > 0);
		assert.equal(at(2).length, 0, 'through edge 1 so far');
		await c.stopEdge(1, 'SIGKILL');
		await waitUntil(() => at(2).length > 0, 10000, 'registered through edge 2');
		assert.equal(await c.coreStat('pstn-reg-ok') > 0, true);
	});

	c.test('a carrier that refuses our credentials: counted, retried in 30 s, not at once', async () => {
		refuse = true;
		try {
			await waitUntil(async () => await c.coreStat('pstn-reg-failed') >= 1, 10000,
				'the refresh refused');
			assert.equal(await registered(), 0, 'the gauge says not registered');
			const n = gw.distinctRequests((m) => m.method === 'REGISTER').length;
			await new Promise((r) => setTimeout(r, 2000));
			assert.equal(gw.distinctRequests((m) => m.method === 'REGISTER').length, n,
				'no REGISTER while it waits');
		} finally {
			refuse = false;
		}
	});
});
