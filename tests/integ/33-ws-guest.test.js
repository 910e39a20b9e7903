'use strict';
/*
 * 33 ws guest: the edge's KwikyKonf guest credentials, GET /kk/guest
 * on the WS and WSS ports of a real edge (edge/edge_guest.c).
 *
 *   - 200 with exactly {user, username, password, expires, ttl}:
 *     user "guest.<room>.<10 of a-z0-9>", username "<expires>:<user>",
 *     expires = now + [edge] guest_ttl_s, and the password is
 *     base64url(HMAC-SHA256(guest key, username)) with the guest key
 *     HKDF-derived from this cluster's key file (lib/key.h): what any
 *     core recomputes.  Cache-Control: no-store, over HTTP and HTTPS.
 *   - a fresh guest id on every call (the edge picks it: nobody asks
 *     for another guest's address);
 *   - 400 for a missing or bad room (upper case, a dot that would
 *     change the shape of the guest name, too long, encoded bytes),
 *     405 for another method, 404 next to the path;
 *   - a source over its burst gets 429 with Retry-After and is counted
 *     (the edge's SIGUSR1 stats), another source is not affected.
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const path = require('node:path');
const { describe } = require('node:test');
const { waitUntil } = require('./lib/cluster');
const { streamCluster } = require('./lib/ws');

const TTL = 600;
const BURST = 20;	/* EDGE_GUEST_BURST */

/* GET (or method) path on edge 1's WS or WSS port from source address
 * from; resolves with {status, headers, body, json}. */
function get(c, pathq, { secure = false, from = '127.0.0.1', method = 'GET' } = {}) {
	const port = secure ? c.ports[1].wss : c.ports[1].ws;
	const mod = secure ? https : http;
	return new Promise((res, rej) => {
		const req = mod.request({
			host: '127.0.0.1', port, path: pathq, method, localAddress: from,
			rejectUnauthorized: false, agent: false, timeout: 5000,
		}, (r) => {
			let body = '';
			r.setEncoding('utf8');
			r.on('data', (d) => { body += d; });
			r.on('end', () => {
				let json = null;
				try { json = JSON.parse(body); } catch { /* not JSON */ }
				res({ status: r.statusCode, headers: r.headers, body, json });
			});
		});
		req.on('timeout', () => req.destroy(new Error(`${method} ${pathq}: no answer`)));
		req.on('error', rej);
		req.end();
	});
}

/* The guest key as the edge and the cores derive it: HKDF-expand
 * (RFC 5869, one block) of the host's master key with the use's name. */
function guestKey(c) {
	const master = fs.readFileSync(path.join(c.runDir, 'cluster.key'));
	assert.equal(master.length, 32, 'run_dir/cluster.key is not 32 bytes');
	return crypto.createHmac('sha256', master)
		.update(Buffer.concat([Buffer.from('sipmesh guest'), Buffer.from([1])])).digest();
}

const macOf = (key, username) => crypto.createHmac('sha256', key).update(username).digest('base64url');

