'use strict';
/*
 * 31 tls verify: the edge authenticates the TLS peers it dials (RFC
 * 5922).  The test is its own CA (openssl): the edges trust only it
 * (tls_ca), and TLS listeners the test owns (Node tls.createServer)
 * play phones registered over UDP with a transport=tls Contact.  The
 * name to prove is the Contact's host (peer.test, reached through
 * maddr=127.0.0.1) or its numeric address.  A peer whose certificate
 * is for another name, is signed by no trusted CA, proves the name
 * only in its subject CN or only through a wildcard is refused inside
 * the handshake: it never completes a TLS session, never reads a byte
 * of SIP, and the caller gets 500 at once.  A right-name certificate
 * signed by the CA gets the request, with SNI naming the host.  A
 * refused TCP connect is answered 500 at once too.
 */
const assert = require('node:assert/strict');
const net = require('node:net');
const tls = require('node:tls');
const { describe } = require('node:test');
const { rand, waitUntil, HOST, freePort } = require('./lib/cluster');
const { parse, buildResponse } = require('./lib/sip');
const { streamCluster } = require('./lib/ws');
const { testCa } = require('./lib/pki');

/* The test's CA and leaf certificates, made once with openssl. */
function makePki() {
	const { ca, leaf } = testCa();
	return {
		ca,
		right: leaf('right', 'peer.test', 'DNS:peer.test'),
		ip: leaf('ip', '127.0.0.1', 'IP:127.0.0.1'),
		/* The right name in the CN does not count next to a SAN. */
		wrong: leaf('wrong', 'peer.test', 'DNS:other.test'),
		cnOnly: leaf('cnonly', 'peer.test', null),
		wildcard: leaf('wild', '*.peer.test', 'DNS:*.peer.test'),
		selfSigned: leaf('self', 'peer.test', 'DNS:peer.test', true),
	};
}

