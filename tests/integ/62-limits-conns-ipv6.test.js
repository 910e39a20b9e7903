'use strict';
/*
 * 62 limits conns over IPv6: one host picks addresses in its /64 at
 * will, so the edge counts an IPv6 source's connections per /64
 * (max_conns_per_net) as well as per address (max_conns_per_ip), and
 * keys its rate buckets by /64.  Unit tests cover the counting
 * (test_edge_conn, test_edge_limit); here a real edge listens on IPv6
 * inside a network namespace of this file's own (lib/netns.js), whose
 * loopback holds 2001:db8::1..3 (one /64), 2001:db8:0:1::1 (the
 * next /64) and the edge's 2001:db8:ffff::1: connections from two
 * addresses of one /64 share its cap, and its connection rate bucket
 * (conn_rate, conn_burst), while a client of the other /64 still
 * connects and gets its OPTIONS answered.
 *
 * integ: serial (it times closes)
 */
if (!require('./lib/netns').reexecInNetns(__filename, 'nameserver 127.0.0.53\n'))
	return;

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { describe, before } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { rawTcp, closedWithin } = require('./lib/ws');

const EDGE = '2001:db8:ffff::1';
const NET_A = ['2001:db8::1', '2001:db8::2', '2001:db8::3'];
const NET_B = '2001:db8:0:1::1';
const TCP_PORT = 5070;
const PER_NET = 3;

/* Addresses on the namespace's loopback before the edge binds one. */
for (const a of [EDGE, ...NET_A, NET_B])
	execFileSync('ip', ['-6', 'addr', 'add', `${a}/64`, 'dev', 'lo', 'nodad']);

/* A TCP connection to the edge from localAddress (rawTcp: a CRLF
 * keepalive first). */
function tcp(localAddress, port = TCP_PORT) {
	return rawTcp({ host: EDGE, port, localAddress, family: 6 });
}

/* Sends an OPTIONS to the proxy down s; resolves when its 200 is back. */
async function options(s) {
	const cid = `v6-${rand(8)}`;
	const a = s.address();
	s.write('OPTIONS sip:a.test SIP/2.0\r\n' +
		`Via: SIP/2.0/TCP [${a.address}]:${a.port};branch=z9hG4bK-${rand(8)};rport\r\n` +
		'Max-Forwards: 70\r\nFrom: <sip:v6@a.test>;tag=1\r\nTo: <sip:a.test>\r\n' +
		`Call-ID: ${cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`);
	await waitUntil(() => new RegExp(`^SIP/2\\.0 200[^]*?Call-ID: ${cid}`, 'm').test(s.buf), 5000,
		`200 to the OPTIONS over TCP from ${a.address}`);
}

describe('62 limits conns over IPv6, per /64', () => {
	const c = cluster({
		name: '62-limits-conns-ipv6', edges: 1, cores: 1,
		edge: { max_conns_per_ip: 10, max_conns_per_net: PER_NET, handshake_timeout_s: 30 },
		edgeKeys: () => ({ tcp: `[${EDGE}]:${TCP_PORT}` }),
	});
	before(() => {
		const lo = execFileSync('ip', ['-6', 'addr', 'show', 'dev', 'lo'], { encoding: 'utf8' });
		for (const a of [EDGE, ...NET_A, NET_B]) assert.ok(lo.includes(`${a}/64`), `${a} on lo:\n${lo}`);
	});

	c.test(`two addresses of one /64 share its cap of ${PER_NET}; the next /64 is not held back`, async () => {
		const socks = [];
		const open = async (a) => { const s = await tcp(a); socks.push(s); return s; };
		try {
			/* Two from the first address, one from the second: the
			 * /64 is full, neither address is (max_conns_per_ip 10). */
			for (const a of [NET_A[0], NET_A[0], NET_A[1]]) await options(await open(a));
			for (const a of [NET_A[1], NET_A[2]]) {
				const over = await open(a);
				assert.ok(await closedWithin(over, 1000), `a connection from ${a}, the /64's ${PER_NET + 1}th, not closed at once`);
			}
			assert.ok(await c.edgeStat('conns_refused') >= 2, 'the refusals are counted');
			const other = await open(NET_B);
			await options(other);
			assert.ok(!await closedWithin(other, 500), `${NET_B} (the next /64) was closed`);
			/* One of the first /64 goes: its room comes back. */
			socks[0].destroy();
			await waitUntil(async () => !await closedWithin(await open(NET_A[2]), 300), 5000,
				'room in the first /64 again', 100);
			await options(socks[socks.length - 1]);
		} finally {
			for (const s of socks) s.destroy();
		}
	});
});

describe('62 limits conns over IPv6: the connection rate, per /64', () => {
	const c = cluster({
		name: '62-limits-conn-rate-ipv6', edges: 1, cores: 1,
		edge: { conn_rate: 1, conn_burst: PER_NET, max_conns_per_ip: 10, max_conns_per_net: 10 },
		edgeKeys: () => ({ tcp: `[${EDGE}]:${TCP_PORT + 1}` }),
	});

	c.test(`two addresses of one /64 share its conn_burst of ${PER_NET}; the next /64 has its own`, async () => {
		const socks = [];
		const open = async (a) => { const s = await tcp(a, TCP_PORT + 1); socks.push(s); return s; };
		try {
			for (const a of [NET_A[0], NET_A[1], NET_A[0]]) await open(a);
			const over = await open(NET_A[2]);
			assert.ok(await closedWithin(over, 1000), `a connection from ${NET_A[2]} past the /64's burst not closed at once`);
			assert.ok(await c.edgeStat('conns_limited') >= 1, 'the refusal is counted');
			await options(await open(NET_B));
			for (const s of socks.slice(0, 3)) assert.ok(!s.destroyed, 'a connection within the burst was closed');
		} finally {
			for (const s of socks) s.destroy();
		}
	});
});
