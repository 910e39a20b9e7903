'use strict';
/*
 * 01 options: the cluster starts, answers OPTIONS addressed to itself
 * on every edge, and stops cleanly.  Every other file relies on this.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster } = require('./lib/cluster');

describe('01 options', () => {
	const c = cluster({ name: '01-options', edges: 2, cores: 2 });

	c.test('OPTIONS to the proxy itself (no user part) gets 200 on each edge', async () => {
		const ua = await c.ua('pinger');
		for (const id of [1, 2]) {
			const e = c.edge(id);
			const res = await ua.send(e, {
				method: 'OPTIONS', ruri: `sip:${e.addr}`, from: 'sip:pinger@a.test', to: `sip:${e.addr}`,
			});
			assert.equal(res.status, 200, `edge ${id}: OPTIONS sip:${e.addr} answered ${res.status} ${res.reason}`);
			assert.equal(res.callId, res.tx.req.callId, 'Call-ID echoed');
			assert.deepEqual(res.cseq, { num: 1, method: 'OPTIONS' }, 'CSeq echoed');
			assert.match(res.get('to'), /;\s*tag=/i, 'the 200 carries a To tag');
			assert.equal(res.all('via').length, 1, 'exactly our Via comes back');
			assert.equal(res.branch, res.tx.branch, 'our branch comes back');
		}
	});

	c.test('the response Via carries rport and received (RFC 3581)', async () => {
		const ua = await c.ua('rport');
		const e = c.edge(1);
		const res = await ua.send(e, {
			method: 'OPTIONS', ruri: `sip:${e.addr}`, from: 'sip:rport@a.test', to: `sip:${e.addr}`,
		});
		assert.equal(res.status, 200);
		const v = res.topVia;
		assert.equal(v.params.rport, String(ua.port), `rport=${ua.port} expected in ${v.raw}`);
		assert.equal(v.params.received, '127.0.0.1', `received=127.0.0.1 expected in ${v.raw}`);
	});

	c.test('OPTIONS with many distinct Call-IDs all get 200 (every core answers)', async () => {
		const ua = await c.ua('many');
		const e = c.edge(2);
		const rs = await Promise.all(Array.from({ length: 40 }, () => ua.send(e, {
			method: 'OPTIONS', ruri: `sip:${e.addr}`, from: 'sip:many@a.test', to: `sip:${e.addr}`,
		})));
		assert.deepEqual(rs.map((r) => r.status).filter((s) => s !== 200), []);
	});
});
