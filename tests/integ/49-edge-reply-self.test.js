'use strict';
/*
 * 49 edge reply self: the edge's own stateless answers (400 for a
 * broken request, 503 with no core) go back where the request came
 * from - its source address and port - never to a port its Via names
 * (RFC 3261 18.2.2 would, without rport): an unauthenticated datagram
 * cannot aim the edge at a third port.  And a datagram whose source is
 * one of the cluster's own addresses (a spoofed source; here a UDP
 * socket the test owns, configured as an rtpengine control port of the
 * cluster) gets no answer at all, counted as drop_reply_self.  Before
 * commits "edge: no stateless reply to the cluster's own addresses"
 * and "edge: stateless replies go to the source only" the 400 reached
 * the port the Via named, the cluster's own included.
 */
const assert = require('node:assert/strict');
const dgram = require('node:dgram');
const { describe, before, after } = require('node:test');
const { cluster, rand, waitUntil, HOST } = require('./lib/cluster');

function udp() {
	return new Promise((resolve) => {
		const s = dgram.createSocket('udp4');
		s.got = [];
		s.on('message', (m) => s.got.push(m.toString('latin1')));
		s.bind(0, HOST, () => resolve(s));
	});
}

/* A MESSAGE whose Content-Length promises more than the datagram has:
 * the edge answers 400 to the Via's sent-by (no rport). */
function broken(viaPort) {
	const body = 'x';
	return Buffer.from([
		'MESSAGE sip:victim@a.test SIP/2.0',
		`Via: SIP/2.0/UDP ${HOST}:${viaPort};branch=z9hG4bK${rand(8)}`,
		'Max-Forwards: 70',
		`From: <sip:att@a.test>;tag=${rand(4)}`,
		'To: <sip:victim@a.test>',
		`Call-ID: self-${rand(8)}`,
		'CSeq: 1 MESSAGE',
		'Content-Type: text/plain',
		'Content-Length: 999',
		'', body].join('\r\n'), 'latin1');
}

describe('49 edge reply self', () => {
	let trap = null;
	let ctl = null;
	let att = null;
	before(async () => {
		trap = await udp();
		ctl = await udp();
		att = await udp();
	});
	after(() => { for (const s of [trap, ctl, att]) if (s) s.close(); });
	const c = cluster({
		name: '49-edge-reply-self', edges: 1, cores: 1,
		sections: () => ({ rtpctl: { instances: `${HOST}:${trap.address().port}/1` } }),
	});

	c.test('a broken request is answered at its source only, and never when that is a cluster address', async () => {
		const e = c.edge();
		/* Via names the trap (a cluster address) and ctl: the 400 goes
		 * back to the sender's own port, to neither. */
		att.send(broken(trap.address().port), e.port, e.host);
		att.send(broken(ctl.address().port), e.port, e.host);
		await waitUntil(() => att.got.filter((m) => /^SIP\/2\.0 400 /.test(m)).length >= 2, 5000,
			'both 400s back at the sender');
		/* Sent from the cluster's own address: no answer anywhere. */
		trap.send(broken(ctl.address().port), e.port, e.host);
		const k = c.edges[0].proc;
		await waitUntil(() => {
			process.kill(k.pid, 'SIGUSR1');
			return k.lines.some((l) => /drop_reply_self=1\b/.test(l.s));
		}, 5000, 'the edge to count drop_reply_self=1', 200);
		/* Then a request that is answered, to know the moment passed. */
		att.send(broken(ctl.address().port), e.port, e.host);
		await waitUntil(() => att.got.filter((m) => /^SIP\/2\.0 400 /.test(m)).length >= 3, 5000, 'the third 400');
		assert.deepEqual(ctl.got, [], 'a 400 went to the port a Via named');
		assert.deepEqual(trap.got, [], 'the cluster\'s own port received an answer');
	});
});