describe('33 ws guest', () => {
	const c = streamCluster({ name: '33-ws-guest', edges: 1, cores: 1, edge: { guest_ttl_s: TTL } });

	c.test('GET /kk/guest: the JSON credentials, MAC under the cluster guest key, no-store', async () => {
		for (const secure of [false, true]) {
			const t0 = Math.floor(Date.now() / 1000);
			const r = await get(c, '/kk/guest?room=design-review_2', { secure });
			const t1 = Math.ceil(Date.now() / 1000);
			assert.equal(r.status, 200, `${secure ? 'HTTPS' : 'HTTP'}: ${r.status} ${r.body}`);
			assert.match(r.headers['content-type'], /^application\/json/);
			assert.equal(r.headers['cache-control'], 'no-store');
			const j = r.json;
			assert.deepEqual(Object.keys(j).sort(), ['expires', 'password', 'ttl', 'user', 'username']);
			assert.match(j.user, /^guest\.design-review_2\.[a-z0-9]{10}$/);
			assert.equal(j.ttl, TTL);
			assert.ok(j.expires >= t0 + TTL && j.expires <= t1 + TTL, `expires ${j.expires}, now ${t0}`);
			assert.equal(j.username, `${j.expires}:${j.user}`);
			assert.equal(j.password, macOf(guestKey(c), j.username),
				'the password is not the guest-key MAC of the username');
		}
	});

	c.test('every call gets a fresh guest id', async () => {
		const users = new Set();
		for (let i = 0; i < 8; i++) {
			const r = await get(c, '/kk/guest?room=fresh', { from: '127.0.0.4' });
			assert.equal(r.status, 200);
			users.add(r.json.user);
		}
		assert.equal(users.size, 8, `ids repeated: ${[...users].join(' ')}`);
	});

	c.test('a missing or bad room gets 400, another method 405, a nearby path 404', async () => {
		const bad = ['/kk/guest', '/kk/guest?room=', '/kk/guest?room=Upper', '/kk/guest?room=a.b',
			`/kk/guest?room=${'x'.repeat(33)}`, '/kk/guest?room=a%2eb',
			'/kk/guest?room=a%20b', '/kk/guest?room=caf%C3%A9', '/kk/guest?other=x'];
		for (const q of bad) {
			const r = await get(c, q, { from: '127.0.0.5' });
			assert.equal(r.status, 400, `${q}: ${r.status} ${r.body}`);
			assert.ok(r.json && r.json.error && !r.json.password, `${q}: ${r.body}`);
			assert.equal(r.headers['cache-control'], 'no-store', q);
		}
		/* An encoded NUL never reaches the edge: lws's parser drops the
		 * connection. */
		await assert.rejects(get(c, '/kk/guest?room=a%00b', { from: '127.0.0.5' }), /socket hang up|ECONNRESET/);
		/* The longest room is fine. */
		assert.equal((await get(c, `/kk/guest?room=${'x'.repeat(32)}`, { from: '127.0.0.5' })).status, 200);
		const post = await get(c, '/kk/guest?room=r', { method: 'POST', from: '127.0.0.5' });
		assert.equal(post.status, 405);
		assert.equal((await get(c, '/kk/guestx?room=r', { from: '127.0.0.5' })).status, 404);
		assert.equal((await get(c, '/kk/guest/x?room=r', { from: '127.0.0.5' })).status, 404);
		assert.ok(await c.edgeStat('guest_bad') >= bad.length + 1);
	});

	c.test('a source over its burst gets 429 with Retry-After, counted; another source is served', async () => {
		const before = await c.edgeStat('guest_limited');
		const codes = [];
		for (let i = 0; i < BURST + 5; i++)
			codes.push((await get(c, '/kk/guest?room=flood', { from: '127.0.0.2' })).status);
		assert.deepEqual(codes.slice(0, BURST), new Array(BURST).fill(200), codes.join(' '));
		assert.deepEqual(codes.slice(BURST), new Array(5).fill(429), codes.join(' '));
		const r = await get(c, '/kk/guest?room=flood', { from: '127.0.0.2' });
		assert.equal(r.status, 429);
		assert.ok(!r.json.password);
		assert.ok(Number(r.headers['retry-after']) >= 1, `Retry-After: ${r.headers['retry-after']}`);
		assert.equal(r.headers['cache-control'], 'no-store');
		assert.equal(await c.edgeStat('guest_limited') - before, 6);
		/* Another host is not held back by the first one's flood. */
		assert.equal((await get(c, '/kk/guest?room=flood', { from: '127.0.0.3' })).status, 200);
		/* The flooder gets one more once an interval (2 s) has passed
		 * since the refusals began, not before: refusals do not count. */
		const t0 = Date.now();
		await waitUntil(async () => (await get(c, '/kk/guest?room=flood', { from: '127.0.0.2' })).status === 200,
			4000, 'the flooder to be served again', 100);
		assert.ok(Date.now() - t0 >= 1000, `served again after ${Date.now() - t0} ms`);
	});
});
