'use strict';
/*
 * 30 ws binary: a SIP message that is not UTF-8 reaches WebSocket
 * clients in a binary frame (RFC 7118 5 allows text or binary), not in
 * a text frame the client must refuse (RFC 6455 8.1: it fails the
 * connection).  The attack of issue 9: one MESSAGE with a 0xFF byte
 * sent to a room's shared address cut off every browser in the room.
 * Here two SIP.js agents and one raw `ws` client register the same
 * address; a MESSAGE whose body holds 0xFF/0xFE bytes comes in over
 * UDP; all three must stay connected, the raw client must see a binary
 * frame with the bytes intact, and a following MESSAGE must reach all
 * three as text.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { rand } = require('./lib/cluster');
const { parse, buildRequest, buildResponse, newBranch } = require('./lib/sip');
const { streamCluster, SipJsUA, rawWs, within } = require('./lib/ws');

describe('30 ws binary', () => {
	const c = streamCluster({ name: '30-ws-binary', edges: 1, cores: 2 });

	/* A raw WebSocket client registered as aor; keeps every frame. */
	async function rawClient(aor) {
		const s = await rawWs(c.wsUrl());
		const host = `${rand(8)}.invalid`;
		const frames = [];
		const waiters = new Set();
		let closed = null;
		s.on('close', (code) => { closed = code; for (const w of waiters) w(); });
		s.on('message', (data, isBinary) => {
			const m = parse(Buffer.from(data));
			frames.push({ isBinary, data: Buffer.from(data), m });
			if (m && m.method === 'MESSAGE') s.send(buildResponse(m, 200, 'OK').toString('latin1'));
			for (const w of waiters) w();
		});
		const r = {
			s, frames,
			get closed() { return closed; },
			waitFor(cond, ms, what) {
				if (cond()) return Promise.resolve();
				let w;
				return within(new Promise((res) => {
					w = () => { if (cond()) res(); };
					waiters.add(w);
				}), ms, `raw ws: ${what}`).finally(() => waiters.delete(w));
			},
		};
		const reg = buildRequest({
			method: 'REGISTER', ruri: 'sip:ws.test', via: host, branch: newBranch(),
			from: aor, fromTag: rand(4), to: aor, callId: `${rand(10)}@raw`, cseq: 1,
			contact: `<sip:raw@${host};transport=ws>`, expires: 300,
			replace: { via: `SIP/2.0/WS ${host};branch=${newBranch()}` },
		});
		s.send(reg.toString('latin1'));
		await r.waitFor(() => frames.some((f) => f.m && f.m.status === 200), 5000, 'REGISTER 200');
		return r;
	}

	c.test('a non-UTF-8 MESSAGE to a shared address keeps every WebSocket open', async () => {
		const room = `conf.${rand(6)}`;
		const aor = `sip:${room}@ws.test`;
		const a = await SipJsUA.open({ user: room, server: c.wsUrl() });
		const b = await SipJsUA.open({ user: room, server: c.wsUrl() });
		const raw = await rawClient(aor);
		try {
			c.addEvidence('SIP.js a', { toString: () => a.log.join('\n') });
			c.addEvidence('SIP.js b', { toString: () => b.log.join('\n') });
			const ua = await c.ua('sender');
			const body = Buffer.concat([Buffer.from('hi '), Buffer.from([0xff, 0xfe, 0xc0, 0xaf]),
				Buffer.from(' there')]);
			const r = await ua.send(c.edge(), {
				method: 'MESSAGE', ruri: aor, from: 'sip:sender@ws.test', to: aor, body,
			});
			assert.equal(r.status, 200, 'MESSAGE with 0xFF answered');
			/* SIP.js decodes a binary frame with TextDecoder: each bad
			 * byte becomes U+FFFD, the rest of the body is intact. */
			for (const u of [a, b]) {
				await u.waitFor(() => u.messages.length >= 1, 5000, 'the non-UTF-8 MESSAGE');
				assert.match(u.messages[0].body, /^hi \ufffd+ there$/, `${u.user} body`);
			}
			await raw.waitFor(() => raw.frames.some((f) => f.m && f.m.method === 'MESSAGE'), 5000,
				'the non-UTF-8 MESSAGE');
			const f = raw.frames.find((x) => x.m && x.m.method === 'MESSAGE');
			assert.equal(f.isBinary, true, 'sent in a binary frame');
			assert.ok(f.data.subarray(f.data.length - body.length).equals(body), 'body bytes intact');

			for (const u of [a, b])
				assert.equal(u.socket.readyState, 1, `${u.user}'s WebSocket still open`);
			assert.equal(raw.closed, null, 'raw WebSocket still open');

			const r2 = await ua.send(c.edge(), {
				method: 'MESSAGE', ruri: aor, from: 'sip:sender@ws.test', to: aor, body: 'after gr\u00fc\u00df',
			});
			assert.equal(r2.status, 200);
			for (const u of [a, b]) await u.waitMessage('after gr\u00fc\u00df');
			await raw.waitFor(() => raw.frames.filter((x) => x.m && x.m.method === 'MESSAGE').length === 2,
				5000, 'the second MESSAGE');
			const f2 = raw.frames.filter((x) => x.m && x.m.method === 'MESSAGE')[1];
			assert.equal(f2.isBinary, false, 'a UTF-8 message still goes as text');
		} finally {
			raw.s.close();
			await a.stop();
			await b.stop();
		}
	});
});
