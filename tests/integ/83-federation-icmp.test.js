'use strict';
/*
 * 83 federation, ICMP (issue 11): "UDP: no response within a
 * configurable fail-over timer, or ICMP port unreachable" -> the next
 * target at once.  u.test's first SRV target is a UDP port on loopback
 * that nothing listens on: the kernel answers each datagram sent there
 * with ICMP port unreachable, which the edge reads from its socket's
 * error queue (IP_RECVERR) and hands to the core, which fails the
 * branch over to the second target (a UDP listener the test owns) and
 * blocklists the first.  failover_ms is 8 s, so only the ICMP path can
 * answer within a second.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { describe, before, after } = require('node:test');
const { cluster, freePort, rand, HOST } = require('./lib/cluster');
const { SipUA } = require('./lib/sip');
const { Registration, message } = require('./lib/flows');
const { Dnsmasq } = require('./lib/dnsmasq');

const FAILOVER_MS = 8000;

describe('83 federation, ICMP port unreachable', () => {
	const dns = new Dnsmasq();
	const fed = () => ({ federation: { dns_servers: dns.addr, failover_ms: FAILOVER_MS, blocklist_s: 60 } });
	let deadPort = 0;
	let target = null;	/* u.test's second SRV target */

	before(async () => {
		dns.port = await freePort();
		deadPort = await freePort();
		target = await SipUA.open({ label: 'u-test-target' });
	});
	const A = cluster({ name: '83-federation-icmp', cores: 1, registrar: { domains: 'a.test' }, sections: fed });
	before(async () => {
		await dns.start([
			`host-record=dead.u.test,${HOST}`,
			`host-record=live.u.test,${HOST}`,
			`srv-host=_sip._udp.u.test,dead.u.test,${deadPort},10,10`,
			`srv-host=_sip._udp.u.test,live.u.test,${target.port},20,10`,
			`srv-host=_sip._udp.v.test,dead.u.test,${deadPort},10,10`,
		]);
	});
	after(async () => {
		await dns.stop();
		if (target) target.close();
	});

	const failedRe = () => new RegExp(`target ${HOST}:${deadPort}/udp failed \\(503\\)`);
	const failures = () => A.procs.reduce((n, p) => n + p.lines.filter((l) => failedRe().test(l.s)).length, 0);

	async function timed(p) {
		const t0 = Date.now();
		const r = await p;
		return { r, ms: Date.now() - t0 };
	}

	A.test('first SRV target a closed UDP port: the MESSAGE reaches the second in well under failover_ms', async () => {
		const alice = await A.ua('alice');
		await new Registration(alice, A.edge(), 'alice', 'a.test').register(600);
		const bob = `bob-${rand(3)}`;
		const first = await timed(message(alice, A.edge(), bob, 'u.test', { from: 'sip:alice@a.test', timeout: 15000 }));
		assert.equal(first.r.status, 200, `MESSAGE to ${bob}@u.test got ${first.r.status} ${first.r.reason}`);
		assert.ok(first.ms < 1000, `MESSAGE answered in ${first.ms} ms (failover_ms ${FAILOVER_MS}): ` +
			'the ICMP port unreachable did not fail the branch over');
		assert.equal(failures(), 1, `the core logged ${failedRe()} once: the dead target was tried and failed`);
		/* Blocklisted: the next request goes to the live target first. */
		const second = await timed(message(alice, A.edge(), bob, 'u.test', { from: 'sip:alice@a.test', timeout: 15000 }));
		assert.equal(second.r.status, 200, `second MESSAGE got ${second.r.status} ${second.r.reason}`);
		assert.ok(second.ms < 1000, `second MESSAGE took ${second.ms} ms`);
		assert.equal(failures(), 1, 'the dead target was not tried again (blocklist)');
		assert.equal(target.distinctRequests((q) => q.method === 'MESSAGE').length, 2, 'the live target got both');
		/* The error queue is emptied: a socket with an error queued
		 * polls readable for ever, an edge that left one would spin. */
		const pid = A.edges[0].proc.pid;
		const cpu = () => {
			const f = fs.readFileSync(`/proc/${pid}/stat`, 'latin1').split(') ')[1].split(' ');
			return Number(f[11]) + Number(f[12]);	/* utime + stime, ticks */
		};
		const c0 = cpu();
		await new Promise((r) => setTimeout(r, 1000));
		const ticks = cpu() - c0;
		assert.ok(ticks < 20, `the idle edge used ${ticks} CPU ticks in 1 s after the ICMP errors`);
		A.addEvidence('timing', `ICMP fail-over ${first.ms} ms, then ${second.ms} ms`);
		console.log(`# closed first UDP target: 200 in ${first.ms} ms (failover_ms ${FAILOVER_MS}), next in ${second.ms} ms`);
	});

	A.test('an INVITE fails over on ICMP too; with no target left the caller hears an error at once', async () => {
		const alice = await A.ua('alice2');
		await new Registration(alice, A.edge(), 'alice2', 'a.test').register(600);
		/* v.test has only the closed port (blocklisted or not, it is
		 * the only target): an error, not silence for failover_ms. */
		const { r, ms } = await timed(alice.send(A.edge(), {
			method: 'INVITE', ruri: 'sip:x@v.test', from: 'sip:alice2@a.test', to: 'sip:x@v.test',
			contact: [`<${alice.contactUri('alice2')}>`],
			body: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n',
			contentType: 'application/sdp',
		}, 15000));
		assert.ok(r.status >= 500 && r.status < 600, `INVITE to v.test got ${r.status} ${r.reason}`);
		assert.ok(ms < 1000, `INVITE to a closed port answered in ${ms} ms (failover_ms ${FAILOVER_MS})`);
		console.log(`# only target closed: ${r.status} in ${ms} ms`);
	});
});
