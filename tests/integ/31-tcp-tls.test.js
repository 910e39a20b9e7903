'use strict';
/*
 * 31 tcp tls: SIP over TCP and TLS (RFC 3261 18.3) through the edge.
 * sipp speaks TCP (Debian's sipp has no TLS), Node's tls module plays
 * the TLS phone.  Covers: REGISTER and calls over TCP in both
 * directions, a callee reached down the very connection it registered
 * on, TLS register/MESSAGE/call, the edge opening an outbound TCP
 * connection to a contact with transport=tcp, Content-Length framing
 * on a real socket (several messages per write, one byte per write,
 * CRLF keepalives), and broken streams (no Content-Length, 1 MiB, a
 * half-open TLS handshake, idle connections) that must close only
 * their own connection.
 */
const assert = require('node:assert/strict');
const net = require('node:net');
const { describe } = require('node:test');
const { rand, waitUntil, HOST, freePort } = require('./lib/cluster');
const { runSipp, startUas, assertOk } = require('./lib/sipp');
const { parse, buildResponse } = require('./lib/sip');
const { streamCluster, StreamUA, SDP } = require('./lib/ws');

describe('31 tcp tls', () => {
	const c = streamCluster({
		name: '31-tcp-tls', edges: 1, cores: 2, proxy: { t1_ms: 100, t2_ms: 400 },
		edge: { idle_timeout_s: 5 },
	});
	const clients = [];

	async function stream(secure, label) {
		const u = await StreamUA.open({ ...(secure ? c.tlsDest() : c.tcpDest()), secure });
		clients.push(u);
		c.addEvidence(`${u.transport} client ${label}`, { toString: () => u.transcript.join('\n') });
		return u;
	}

	function sTest(name, fn) {
		c.test(name, async (t) => {
			try {
				await fn(t);
			} finally {
				for (const u of clients.splice(0)) u.close();
			}
		});
	}

	/* REGISTERs user@a.test with this connection as Contact. */
	async function register(u, user, expires = 300) {
		const r = await u.send({
			method: 'REGISTER', ruri: 'sip:a.test', from: `sip:${user}@a.test`, to: `sip:${user}@a.test`,
			user, expires,
		});
		assert.equal(r.status, 200, `REGISTER over ${u.transport}`);
		return r;
	}

	/* Answers the next INVITE 180 + 200, then waits for its ACK. */
	async function answer(u) {
		const inv = await u.waitRequest((m) => m.method === 'INVITE', 5000, 'INVITE');
		u.reply(inv, 180, 'Ringing');
		u.reply(inv, 200, 'OK', { body: SDP('callee') });
		await u.waitRequest((m) => m.method === 'ACK', 5000, 'ACK');
		return inv;
	}

	sTest('sipp registers over TCP', async () => {
		const r = await runSipp(c, {
			scenario: 'register.xml', dest: c.tcpDest(), args: ['-t', 't1'],
			keys: { sm_user: `tcp-${rand(3)}`, sm_domain: 'a.test', sm_expires: 60 },
		});
		assertOk(r, 'REGISTER over TCP');
	});

	sTest('a sipp TCP caller calls a sipp UDP callee (transport change, BYE from the caller)', async () => {
		const u = `udpcallee-${rand(3)}`;
		const uas = await startUas(c, { user: u, scenario: 'uas_call.xml', calls: 1 });
		const r = await runSipp(c, {
			scenario: 'uac_call.xml', dest: c.tcpDest(), service: u, args: ['-t', 't1'],
			keys: { sm_domain: 'a.test' },
		});
		assertOk(r, 'sipp TCP caller');
		assertOk(await uas.wait(10000), 'sipp UDP callee');
	});

	sTest('a sipp UDP caller reaches a TCP callee down the connection it registered on', async () => {
		const callee = await stream(false, 'callee');
		const user = `tcpcallee-${rand(3)}`;
		await register(callee, user);
		const sipp = runSipp(c, {
			scenario: 'uac_call.xml', dest: c.edge(), service: user, keys: { sm_domain: 'a.test' },
		});
		const inv = await answer(callee);
		const bye = await callee.waitRequest((m) => m.method === 'BYE', 5000, 'BYE');
		callee.write(buildResponse(bye, 200, 'OK'));
		assertOk(await sipp, 'sipp caller');
		assert.ok(inv.list('record-route').length >= 2, 'double Record-Route across UDP and TCP');
	});

	sTest('TLS: REGISTER, MESSAGE in from sipp, MESSAGE out to sipp', async () => {
		const t = await stream(true, 'tls');
		const user = `tls-${rand(3)}`;
		await register(t, user);
		const sipp = runSipp(c, {
			scenario: 'uac_message.xml', dest: c.edge(), service: user, keys: { sm_domain: 'a.test' },
		});
		const m = await t.waitRequest((x) => x.method === 'MESSAGE', 5000, 'MESSAGE over TLS');
		t.write(buildResponse(m, 200, 'OK'));
		assertOk(await sipp, 'sipp sender');
		const u = `sippm-${rand(3)}`;
		const uas = await startUas(c, { user: u, scenario: 'uas_message.xml', calls: 1 });
		const out = await t.send({
			method: 'MESSAGE', ruri: `sip:${u}@a.test`, from: `sip:${user}@a.test`, to: `sip:${u}@a.test`,
			body: 'hello sipmesh over TLS',
		});
		assert.equal(out.status, 200);
		assertOk(await uas.wait(10000), 'sipp receiver');
	});

	sTest('TLS: a call to a sipp UDP callee, INVITE/200/ACK/BYE along the route set', async () => {
		const t = await stream(true, 'tls caller');
		const u = `tlscallee-${rand(3)}`;
		const uas = await startUas(c, { user: u, scenario: 'uas_call.xml', calls: 1 });
		const callId = `${rand(10)}@tls.test`;
		const fromTag = rand(6);
		const base = { from: 'sip:tlscaller@a.test', to: `sip:${u}@a.test`, fromTag, callId, user: 'tlscaller' };
		const ok = await t.send({ ...base, method: 'INVITE', ruri: `sip:${u}@a.test`, body: SDP('tls'),
			contentType: 'application/sdp' }, 10000);
		assert.equal(ok.status, 200);
		const toTag = /;\s*tag=([^;>\s]+)/.exec(ok.get('to'))[1];
		const target = /<([^>]+)>/.exec(ok.get('contact'))[1];
		const routes = ok.list('record-route').reverse().map((r) => ['Route', r]);
		assert.ok(routes.length >= 1, 'Record-Route in the 200');
		t.request({ ...base, toTag, method: 'ACK', ruri: target, cseq: 1, headers: routes });
		const bye = await t.send({ ...base, toTag, method: 'BYE', ruri: target, cseq: 2, headers: routes });
		assert.equal(bye.status, 200);
		assertOk(await uas.wait(10000), 'sipp callee');
	});

	sTest('the edge opens an outbound TCP connection to a transport=tcp contact', async () => {
		/* A phone listening on TCP that registered over UDP. */
		const port = await freePort();
		const got = [];
		const srv = net.createServer((s) => {
			let buf = '';
			s.on('data', (d) => {
				buf += d.toString('latin1');
				const end = buf.indexOf('\r\n\r\n');
				if (end < 0) return;
				const m = parse(Buffer.from(buf, 'latin1'));
				got.push(m);
				s.write(buildResponse(m, 200, 'OK'));
				buf = '';
			});
		});
		await new Promise((r) => srv.listen(port, HOST, r));
		try {
			const user = `tcpout-${rand(3)}`;
			const ua = await c.ua('registrar-udp');
			const reg = await ua.send(c.edge(), {
				method: 'REGISTER', ruri: 'sip:a.test', from: `sip:${user}@a.test`, to: `sip:${user}@a.test`,
				contact: `<sip:${user}@${HOST}:${port};transport=tcp>`, expires: 120,
			});
			assert.equal(reg.status, 200);
			const r = await runSipp(c, {
				scenario: 'uac_message.xml', dest: c.edge(), service: user, keys: { sm_domain: 'a.test' },
			});
			assertOk(r, 'sipp sender');
			assert.equal(got.length, 1);
			assert.match(got[0].topVia.raw, /^SIP\/2\.0\/TCP /, 'the proxy Via says TCP');
		} finally {
			srv.close();
		}
	});

	sTest('framing: messages split byte by byte, several in one write, CRLF keepalives', async () => {
		const u = await stream(false, 'framing');
		const { host, port } = u.local;
		const opt = (n) => `OPTIONS sip:${c.edge().addr} SIP/2.0\r\n` +
			`Via: SIP/2.0/TCP ${host}:${port};branch=z9hG4bK-f${n}-${rand(4)};rport\r\n` +
			`Max-Forwards: 70\r\nFrom: <sip:f@a.test>;tag=${n}\r\nTo: <sip:${c.edge().addr}>\r\n` +
			`Call-ID: f${n}-${rand(6)}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`;
		const one = Buffer.from(opt(1));
		for (const b of one) u.write(Buffer.from([b]));
		await u.waitFor(() => u.responses.length === 1, 5000, 'reply to a byte-by-byte request');
		u.write(`\r\n\r\n${opt(2)}\r\n\r\n${opt(3)}${opt(4)}`);
		await u.waitFor(() => u.responses.length === 4, 5000, 'replies to three requests in one write');
		assert.deepEqual(u.responses.map((r) => r.status), [200, 200, 200, 200]);
		assert.ok(u.pongs >= 2, `CRLF pongs for the CRLFCRLF pings (${u.pongs})`);
	});

	sTest('a stream without Content-Length or with 1 MiB is closed; the edge goes on', async () => {
		const a = await stream(false, 'no length');
		a.write('OPTIONS sip:x SIP/2.0\r\nVia: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK1\r\n' +
			'From: <sip:a@a.test>;tag=1\r\nTo: <sip:b@a.test>\r\nCall-ID: nolen\r\nCSeq: 1 OPTIONS\r\n\r\n');
		await a.waitFor(() => a.closed, 5000, 'edge closes the connection');
		const b = await stream(true, 'huge');
		b.write(`MESSAGE sip:x@a.test SIP/2.0\r\nContent-Length: ${1 << 20}\r\n\r\n`);
		b.write(Buffer.alloc(1 << 20, 0x61));
		await b.waitFor(() => b.closed, 5000, 'edge closes the TLS connection');
		const d = await stream(false, 'after');
		await register(d, `after-${rand(3)}`);
	});

	sTest('a half-open TLS handshake stalls nothing and is dropped; idle connections time out', async () => {
		const half = net.connect(c.tlsDest());
		let halfClosed = false;
		half.on('close', () => { halfClosed = true; });
		half.on('error', () => {});
		await new Promise((r) => half.once('connect', r));
		half.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00]));	/* a ClientHello's start */
		const idle = await stream(false, 'idle');
		/* Meanwhile TLS and TCP clients are served. */
		const t = await stream(true, 'tls during');
		await register(t, `during-${rand(3)}`);
		const ua = await c.ua('udp during');
		const r = await ua.send(c.edge(), {
			method: 'OPTIONS', ruri: `sip:${c.edge().addr}`, from: 'sip:p@a.test', to: `sip:${c.edge().addr}`,
		});
		assert.equal(r.status, 200);
		/* The handshake deadline is 10 s, idle_timeout_s is 5 here. */
		await waitUntil(() => halfClosed && idle.closed, 16000, 'edge drops the half-open and idle ones', 200);
		half.destroy();
	});
});
