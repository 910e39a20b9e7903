'use strict';
/*
 * 48 link auth: edges and cores bound at tcp:// endpoints, as on
 * several hosts, with a cluster secret.  Registrations and messages
 * cross the authenticated links both ways; an envelope injected into a
 * core's endpoint by anybody who can reach it (here: a TCP connection
 * sending a well-formed chunk, as a link frames it, whose envelope
 * carries a REGISTER) creates no binding, is counted, and the core
 * closes that connection.  Before commit "link: envelopes between hosts
 * carry a MAC" the core took that envelope as if the edge had sent it:
 * the binding appeared.  A peer that speaks nanomsg's SP protocol (a
 * host of before the links left nanomsg) is refused the same way.
 */
const assert = require('node:assert/strict');
const net = require('node:net');
const crypto = require('node:crypto');
const { describe } = require('node:test');
const { cluster, rand, HOST } = require('./lib/cluster');
const { runSipp, startUas, assertOk } = require('./lib/sipp');
const { Registration, assertContacts } = require('./lib/flows');
const { waitUntil, within } = require('./lib/wait');

/*
 * A TCP connection to a link endpoint (tcp://host:port), as anybody on
 * the network can open.  send(buf) writes buf as one chunk (a 4-byte
 * big-endian length, then one frame: its length and the envelope), or
 * raw bytes with {raw: true}; closed resolves when the other side
 * closes.
 */
function linkConn(url) {
	const m = /^tcp:\/\/([^:]+):(\d+)$/.exec(url);
	return new Promise((resolve, reject) => {
		const s = net.connect(Number(m[2]), m[1]);
		const closed = new Promise((res) => s.on('close', res));
		s.on('error', () => {});
		s.once('error', reject);
		s.on('connect', () => resolve({
			send(buf, { raw = false } = {}) {
				if (raw) return s.write(buf);
				const h = Buffer.alloc(8);
				h.writeUInt32BE(buf.length + 4, 0);
				h.writeUInt32BE(buf.length, 4);
				return s.write(Buffer.concat([h, buf]));
			},
			closed,
			close() { s.destroy(); },
		}));
	});
}

/* lib/env.h, version 2: a SIP message as edge 1 would hand it over,
 * received over UDP from 127.0.0.1:port. */
function envelope(sip, port, edgePort) {
	const h = Buffer.alloc(64);
	h.write('SM', 0, 'latin1');
	h[2] = 2;			/* version */
	h[3] = 1;			/* ENV_SIP */
	h[4] = 1;			/* ENV_UDP */
	h.writeUInt16BE(1, 6);		/* edge 1; conn id 0 at 8 */
	h[16] = 4;			/* src: IPv4 127.0.0.1:port */
	h.writeUInt16BE(port, 18);
	Buffer.from([127, 0, 0, 1]).copy(h, 20);
	h[36] = 4;			/* local: the edge's UDP listener */
	h.writeUInt16BE(edgePort, 38);
	Buffer.from([127, 0, 0, 1]).copy(h, 40);
	const body = Buffer.from(sip, 'latin1');
	h.writeUInt32BE(body.length, 60);
	return Buffer.concat([h, body]);
}

describe('48 link auth', () => {
	const secret = crypto.randomBytes(24).toString('hex');
	const c = cluster({
		name: '48-link-auth', edges: 1, cores: 2, tcpLinks: true, clusterKeys: { secret },
	});

	c.test('over tcp:// links with the secret, REGISTER, query and MESSAGE work', async () => {
		const u = `lnk-${rand(3)}`;
		const reg = new Registration(await c.ua('lnk'), c.edge(), u);
		await reg.register(600);
		const q = await new Registration(await c.ua('lnk-q'), c.edge(), u).send({ contacts: [] });
		assert.equal(q.status, 200);
		assertContacts(q, [reg.contact], 'query over tcp links');
		const v = `lnkm-${rand(3)}`;
		const uas = await startUas(c, { user: v, scenario: 'uas_message.xml', calls: 1 });
		const uac = await runSipp(c, {
			scenario: 'uac_message.xml', dest: c.edge(), service: v, keys: { sm_domain: 'a.test' },
		});
		assertOk(uac, 'sender over tcp links');
		assertOk(await uas.wait(10000), 'callee over tcp links');
		assert.equal(await c.coreStat('envelopes-forged'), 0);
	});

	c.test('an envelope injected into each core\'s endpoint registers nobody and is counted', async () => {
		const u = `forged-${rand(3)}`;
		const callId = `forged-${rand(8)}`;
		const sip = [
			`REGISTER sip:a.test SIP/2.0`,
			`Via: SIP/2.0/UDP 127.0.0.1:5999;branch=z9hG4bK${rand(8)};rport`,
			`Max-Forwards: 70`,
			`From: <sip:${u}@a.test>;tag=${rand(4)}`,
			`To: <sip:${u}@a.test>`,
			`Call-ID: ${callId}`,
			`CSeq: 1 REGISTER`,
			`Contact: <sip:${u}@127.0.0.1:5999>`,
			`Expires: 600`,
			`Content-Length: 0`, '', ''].join('\r\n');
		const before = await c.coreStat('envelopes-forged');
		const cores = c.linkUrls.filter((k) => k.kind === 'core');
		for (const k of cores) {
			const p = await linkConn(k.url);
			p.send(envelope(sip, 5999, c.edge().port));
			c.addEvidence(`forged envelope sent to core ${k.id} at ${k.url}`, sip);
			await waitUntil(async () => (await c.coreStat('envelopes-forged')) > before + k.id - 1,
				5000, `core ${k.id} to count the forged envelope`);
			await within(p.closed, 5000, `core ${k.id} to close the forger's connection`);
		}
		const q = await new Registration(await c.ua('forged-q'), c.edge(), u).send({ contacts: [] });
		assert.equal(q.status, 200);
		assertContacts(q, [], 'the AOR the forged envelopes named');
	});

	c.test('a peer speaking nanomsg\'s SP protocol (a host of an older version) is refused and counted', async () => {
		const before = await c.coreStat('envelopes-forged');
		const k = c.linkUrls.find((x) => x.kind === 'core');
		const p = await linkConn(k.url);
		/* The SP greeting: "\0SP\0", protocol 0x0050 (PUSH), 0. */
		p.send(Buffer.from([0, 0x53, 0x50, 0, 0, 0x50, 0, 0]), { raw: true });
		await within(p.closed, 5000, 'the core to close the SP peer\'s connection');
		await waitUntil(async () => (await c.coreStat('envelopes-forged')) > before, 5000,
			'the core to count the SP greeting');
		/* The cluster's own links were not disturbed. */
		const u = `lnk2-${rand(3)}`;
		const reg = new Registration(await c.ua('lnk2'), c.edge(), u);
		await reg.register(600);
	});
});
