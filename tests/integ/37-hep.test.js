'use strict';
/*
 * 37 hep: HEP v3 capture (Homer) of what an edge receives and sends,
 * read by a collector of the test's own (a UDP socket decoding HEP3
 * chunks).  A UDP client's REGISTER and its 200, a MESSAGE from a UDP
 * sender to a WSS client and the WSS client's 200: each appears with
 * the right direction, addresses, ports, IP protocol (17 UDP, 6 for
 * the stream transports), Call-ID as correlation id, capture agent id
 * and auth key, and the SIP text - for WSS the plaintext inside TLS
 * and the WebSocket frame.  A stateless 400 the edge itself answers is
 * captured too.
 */
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const { describe, before, after } = require('node:test');
const { rand, waitUntil, HOST } = require('./lib/cluster');
const { Registration, message } = require('./lib/flows');
const { streamCluster, WsUA } = require('./lib/ws');

/* Decodes one HEP3 packet: { fields by name, payload }, or throws. */
function decodeHep(buf) {
	assert.equal(buf.toString('latin1', 0, 4), 'HEP3', 'HEP3 magic');
	assert.equal(buf.readUInt16BE(4), buf.length, 'HEP3 total length');
	const f = {};
	for (let o = 6; o < buf.length;) {
		const type = buf.readUInt16BE(o + 2);
		const len = buf.readUInt16BE(o + 4);
		assert.ok(len >= 6 && o + len <= buf.length, 'chunk inside the packet');
		const v = buf.subarray(o + 6, o + len);
		switch (type) {
		case 1: f.family = v[0]; break;
		case 2: f.proto = v[0]; break;
		case 3: f.src = [...v].join('.'); break;
		case 4: f.dst = [...v].join('.'); break;
		case 7: f.sport = v.readUInt16BE(0); break;
		case 8: f.dport = v.readUInt16BE(0); break;
		case 9: f.sec = v.readUInt32BE(0); break;
		case 10: f.usec = v.readUInt32BE(0); break;
		case 11: f.ptype = v[0]; break;
		case 12: f.agent = v.readUInt32BE(0); break;
		case 14: f.auth = v.toString(); break;
		case 15: f.payload = v.toString('latin1'); break;
		case 17: f.corr = v.toString(); break;
		default: break;
		}
		o += len;
	}
	return f;
}

/* A HEP collector on a free loopback port; .packets decoded. */
function collector() {
	const sock = dgram.createSocket('udp4');
	const col = { packets: [], bad: [], sock };
	sock.on('message', (m) => {
		try {
			col.packets.push(decodeHep(m));
		} catch (e) {
			col.bad.push(e.message);
		}
	});
	col.ready = new Promise((res) => sock.bind(0, HOST, () => { col.port = sock.address().port; res(); }));
	return col;
}

