'use strict';
/*
 * 81 federation over TLS (issue 11, RFC 5922): cluster A serves a.test,
 * cluster B b.test and w.test; each publishes only `_sips._tcp` SRV
 * records naming its edge's TLS port, in a real dnsmasq.  Both edges
 * hold a certificate from the test's CA for their domains (and for
 * 127.0.0.1, the host their Record-Route names, where in-dialog
 * requests come back) and trust only that CA; each cluster requires
 * the other's domain to prove itself with a client certificate
 * ([federation] tls_client_cert_domains), so every request between
 * them, BYE both ways included, rides mutual TLS.
 *
 * What a.test refuses:
 *   - a target whose certificate names another domain (w.test's first
 *     SRV target) or comes from a CA it does not trust (u.test's only
 *     one): the request fails over to the next TLS target, else the
 *     caller gets 502 with a Warning; no SIP byte reaches the refused
 *     server, and no plain target is tried after it (d.test: NAPTR
 *     SIPS+D2T first, SIP+D2U second);
 *   - a request From b.test that arrives over UDP, or over TLS without
 *     a client certificate, with one for another domain, or with one
 *     from a CA it does not trust: 403, nothing delivered.
 */
const assert = require('node:assert/strict');
const tls = require('node:tls');
const { describe, before, after } = require('node:test');
const { cluster, freePort, rand, waitUntil, HOST } = require('./lib/cluster');
const { SipUA } = require('./lib/sip');
const { message, registeredUser } = require('./lib/flows');
const { crossDomainCall } = require('./lib/sipp');
const { Dnsmasq } = require('./lib/dnsmasq');
const { StreamUA } = require('./lib/ws');
const { testCa } = require('./lib/pki');

