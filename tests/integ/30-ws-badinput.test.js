'use strict';
/*
 * 30 ws badinput: what a hostile or broken WebSocket client can send
 * must close only its own connection, with a reason, and the edge must
 * answer a REGISTER afterwards: frames that break RFC 6455 (unmasked,
 * reserved opcode or bits, a continuation first, bad UTF-8), a binary
 * message that is not SIP, a 1 MiB message, a half-open TLS handshake,
 * 1,000 connections opened and dropped, more connections from one
 * address than max_conns_per_ip.  Also what must work on that port:
 * binary SIP, CRLF keepalives and WebSocket pings, static files and
 * 404s over HTTP.
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');
const { describe } = require('node:test');
const { rand, waitUntil, HOST } = require('./lib/cluster');
const { streamCluster, SipJsUA, rawWs, wsClosed, within } = require('./lib/ws');

const CAP = 64;

describe('30 ws badinput', () => {
	const root = fs.mkdtempSync(path.join(os.tmpdir(), 'smi-www-'));
	fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>kk</title>hello kwikykonf\n');
	const c = streamCluster({
		name: '30-ws-badinput', edges: 1, cores: 2,
		edge: { http_root: root, max_conns_per_ip: CAP, max_msg: 65535 },
	});
	const wsPort = () => c.ports[1].ws;

	/* The edge still registers a fresh SIP.js user, and nothing died. */
	async function stillServes() {
		const u = await SipJsUA.open({ user: `probe-${rand(4)}`, server: c.wsUrl() });
		await u.stop();
		c.assertAlive();
	}

	/* A TCP socket past the WebSocket handshake (subprotocol sip). */
	function handshake(port = wsPort()) {
		return within(new Promise((res, rej) => {
			const s = net.connect(port, HOST);
			let buf = '';
			s.on('error', rej);
			s.on('connect', () => s.write(`GET / HTTP/1.1\r\nHost: ${HOST}:${port}\r\n` +
				'Upgrade: websocket\r\nConnection: Upgrade\r\n' +
				`Sec-WebSocket-Key: ${crypto.randomBytes(16).toString('base64')}\r\n` +
				'Sec-WebSocket-Version: 13\r\nSec-WebSocket-Protocol: sip\r\n\r\n'));
			const onData = (d) => {
				buf += d.toString('latin1');
				if (!buf.includes('\r\n\r\n')) return;
				s.off('data', onData);
				if (!/^HTTP\/1\.1 101/.test(buf)) rej(new Error(`no upgrade: ${buf.slice(0, 200)}`));
				/* Closed: a close frame (lws then waits for ours
				 * before it drops the socket) or the socket gone. */
				s.closedP = new Promise((r) => {
					s.once('close', r);
					s.on('data', (x) => { if (x[0] === 0x88) r(); });
				});
				res(s);
			};
			s.on('data', onData);
		}), 5000, 'WebSocket handshake');
	}

	/* One frame; o: {fin, rsv, mask, len (declared, default payload length)}. */
	function frame(opcode, payload, o = {}) {
		const p = Buffer.from(payload);
		const len = o.len !== undefined ? o.len : p.length;
		const mask = o.mask !== false;
		let h;
		if (len < 126) {
			h = Buffer.from([0, len]);
		} else if (len < 65536) {
			h = Buffer.alloc(4);
			h.writeUInt16BE(len, 2);
			h[1] = 126;
		} else {
			h = Buffer.alloc(10);
			h.writeBigUInt64BE(BigInt(len), 2);
			h[1] = 127;
		}
		h[0] = (o.fin === false ? 0 : 0x80) | ((o.rsv || 0) << 4) | opcode;
		if (!mask) return Buffer.concat([h, p]);
		h[1] |= 0x80;
		const key = crypto.randomBytes(4);
		const m = Buffer.from(p);
		for (let i = 0; i < m.length; i++) m[i] ^= key[i % 4];
		return Buffer.concat([h, key, m]);
	}

	c.test('RFC 6455 violations close the connection; the edge goes on', async () => {
		const cases = {
			'reserved opcode 3': frame(3, 'x'),
			'RSV1 set without an extension': frame(1, 'x', { rsv: 4 }),
			'continuation frame first': frame(0, 'x'),
			'invalid UTF-8 in a text frame': frame(1, Buffer.from([0x52, 0xc3, 0x28, 0xff])),
			'control frame longer than 125': frame(9, Buffer.alloc(200, 1)),
			'a 2^40-byte frame, 70 KB of it sent': frame(1, Buffer.alloc(70000, 0x61), { len: 2 ** 40 }),
		};
		for (const [what, bytes] of Object.entries(cases)) {
			const s = await handshake();
			s.on('error', () => {});
			s.write(bytes);
			await within(s.closedP, 5000, `edge closes on: ${what}`);
		}
		/* lws 4.1.6 does not enforce client masking (RFC 6455 5.1): an
		 * unmasked frame is read as it is and judged as SIP; it must
		 * not hurt the edge. */
		const u = await handshake();
		u.on('error', () => {});
		u.write(frame(1, 'OPTIONS', { mask: false }));
		u.write(frame(2, Buffer.alloc(50, 0xff), { mask: false }));
		await within(u.closedP, 5000, 'edge closes on an unmasked binary non-SIP frame');
		await stillServes();
	});

	c.test('a binary message that is not SIP, or a 1 MiB message, closes with a code', async () => {
		const a = await rawWs(c.wsUrl());
		a.send(crypto.randomBytes(300), { binary: true });
		assert.equal((await wsClosed(a)).code, 1003);
		const b = await rawWs(c.wsUrl(1, true));
		b.send('MESSAGE sip:x@a.test SIP/2.0\r\n' + 'X: ' + 'y'.repeat(1 << 20));
		assert.equal((await wsClosed(b)).code, 1009);
		await stillServes();
	});

	c.test('binary SIP is accepted; CRLF and WebSocket pings are answered', async () => {
		const s = await rawWs(c.wsUrl());
		const got = [];
		s.on('message', (d) => got.push(d.toString('latin1')));
		const user = `bin-${rand(3)}`;
		const reg = `REGISTER sip:a.test SIP/2.0\r\nVia: SIP/2.0/WS ${rand(6)}.invalid;branch=z9hG4bK${rand(8)}\r\n` +
			`Max-Forwards: 70\r\nFrom: <sip:${user}@a.test>;tag=${rand(4)}\r\nTo: <sip:${user}@a.test>\r\n` +
			`Call-ID: ${rand(10)}\r\nCSeq: 1 REGISTER\r\nContact: <sip:${user}@${rand(6)}.invalid;transport=ws>\r\n` +
			'Expires: 60\r\nContent-Length: 0\r\n\r\n';
		s.send(Buffer.from(reg), { binary: true });
		await waitUntil(() => got.some((m) => /^SIP\/2\.0 200/.test(m)), 5000, '200 to a binary REGISTER');
		s.send('\r\n\r\n');
		await waitUntil(() => got.includes('\r\n'), 5000, 'CRLF pong');
		const pong = new Promise((r) => s.once('pong', r));
		s.ping();
		await within(pong, 5000, 'WebSocket pong');
		s.close();
	});

	c.test('HTTP on the WebSocket port: static files, 404 for the rest', async () => {
		const r = await fetch(`http://${HOST}:${wsPort()}/index.html`);
		assert.equal(r.status, 200);
		assert.match(await r.text(), /hello kwikykonf/);
		const home = await fetch(`http://${HOST}:${wsPort()}/`);
		assert.equal(home.status, 200);
		const miss = await fetch(`http://${HOST}:${wsPort()}/no/such/file.js`);
		assert.equal(miss.status, 404);
		const up = await fetch(`http://${HOST}:${wsPort()}/../../etc/passwd`);
		assert.notEqual(up.status, 200);
	});

	c.test('a half-open TLS handshake on WSS stalls nobody and is dropped', async () => {
		const half = net.connect(c.ports[1].wss, HOST);
		let closed = false;
		half.on('close', () => { closed = true; });
		half.on('error', () => {});
		await new Promise((r) => half.once('connect', r));
		half.write(Buffer.from([0x16, 0x03, 0x01, 0x02, 0x00]));
		const t0 = Date.now();
		const u = await SipJsUA.open({ user: `during-${rand(3)}`, server: c.wsUrl(1, true) });
		await u.stop();
		assert.ok(Date.now() - t0 < 3000, 'WSS served while a handshake hangs');
		await waitUntil(() => closed, 16000, 'the half-open handshake is dropped', 200);
	});

	c.test('1,000 connections opened and dropped leave the edge serving', async () => {
		let n = 0;
		const kinds = [
			/* connect, then go */
			() => new Promise((res) => {
				const s = net.connect(wsPort(), HOST, () => { s.destroy(); res(); });
				s.on('error', res);
			}),
			/* half an HTTP request */
			() => new Promise((res) => {
				const s = net.connect(wsPort(), HOST, () => { s.write('GET / HTTP/1.1\r\nHost: x\r\n'); setTimeout(() => { s.destroy(); res(); }, 5); });
				s.on('error', res);
			}),
			/* a full WebSocket, dropped without a close frame */
			() => handshake().then((s) => { s.on('error', () => {}); s.destroy(); }).catch(() => {}),
			/* a TLS client gone after its ClientHello */
			() => new Promise((res) => {
				const s = net.connect(c.ports[1].wss, HOST, () => { s.write(Buffer.from([0x16, 3, 1, 0, 5, 1, 0, 0, 1, 0])); s.destroy(); res(); });
				s.on('error', res);
			}),
		];
		while (n < 1000) {
			const batch = [];
			for (let i = 0; i < 40 && n < 1000; i++, n++) batch.push(kinds[n % kinds.length]());
			await Promise.all(batch);
		}
		await stillServes();
	});

	c.test(`more than max_conns_per_ip (${CAP}) connections from one address are refused`, async () => {
		const socks = [];
		let refused = 0;
		try {
			for (let i = 0; i < CAP + 10; i++) {
				const s = net.connect(wsPort(), HOST);
				s.on('error', () => {});
				s.on('close', () => { refused++; });
				socks.push(s);
				await new Promise((r) => { s.once('connect', r); s.once('close', r); });
			}
			await waitUntil(() => refused >= 10, 5000, 'the edge closes those past the cap');
		} finally {
			for (const s of socks) s.destroy();
		}
		/* Once they are gone the address may connect again. */
		await waitUntil(async () => {
			try { await stillServes(); return true; } catch { return false; }
		}, 5000, 'a new client after the flood');
	});
});
