'use strict';
/*
 * 35 edge drain: SIGUSR2 drains an edge before a restart.  Two edges
 * share the WebSocket port (reuseport); WebSocket clients from several
 * 127.0.0.x sources are spread over both by the kernel.  Drained, edge
 * 1 takes no new connection (every one opened during the drain lands
 * on edge 2), closes each of its clients, a few at a time over drain_s
 * rather than all at once, and leaves edge 2's
 * clients alone; the clients reconnect, land on edge 2, register and
 * receive MESSAGEs there.
 */
const assert = require('node:assert/strict');
const { describe, before } = require('node:test');
const { cluster, freePort, rand, waitUntil, HOST } = require('./lib/cluster');
const { WsUA } = require('./lib/ws');
const procnet = require('./lib/procnet');

const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];
const DOMAIN = 'drain.test';
const DRAIN_S = 2;

describe('35 edge drain', () => {
	const ports = {};
	const edge = { reuseport: 'yes', drain_s: DRAIN_S };
	before(async () => { ports.ws = await freePort(); });
	const c = cluster({
		name: '35-edge-drain', edges: 2, cores: 1, sharePorts: true, edge,
		edgeKeys: () => ({ ws: `${HOST}:${ports.ws}` }),
	});
	const open = [];

	/* A WebSocket client from src, registered as user; .edge is the
	 * edge holding its server end (found in /proc). */
	async function client(user, src) {
		const u = await WsUA.open({ url: `ws://${HOST}:${ports.ws}`, localAddress: src });
		open.push(u);
		u.user = user;
		u.src = src;
		const pids = Object.fromEntries(c.edges.map((e) => [e.id, e.proc.pid]));
		u.edge = Number(procnet.holder(pids, `${HOST}:${ports.ws}`, `${u.local.host}:${u.local.port}`));
		const r = await u.send({
			method: 'REGISTER', ruri: `sip:${DOMAIN}`, from: `sip:${user}@${DOMAIN}`,
			to: `sip:${user}@${DOMAIN}`, user, expires: 300,
			contact: `<sip:${user}@${rand(6)}.invalid;transport=ws>`,
		});
		assert.equal(r.status, 200, `${user} (edge ${u.edge}): REGISTER`);
		return u;
	}

	c.test('a drained edge takes no new connection and moves its clients, spread over drain_s, to the other', async () => {
		try {
			const before1 = [];
			for (let i = 0; i < 24; i++) before1.push(await client(`d${i}-${rand(3)}`, SOURCES[i % SOURCES.length]));
			const on1 = before1.filter((u) => u.edge === 1);
			const on2 = before1.filter((u) => u.edge === 2);
			assert.ok(on1.length >= 3 && on2.length >= 3, `clients on both edges (${on1.length}/${on2.length})`);

			const e1 = c.edges.find((e) => e.id === 1).proc;
			const t0 = Date.now();
			process.kill(e1.pid, 'SIGUSR2');
			await waitUntil(() => e1.lines.some((x) => x.t >= t0 && /draining/.test(x.s)), 3000, 'the drain');

			/* New connections during the drain: all taken, by edge 2. */
			const during = [];
			for (let i = 0; i < 8; i++) during.push(await client(`n${i}-${rand(3)}`, SOURCES[i % SOURCES.length]));
			assert.deepEqual(during.map((u) => u.edge), during.map(() => 2), 'new connections go to edge 2');

			await waitUntil(() => on1.every((u) => u.closed), (DRAIN_S + 3) * 1000, 'edge 1\'s clients closed');
			const times = on1.map((u) => u.closedAt);
			const span = Math.max(...times) - Math.min(...times);
			assert.ok(span >= DRAIN_S * 1000 / 4,
				`closes spread over the drain, not all at once (${on1.length} over ${span} ms)`);
			assert.ok(Math.max(...times) - t0 <= (DRAIN_S + 1) * 1000, 'all within drain_s');
			assert.ok(on2.every((u) => !u.closed) && during.every((u) => !u.closed), 'edge 2\'s clients stay');
			await waitUntil(() => e1.lines.some((x) => x.t >= t0 && /drained/.test(x.s)), 3000, 'edge 1 drained');

			/* They come back (as SIP.js does on a close it did not ask
			 * for), through edge 2. */
			const back = [];
			for (const u of on1) back.push(await client(u.user, u.src));
			assert.deepEqual(back.map((u) => u.edge), back.map(() => 2), 'reconnected through edge 2');
			const sender = await c.ua('drain-sender');
			for (const u of [...back, ...on2]) {
				const body = `after the drain for ${u.user}`;
				const got = u.waitRequest((m) => m.method === 'MESSAGE' && m.body.toString() === body, 5000, 'MESSAGE');
				const res = sender.send(c.edge(2), {
					method: 'MESSAGE', ruri: `sip:${u.user}@${DOMAIN}`, from: `sip:sender@${DOMAIN}`,
					to: `sip:${u.user}@${DOMAIN}`, body, contentType: 'text/plain',
				});
				u.reply(await got, 200, 'OK');
				assert.equal((await res).status, 200, `MESSAGE to ${u.user}`);
			}
			assert.equal(await c.edgeStat('conns_drained', 1), on1.length);
		} finally {
			for (const u of open) u.close();
		}
	});
});