describe('81 federation over TLS', () => {
	const { ca, leaf } = testCa();
	const other = testCa('a CA nobody trusts');
	const pki = {
		a: leaf('a', 'a.test', `DNS:a.test,IP:${HOST}`),
		b: leaf('b', 'b.test', `DNS:b.test,DNS:w.test,IP:${HOST}`),
		/* Right CA, other name: what a server for x.test would hold. */
		x: leaf('x', 'x.test', `DNS:x.test,IP:${HOST}`),
		c: leaf('c', 'c.test', 'DNS:c.test'),
		/* The right names from a CA a.test does not trust. */
		uFake: other.leaf('u-fake', 'u.test', `DNS:u.test,IP:${HOST}`),
		bFake: other.leaf('b-fake', 'b.test', 'DNS:b.test'),
		/* b.test as a sip: URI SAN (RFC 5922 7.1), no dNSName. */
		bUri: leaf('b-uri', 'b.test', 'URI:sip:b.test'),
	};
	const dns = new Dnsmasq();
	const tlsPort = {};
	let wrongPeer = null;	/* a TLS server holding x.test's certificate */
	let fakePeer = null;	/* one holding u.test's from the other CA */
	let dPeer = null;	/* d.test's TLS target, x.test's certificate
				   too (a server of its own: w.test's is
				   blocklisted, hence last, once refused) */
	let plain = null;	/* d.test's UDP target: must never be used */

	/* A TLS server the test owns: handshakes it saw fail, and any byte
	 * of SIP it received (none may come). */
	async function tlsServer(cred) {
		const port = await freePort();
		const p = { port, failed: [], sessions: 0, bytes: 0 };
		p.srv = tls.createServer({ key: cred.key, cert: cred.cert }, (s) => {
			p.sessions++;
			s.on('data', (d) => { p.bytes += d.length; });
			s.on('error', () => {});
		});
		p.srv.on('tlsClientError', (err) => p.failed.push(err.code || err.message));
		await new Promise((r) => p.srv.listen(port, HOST, r));
		return p;
	}

	before(async () => {
		dns.port = await freePort();
		tlsPort.A = await freePort();
		tlsPort.B = await freePort();
		wrongPeer = await tlsServer(pki.x);
		fakePeer = await tlsServer(pki.uFake);
		dPeer = await tlsServer(pki.x);
		plain = await SipUA.open({ label: 'd-test-plain' });
		plain.handler = () => 200;
	});
	const fed = (peers) => () => ({
		federation: { dns_servers: dns.addr, failover_ms: 2000, blocklist_s: 60, tls_client_cert_domains: peers },
	});
	const tlsEdge = (id, cred) => ({
		edge: { tls_cert: cred.certPath, tls_key: cred.keyPath, tls_ca: ca },
		edgeKeys: () => ({ tls: `${HOST}:${tlsPort[id]}` }),
	});
	const A = cluster({
		name: '81-federation-tls-a', cores: 1, registrar: { domains: 'a.test' },
		sections: fed('b.test'), ...tlsEdge('A', pki.a),
	});
	const B = cluster({
		name: '81-federation-tls-b', cores: 1, registrar: { domains: 'b.test w.test' },
		sections: fed('a.test'), ...tlsEdge('B', pki.b),
	});
	before(async () => {
		await dns.start([
			`host-record=edge.a.test,${HOST}`,
			`host-record=edge.b.test,${HOST}`,
			`host-record=peer.x.test,${HOST}`,
			/* TLS only: no _sip._udp, no _sip._tcp. */
			`srv-host=_sips._tcp.a.test,edge.a.test,${tlsPort.A},10,10`,
			`srv-host=_sips._tcp.b.test,edge.b.test,${tlsPort.B},10,10`,
			/* w.test: first a server proving x.test only, then B. */
			`srv-host=_sips._tcp.w.test,peer.x.test,${wrongPeer.port},10,10`,
			`srv-host=_sips._tcp.w.test,edge.b.test,${tlsPort.B},20,10`,
			/* u.test: one server, its CA not trusted by a.test. */
			`srv-host=_sips._tcp.u.test,peer.x.test,${fakePeer.port},10,10`,
			/* d.test: TLS preferred (refused), plain UDP after it. */
			'naptr-record=d.test,10,10,S,SIPS+D2T,,_sips._tcp.d.test',
			'naptr-record=d.test,20,10,S,SIP+D2U,,_sip._udp.d.test',
			`srv-host=_sips._tcp.d.test,peer.x.test,${dPeer.port},10,10`,
			`srv-host=_sip._udp.d.test,peer.x.test,${plain.port},10,10`,
		]);
	});
	after(async () => {
		await dns.stop();
		for (const p of [wrongPeer, fakePeer, dPeer]) if (p) p.srv.close();
		if (plain) plain.close();
	});

	/* A UA registered over UDP as user@domain on cluster c. */
	const viaTls = (c) => new RegExp(`SIP/2\\.0/TLS ${HOST}:${tlsPort[c]};`, 'i');
	const edgeLog = (c) => c.edges[0].proc.text(c.testStart);
	const coreLog = (c) => c.cores[0].proc.text(c.testStart);

	A.test('a MESSAGE from alice@a.test to bob@b.test crosses over TLS (SRV _sips._tcp only) and gets 200', async () => {
		const alice = await registeredUser(A, 'alice', 'a.test');
		const bob = await registeredUser(B, 'bob', 'b.test');
		const body = `over tls ${rand(6)}`;
		const r = await message(alice.ua, A.edge(), bob.user, 'b.test', { from: alice.aor, body, timeout: 8000 });
		assert.equal(r.status, 200, `MESSAGE to ${bob.aor} got ${r.status} ${r.reason}`);
		const got = bob.ua.requests.filter((q) => q.method === 'MESSAGE');
		assert.equal(got.length, 1, 'bob received it once');
		assert.equal(got[0].body.toString('latin1'), body);
		assert.match(got[0].all('via').join('\n'), viaTls('A'), 'A sent it to B over TLS');
		assert.ok(dns.queries('SRV', '_sips._tcp.b.test') >= 1, 'located through _sips._tcp');
	});

	A.test('a MESSAGE from carol@b.test to dave@a.test crosses back over TLS with B\'s client certificate', async () => {
		const dave = await registeredUser(A, 'dave', 'a.test');
		const carol = await registeredUser(B, 'carol', 'b.test');
		const r = await message(carol.ua, B.edge(), dave.user, 'a.test', { from: carol.aor, timeout: 8000 });
		assert.equal(r.status, 200, `MESSAGE to ${dave.aor} got ${r.status} ${r.reason}`);
		const got = dave.ua.requests.filter((q) => q.method === 'MESSAGE');
		assert.equal(got.length, 1, 'dave received it');
		assert.match(got[0].all('via').join('\n'), viaTls('B'), 'B sent it to A over TLS');
	});

	A.test('a sips: Request-URI to b.test is delivered over TLS', async () => {
		const alice = await registeredUser(A, 'alice-s', 'a.test');
		const bob = await registeredUser(B, 'bob-s', 'b.test');
		const r = await message(alice.ua, A.edge(), bob.user, 'b.test',
			{ from: alice.aor, ruri: `sips:${bob.user}@b.test`, timeout: 8000 });
		assert.equal(r.status, 200, `MESSAGE to sips:${bob.user}@b.test got ${r.status} ${r.reason}`);
		const got = bob.ua.requests.filter((q) => q.method === 'MESSAGE');
		assert.equal(got.length, 1, 'bob received it');
		assert.match(got[0].all('via').join('\n'), viaTls('A'));
	});

	/* A sipp call from caller@from on cluster src to a sipp callee
	 * registered on dst as user@to; the 200 carries both clusters'
	 * Record-Route for their TLS side. */
	async function call(src, dst, from, to, uas, uac) {
		const { rr } = await crossDomainCall(src, dst, from, to, uas, uac);
		for (const id of ['A', 'B'])
			assert.match(rr, new RegExp(`${HOST}:${tlsPort[id]};transport=tls`), `TLS Record-Route of ${id} (${rr})`);
	}

	A.test('a call from a.test to b.test over mutual TLS, BYE from the caller', async () => {
		await call(A, B, 'a.test', 'b.test', 'uas_call.xml', 'uac_call.xml');
	});

	A.test('a call from b.test to a.test over mutual TLS, BYE from the callee', async () => {
		await call(B, A, 'b.test', 'a.test', 'uas_call_bye.xml', 'uac_call_bye.xml');
	});

	A.test('first target\'s certificate names another domain: refused in the handshake, the next target gets it', async () => {
		const alice = await registeredUser(A, 'alice-w', 'a.test');
		const bob = await registeredUser(B, 'bob-w', 'w.test');
		const t0 = Date.now();
		const r = await message(alice.ua, A.edge(), bob.user, 'w.test', { from: alice.aor, timeout: 8000 });
		const ms = Date.now() - t0;
		assert.equal(r.status, 200, `MESSAGE to ${bob.aor} got ${r.status} ${r.reason}`);
		assert.ok(ms < 2000, `answered in ${ms} ms: a refused certificate is failed over at once`);
		assert.equal(bob.ua.requests.filter((q) => q.method === 'MESSAGE').length, 1, 'bob received it');
		assert.ok(wrongPeer.failed.length >= 1, 'the x.test server saw its handshake fail');
		assert.equal(wrongPeer.bytes, 0, 'no byte of SIP reached the x.test server');
		/* The name checked is the domain, never the SRV target's. */
		await waitUntil(() => edgeLog(A).includes('TLS peer refused for w.test: hostname mismatch'), 5000,
			'A\'s edge logs the refusal for w.test');
		assert.match(coreLog(A), new RegExp(`target ${HOST}:${wrongPeer.port}/tls failed \\(503, TLS peer refused\\)`));
		console.log(`# w.test: wrong-name first target refused, 200 from the next in ${ms} ms`);
	});

	A.test('the only target\'s certificate comes from an untrusted CA: 502 with a Warning, nothing sent', async () => {
		const alice = await registeredUser(A, 'alice-u', 'a.test');
		const r = await message(alice.ua, A.edge(), 'nobody', 'u.test', { from: alice.aor, timeout: 8000 });
		assert.equal(r.status, 502, `MESSAGE to u.test got ${r.status} ${r.reason}`);
		assert.match(r.get('warning') || '', /u\.test/, 'the Warning names the domain');
		assert.ok(fakePeer.failed.length >= 1, 'its handshake failed');
		assert.equal(fakePeer.sessions, 0, 'no TLS session completed');
		assert.equal(fakePeer.bytes, 0, 'no byte of SIP reached it');
		await waitUntil(() => /TLS peer refused for u\.test: (self-signed|unable to get local issuer)/.test(edgeLog(A)), 5000,
			'A\'s edge logs why');
	});

	A.test('a refused TLS target is not followed by a plain one (no downgrade): 502, the UDP target sees nothing', async () => {
		const alice = await registeredUser(A, 'alice-d', 'a.test');
		const r = await message(alice.ua, A.edge(), 'victim', 'd.test', { from: alice.aor, timeout: 8000 });
		assert.equal(r.status, 502, `MESSAGE to d.test got ${r.status} ${r.reason}`);
		assert.ok(dns.queries('NAPTR', 'd.test') >= 1, 'd.test was located through NAPTR');
		assert.ok(dPeer.failed.length >= 1, 'the TLS target was tried first, and refused');
		assert.equal(dPeer.bytes, 0);
		/* The 502 is the core's last word on this request: had it
		 * fallen back to UDP, the target would have it by now. */
		const seen = plain.requests.map((q) => q.method);
		assert.deepEqual(seen, [], 'nothing reached the plain UDP target');
	});

	/* A MESSAGE From b.test straight to A's TLS edge, with cred as the
	 * client certificate (null: none), resuming session if given.
	 * Resolves with the final response, plus the connection's
	 * session ticket and whether it resumed one. */
	async function fromPeerOverTls(cred, to, body, session) {
		const ua = new StreamUA(true);
		let ticket = null;
		const s = await new Promise((res, rej) => {
			const sock = tls.connect({
				host: HOST, port: tlsPort.A, rejectUnauthorized: false,
				...(cred ? { key: cred.key, cert: cred.cert } : {}), ...(session ? { session } : {}),
			}, () => res(sock));
			sock.on('session', (t) => { ticket = t; });
			sock.once('error', rej);
			ua.attach(sock);
		});
		try {
			const r = await ua.send({
				method: 'MESSAGE', ruri: `sip:${to.user}@a.test`, from: `sip:mallory-${rand(3)}@b.test`,
				to: `sip:${to.user}@a.test`, body, contentType: 'text/plain',
			}, 5000);
			r.ticket = ticket;
			r.resumed = s.isSessionReused();
			return r;
		} finally {
			s.destroy();
		}
	}

	A.test('mutual TLS: From b.test without a certificate proving b.test gets 403 and is not delivered', async () => {
		const dave = await registeredUser(A, 'dave-m', 'a.test');
		const outcomes = {};
		/* Over UDP, claiming b.test. */
		const eve = await A.ua('eve');
		const udp = await message(eve, A.edge(), dave.user, 'a.test', { from: 'sip:eve@b.test', body: 'udp', timeout: 5000 });
		outcomes.udp = udp.status;
		for (const [label, cred] of [['no certificate', null], ['a certificate for c.test', pki.c],
			['b.test from an untrusted CA', pki.bFake]])
			outcomes[label] = (await fromPeerOverTls(cred, dave, label)).status;
		assert.deepEqual(outcomes, {
			udp: 403, 'no certificate': 403, 'a certificate for c.test': 403, 'b.test from an untrusted CA': 403,
		});
		/* The barrier: a good certificate gets through, as a dNSName
		 * and as a sip: URI SAN. */
		let ticket = null;
		for (const cred of [pki.b, pki.bUri]) {
			const ok = await fromPeerOverTls(cred, dave, 'proven');
			assert.equal(ok.status, 200, `with ${cred === pki.b ? 'B\'s' : 'a sip: URI'} certificate: ${ok.status} ${ok.reason}`);
			ticket = ticket || ok.ticket;
		}
		/* A resumed session still proves what its certificate did. */
		assert.ok(ticket, 'the edge gave a session ticket');
		const again = await fromPeerOverTls(pki.b, dave, 'proven');
		const resumed = await fromPeerOverTls(pki.b, dave, 'proven', again.ticket);
		assert.equal(resumed.status, 200, `resumed: ${resumed.status} ${resumed.reason}`);
		assert.ok(resumed.resumed, 'the session was resumed');
		const got = dave.ua.requests.filter((q) => q.method === 'MESSAGE').map((q) => q.body.toString('latin1'));
		assert.deepEqual(got, ['proven', 'proven', 'proven', 'proven'], 'dave received only the proven ones');
		assert.match(coreLog(A), /MESSAGE from b\.test over UDP without a client certificate proving it: 403/);
	});

	A.test('a domain not listed still federates without a client certificate', async () => {
		const dave = await registeredUser(A, 'dave-n', 'a.test');
		const ua = await A.ua('zed');
		const r = await message(ua, A.edge(), dave.user, 'a.test', { from: 'sip:zed@z.test', timeout: 5000 });
		assert.equal(r.status, 200, `MESSAGE from z.test got ${r.status} ${r.reason}`);
	});
});
