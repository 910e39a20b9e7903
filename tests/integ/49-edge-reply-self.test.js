'use strict';
/*
 * 49 edge reply self: the edge's own stateless answers (400 for a
 * broken request, 503 with no core) follow the Via (RFC 3261 18.2.2),
 * so a request whose Via names one of the cluster's own addresses
 * would make the edge fire at its own services.  Here the "service" is
 * a UDP socket the test owns, configured as an rtpengine control port
 * of the cluster: a broken request whose Via names it gets no answer
 * there (counted as drop_reply_self), while the same request naming an
 * ordinary port gets its 400.  Before commit "edge: no stateless reply
 * to the cluster's own addresses" the 400 reached the control port.
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

	c.test('a broken request whose Via names a cluster address is not answered there', async () => {
		const e = c.edge();
		att.send(broken(ctl.address().port), e.port, e.host);
		await waitUntil(() => ctl.got.some((m) => /^SIP\/2\.0 400 /.test(m)), 5000, 'the control 400');
		att.send(broken(trap.address().port), e.port, e.host);
		/* The control again, after: the edge handled the trap's one. */
		att.send(broken(ctl.address().port), e.port, e.host);
		await waitUntil(() => ctl.got.filter((m) => /^SIP\/2\.0 400 /.test(m)).length >= 2, 5000, 'the second control 400');
		assert.deepEqual(trap.got, [], 'the cluster\'s own port received the edge\'s answer');
		const k = c.edges[0].proc;
		const since = Date.now();
		process.kill(k.pid, 'SIGUSR1');
		await waitUntil(() => k.lines.some((l) => l.t >= since && /drop_reply_self=1\b/.test(l.s)), 3000,
			'the edge to count drop_reply_self=1');
	});
});