describe('31 tls verify', () => {
	const pki = makePki();
	const c = streamCluster({
		name: '31-tls-verify', edges: 1, cores: 2, edge: { tls_ca: pki.ca },
	});

	/*
	 * A TLS phone the test owns: records completed handshakes (with the
	 * SNI they carried), handshakes that failed, and SIP requests, which
	 * it answers 200.
	 */
	async function tlsPeer(t, cred) {
		const port = await freePort();
		const p = { port, sessions: [], failed: [], requests: [], bytes: 0 };
		const srv = tls.createServer({ key: cred.key, cert: cred.cert }, (s) => {
			p.sessions.push({ servername: s.servername });
			let buf = Buffer.alloc(0);
			s.on('data', (d) => {
				p.bytes += d.length;
				buf = Buffer.concat([buf, d]);
				const end = buf.indexOf('\r\n\r\n');
				if (end < 0) return;
				const m = parse(buf);
				if (!m) return;
				buf = Buffer.alloc(0);
				p.requests.push(m);
				if (m.method !== 'ACK') s.write(buildResponse(m, 200, 'OK'));
			});
			s.on('error', () => {});
		});
		srv.on('tlsClientError', (err) => p.failed.push(err.code || err.message));
		await new Promise((r) => srv.listen(port, HOST, r));
		t.after(() => srv.close());
		c.addEvidence(`TLS peer on ${port}`, { toString: () => JSON.stringify(p.sessions.concat(p.failed)) });
		return p;
	}

	/* Registers user over UDP with a TLS Contact on port, host named or not. */
	async function register(user, port, host) {
		const ua = await c.ua(`reg-${user}`);
		const contact = host === HOST ? `<sip:${user}@${HOST}:${port};transport=tls>` :
			`<sip:${user}@${host}:${port};transport=tls;maddr=${HOST}>`;
		const r = await ua.send(c.edge(), {
			method: 'REGISTER', ruri: 'sip:a.test', from: `sip:${user}@a.test`, to: `sip:${user}@a.test`,
			contact, expires: 120,
		});
		assert.equal(r.status, 200, 'REGISTER');
	}

	async function message(user, body = 'hello over TLS') {
		const ua = await c.ua(`sender-${user}`);
		const t0 = Date.now();
		const r = await ua.send(c.edge(), {
			method: 'MESSAGE', ruri: `sip:${user}@a.test`, from: 'sip:sender@a.test', to: `sip:${user}@a.test`,
			body,
		}, 10000);
		return { status: r.status, ms: Date.now() - t0, res: r };
	}

	const edgeLog = () => c.edges[0].proc.text(c.testStart);

	c.test('a right-name certificate from the configured CA gets the request, with SNI', async (t) => {
		const p = await tlsPeer(t, pki.right);
		const user = `tlsok-${rand(3)}`;
		await register(user, p.port, 'peer.test');
		const r = await message(user);
		assert.equal(r.status, 200);
		assert.equal(p.requests.length, 1);
		assert.equal(p.requests[0].method, 'MESSAGE');
		assert.equal(p.sessions[0].servername, 'peer.test', 'SNI names the host');
		/* A second request reuses the verified connection. */
		assert.equal((await message(user, 'again')).status, 200);
		assert.equal(p.sessions.length, 1, 'one connection for both');
		assert.equal(p.requests.length, 2);
	});

	c.test('a numeric target needs an IP address SAN; no SNI is sent', async (t) => {
		const p = await tlsPeer(t, pki.ip);
		const user = `tlsip-${rand(3)}`;
		await register(user, p.port, HOST);
		assert.equal((await message(user)).status, 200);
		assert.equal(p.requests.length, 1);
		assert.equal(p.sessions[0].servername, false, 'no SNI for an address');
		/* The same IP-SAN certificate does not prove a host name. */
		const named = `tlsipname-${rand(3)}`;
		await register(named, p.port, 'peer.test');
		const r = await message(named);
		assert.equal(r.status, 500);
		assert.equal(p.requests.length, 1, 'nothing more reached the peer');
	});

	for (const [label, cred, why] of [
		['a certificate for another name (right name only in the CN)', 'wrong', 'hostname mismatch'],
		['a certificate with only a CN, no SAN', 'cnOnly', 'hostname mismatch'],
		['a wildcard certificate (RFC 5922 7.2)', 'wildcard', 'hostname mismatch'],
		['a self-signed right-name certificate', 'selfSigned', 'self-signed certificate'],
	]) {
		c.test(`${label} is refused at the handshake; the caller gets 500 at once`, async (t) => {
			const p = await tlsPeer(t, pki[cred]);
			const user = `tlsbad-${rand(3)}`;
			const host = cred === 'wildcard' ? 'a.peer.test' : 'peer.test';
			await register(user, p.port, host);
			const r = await message(user);
			assert.equal(r.status, 500, 'caller told at once');
			assert.ok(r.ms < 3000, `answered in ${r.ms} ms, not after a timer`);
			await waitUntil(() => p.failed.length > 0, 5000, 'the peer sees the handshake fail');
			assert.equal(p.sessions.length, 0, 'no TLS session completed');
			assert.equal(p.requests.length, 0, 'nothing SIP reached the peer');
			assert.equal(p.bytes, 0);
			await waitUntil(() => edgeLog().includes(`TLS peer refused for ${host}: ${why}`), 5000,
				`the edge logs why (${why})`);
			/* An INVITE fails the same way. */
			const ua = await c.ua('caller');
			const inv = await ua.send(c.edge(), {
				method: 'INVITE', ruri: `sip:${user}@a.test`, from: 'sip:caller@a.test', to: `sip:${user}@a.test`,
				contact: `<${ua.contactUri('caller')}>`,
			}, 10000);
			assert.equal(inv.status, 500, 'INVITE answered 500');
			assert.equal(p.requests.length, 0);
		});
	}

	c.test('a refused TCP connect is answered 500 at once', async () => {
		const port = await freePort();	/* nobody listens there */
		const user = `tcpdead-${rand(3)}`;
		const ua = await c.ua('reg-tcp');
		const reg = await ua.send(c.edge(), {
			method: 'REGISTER', ruri: 'sip:a.test', from: `sip:${user}@a.test`, to: `sip:${user}@a.test`,
			contact: `<sip:${user}@${HOST}:${port};transport=tcp>`, expires: 120,
		});
		assert.equal(reg.status, 200);
		const r = await message(user);
		assert.equal(r.status, 500);
		assert.ok(r.ms < 3000, `answered in ${r.ms} ms`);
		/* The edge goes on: a TCP listener there now gets the next one. */
		const got = [];
		const srv = net.createServer((s) => s.on('data', (d) => {
			const m = parse(d);
			if (m) { got.push(m); s.write(buildResponse(m, 200, 'OK')); }
		}));
		await new Promise((res) => srv.listen(port, HOST, res));
		try {
			assert.equal((await message(user)).status, 200);
			assert.equal(got.length, 1);
		} finally {
			srv.close();
		}
	});
});