describe('37 hep', () => {
	const col = collector();
	/* Ahead of the cluster's start: the collector's port goes in the
	 * config it writes. */
	before(async () => {
		await col.ready;
		c.opts.edge.hep = `${HOST}:${col.port}`;
	});
	after(() => col.sock.close());
	const c = streamCluster({
		name: '37-hep', edges: 1, cores: 1, edge: { hep_id: 4242, hep_password: 'homer-secret' },
	});

	/* The captured packets pred accepts, once there is one (3 s). */
	async function captured(pred, what) {
		let got = [];
		await waitUntil(() => {
			got = col.packets.filter(pred);
			return got.length > 0;
		}, 3000, `HEP capture of ${what}`);
		return got;
	}

	c.test('UDP REGISTER and its 200 are captured with addresses, Call-ID, agent id and key', async () => {
		const ua = await c.ua('hep-udp');
		const user = `hu-${rand(4)}`;
		const r = await new Registration(ua, c.edge(), user).register(300);
		assert.equal(r.status, 200);
		const callId = r.get('call-id');
		const ed = c.edge();
		const [inb] = await captured((p) => p.corr === callId && /^REGISTER /.test(p.payload), 'the REGISTER');
		assert.deepEqual({ family: inb.family, proto: inb.proto, ptype: inb.ptype, agent: inb.agent, auth: inb.auth },
			{ family: 2, proto: 17, ptype: 1, agent: 4242, auth: 'homer-secret' });
		assert.equal(inb.src, ua.host);
		assert.equal(inb.sport, ua.port, 'from the client');
		assert.equal(inb.dst, ed.host);
		assert.equal(inb.dport, ed.port, 'to the edge');
		assert.ok(Math.abs(inb.sec - Date.now() / 1000) < 10, 'a current timestamp');
		assert.ok(inb.usec < 1000000);
		assert.match(inb.payload, new RegExp(`^REGISTER sip:a\\.test SIP/2\\.0\\r\\n[^]*Call-ID: ${callId.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}`, 'i'));
		const [out] = await captured((p) => p.corr === callId && /^SIP\/2\.0 200 /.test(p.payload), 'its 200');
		assert.equal(out.src, ed.host);
		assert.equal(out.sport, ed.port, 'from the edge');
		assert.equal(out.dst, ua.host);
		assert.equal(out.dport, ua.port, 'to the client');
		assert.match(out.payload, /\r\nCSeq: \d+ REGISTER\r\n/i);
	});

	c.test('a MESSAGE to a WSS client is captured in plaintext both ways (IP protocol 6)', async () => {
		const user = `hw-${rand(4)}`;
		const w = await WsUA.open({ url: c.wsUrl(1, true) });
		try {
			const reg = await w.send({
				method: 'REGISTER', ruri: 'sip:a.test', from: `sip:${user}@a.test`, to: `sip:${user}@a.test`,
				user, expires: 300,
			});
			assert.equal(reg.status, 200);
			const sender = await c.ua('hep-sender');
			const body = `through TLS and WebSocket ${rand(4)}`;
			const out = message(sender, c.edge(), user, 'a.test', { body });
			const m = await w.waitRequest((x) => x.method === 'MESSAGE', 5000, 'MESSAGE');
			w.reply(m, 200, 'OK');
			assert.equal((await out).status, 200);
			const callId = m.get('call-id');
			const [toWss] = await captured((p) => p.corr === callId && /^MESSAGE /.test(p.payload) &&
				p.dport === w.local.port, 'the MESSAGE sent down the WSS connection');
			assert.equal(toWss.proto, 6);
			assert.equal(toWss.sport, c.ports[1].wss, 'from the WSS port');
			assert.ok(toWss.payload.endsWith(body), 'the plaintext body');
			const [fromWss] = await captured((p) => p.corr === callId && /^SIP\/2\.0 200 /.test(p.payload) &&
				p.sport === w.local.port, 'the 200 from the WSS client');
			assert.equal(fromWss.proto, 6);
			assert.equal(fromWss.dport, c.ports[1].wss);
			/* The UDP legs of the same Call-ID: the sender's MESSAGE
			 * in, its 200 out. */
			const legs = col.packets.filter((p) => p.corr === callId && p.proto === 17);
			assert.ok(legs.some((p) => /^MESSAGE /.test(p.payload) && p.sport === sender.port));
			await captured((p) => p.corr === callId && p.proto === 17 && /^SIP\/2\.0 200 /.test(p.payload) &&
				p.dport === sender.port, 'the 200 to the UDP sender');
		} finally {
			w.close();
		}
	});

	c.test('a malformed request and the 400 the edge answers are both captured', async () => {
		const ua = await c.ua('hep-bad');
		const callId = `bad-${rand(6)}@hep`;
		const bad = `OPTIONS sip:a.test SIP/2.0\r\nVia: SIP/2.0/UDP ${ua.host}:${ua.port};branch=z9hG4bK-${rand(6)};rport\r\n` +
			`From: <sip:x@a.test>;tag=1\r\nTo: <sip:a.test>\r\nCall-ID: ${callId}\r\nCSeq: not-a-number\r\n` +
			'Content-Length: 0\r\n\r\n';
		await ua.sendRaw(c.edge(), bad);
		await captured((p) => p.corr === callId && /^OPTIONS /.test(p.payload), 'the malformed request');
		const [r] = await captured((p) => p.corr === callId && /^SIP\/2\.0 400 /.test(p.payload), 'the 400');
		assert.equal(r.dport, ua.port);
		assert.deepEqual(col.bad, [], 'every packet decodes');
	});
});
