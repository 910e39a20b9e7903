'use strict';
/*
 * 80 federation (issue 11): two sipmesh clusters, A serving a.test and
 * B serving b.test and c.test, find each other through a real dnsmasq
 * (SRV records naming each cluster's edge port, [federation]
 * dns_servers pointing at it).  A request from a local user to a
 * foreign domain is located by DNS and proxied there; from a foreign
 * domain to a local user it is delivered; foreign to foreign is
 * refused with 403 and nothing leaves.  c.test's first SRV target is a
 * UDP socket that never answers: the request fails over to B after
 * failover_ms, and the dead target is remembered (a port nothing
 * listens on is left at once, on the ICMP error: 83-federation-icmp).  Each cluster has one
 * core, as the blocklist is per core.
 */
const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const { cluster, freePort, rand, HOST } = require('./lib/cluster');
const { SipUA } = require('./lib/sip');
const { Registration, message, registeredUser } = require('./lib/flows');
const { crossDomainCall } = require('./lib/sipp');
const { Dnsmasq } = require('./lib/dnsmasq');
const { withAuth, addUser } = require('./lib/digest');

const FAILOVER_MS = 2000;

describe('80 federation', () => {
	const dns = new Dnsmasq();
	const fed = () => ({ federation: { dns_servers: dns.addr, failover_ms: FAILOVER_MS, blocklist_s: 60 } });
	let deadPort = 0;
	let silent = null;	/* c.test's first target: never answers */
	let relayTarget = null;	/* a UDP listener the test owns, e.test's SRV target */
	let busy = null;	/* f.test's first target: answers 503 */

	before(async () => {
		dns.port = await freePort();
		deadPort = await freePort();
		silent = await SipUA.open({ label: 'c-test-silent' });
		silent.handler = () => null;
		relayTarget = await SipUA.open({ label: 'e-test-target' });
		busy = await SipUA.open({ label: 'f-test-503' });
		busy.handler = () => 503;
	});
	const A = cluster({ name: '80-federation-a', cores: 1, registrar: { domains: 'a.test' }, sections: fed });
	const B = cluster({ name: '80-federation-b', cores: 1, registrar: { domains: 'b.test c.test t.test f.test' }, sections: fed });
	before(async () => {
		const a = A.edge().port;
		const b = B.edge().port;
		await dns.start([
			`host-record=edge.a.test,${HOST}`,
			`host-record=edge.b.test,${HOST}`,
			`host-record=dead.c.test,${HOST}`,
			`host-record=target.e.test,${HOST}`,
			`srv-host=_sip._udp.a.test,edge.a.test,${a},10,10`,
			`srv-host=_sip._udp.b.test,edge.b.test,${b},10,10`,
			/* c.test: the silent target first, then B. */
			`srv-host=_sip._udp.c.test,dead.c.test,${silent.port},10,10`,
			`srv-host=_sip._udp.c.test,edge.b.test,${b},20,10`,
			/* t.test: TCP only, the dead port (refused) first. */
			`srv-host=_sip._tcp.t.test,dead.c.test,${deadPort},10,10`,
			`srv-host=_sip._tcp.t.test,edge.b.test,${b},20,10`,
			`srv-host=_sip._udp.e.test,target.e.test,${relayTarget.port},10,10`,
			/* f.test: a server answering 503 first, then B. */
			`srv-host=_sip._udp.f.test,target.e.test,${busy.port},10,10`,
			`srv-host=_sip._udp.f.test,edge.b.test,${b},20,10`,
			/* self.test names A's own edge. */
			`srv-host=_sip._udp.self.test,edge.a.test,${a},10,10`,
		]);
	});
	after(async () => {
		await dns.stop();
		if (relayTarget) relayTarget.close();
		if (busy) busy.close();
		if (silent) silent.close();
	});

	/* A UA registered as user@domain on cluster c. */
	async function timed(p) {
		const t0 = Date.now();
		const r = await p;
		return { r, ms: Date.now() - t0 };
	}

	A.test('a MESSAGE from alice@a.test to bob@b.test crosses both clusters and gets 200', async () => {
		const alice = await registeredUser(A, 'alice', 'a.test');
		const bob = await registeredUser(B, 'bob', 'b.test');
		const body = `hello bob ${rand(6)}`;
		const { r, ms } = await timed(message(alice.ua, A.edge(), bob.user, 'b.test',
			{ from: alice.aor, body, timeout: 8000 }));
		assert.equal(r.status, 200, `MESSAGE to ${bob.aor} got ${r.status} ${r.reason}`);
		const got = bob.ua.requests.filter((q) => q.method === 'MESSAGE');
		assert.equal(got.length, 1, 'bob received the MESSAGE once');
		assert.equal(got[0].body.toString('latin1'), body);
		/* Both clusters' edges on the path: A's Via above B's. */
		const vias = got[0].all('via').join('\n');
		assert.match(vias, new RegExp(`:${B.edge().port}\\b`), 'B\'s Via');
		assert.match(vias, new RegExp(`:${A.edge().port}\\b`), 'A\'s Via');
		A.addEvidence('timing', `MESSAGE a.test -> b.test answered in ${ms} ms`);
		console.log(`# MESSAGE a.test -> b.test: 200 in ${ms} ms`);
	});

	A.test('a MESSAGE from carol@b.test to dave@a.test crosses back and gets 200', async () => {
		const dave = await registeredUser(A, 'dave', 'a.test');
		const carol = await registeredUser(B, 'carol', 'b.test');
		const body = `hello dave ${rand(6)}`;
		const r = await message(carol.ua, B.edge(), dave.user, 'a.test', { from: carol.aor, body, timeout: 8000 });
		assert.equal(r.status, 200, `MESSAGE to ${dave.aor} got ${r.status} ${r.reason}`);
		const got = dave.ua.requests.filter((q) => q.method === 'MESSAGE');
		assert.equal(got.length, 1, 'dave received the MESSAGE once');
		assert.equal(got[0].body.toString('latin1'), body);
	});

	/* A sipp call from caller@from (sent to edge of cluster src) to a
	 * sipp callee registered on cluster dst as user@to. */
	async function call(src, dst, from, to, uas, uac) {
		/* The 200 the caller got: Record-Route of both clusters. */
		const { rr } = await crossDomainCall(src, dst, from, to, uas, uac);
		for (const c of [A, B])
			assert.match(rr, new RegExp(`${HOST}:${c.edge().port}[;>]`), `Record-Route of ${c.name} in the 200 (${rr})`);
	}

	A.test('a call from a.test to b.test, BYE from the caller through both clusters', async () => {
		await call(A, B, 'a.test', 'b.test', 'uas_call.xml', 'uac_call.xml');
	});

	A.test('a call from b.test to a.test, BYE from the callee through both clusters', async () => {
		await call(B, A, 'b.test', 'a.test', 'uas_call_bye.xml', 'uac_call_bye.xml');
	});

	A.test('first SRV target silent: the MESSAGE fails over to the next within failover_ms, then the dead one is skipped', async () => {
		const alice = await registeredUser(A, 'alice2', 'a.test');
		const bob = await registeredUser(B, 'bob2', 'c.test');
		const failovers = await A.coreStat('federation-failovers');
		const first = await timed(message(alice.ua, A.edge(), bob.user, 'c.test', { from: alice.aor, timeout: 15000 }));
		assert.equal(first.r.status, 200, `first MESSAGE to ${bob.aor} got ${first.r.status} ${first.r.reason}`);
		assert.ok(first.ms >= FAILOVER_MS - 100 && first.ms < FAILOVER_MS + 3000,
			`first MESSAGE answered in ${first.ms} ms, expected about failover_ms ${FAILOVER_MS}`);
		const second = await timed(message(alice.ua, A.edge(), bob.user, 'c.test', { from: alice.aor, timeout: 15000 }));
		assert.equal(second.r.status, 200, `second MESSAGE got ${second.r.status} ${second.r.reason}`);
		assert.ok(second.ms < 1000, `second MESSAGE took ${second.ms} ms: the dead target was not remembered`);
		assert.equal(bob.ua.distinctRequests((q) => q.method === 'MESSAGE').length, 2, 'bob got both');
		assert.equal(silent.distinctRequests((q) => q.method === 'MESSAGE').length, 1,
			'the silent target was tried for the first MESSAGE only');
		assert.equal(await A.coreStat('federation-failovers'), failovers + 1,
			'one fail-over counted (federation_failovers_total in the metrics)');
		A.addEvidence('timing', `fail-over ${first.ms} ms, then ${second.ms} ms`);
		console.log(`# dead first target: 200 in ${first.ms} ms (failover_ms ${FAILOVER_MS}), next in ${second.ms} ms`);
	});

	A.test('first SRV target refuses TCP: the MESSAGE goes to the next at once', async () => {
		const alice = await registeredUser(A, 'alice6', 'a.test');
		const bob = await registeredUser(B, 'bob6', 't.test');
		const { r, ms } = await timed(message(alice.ua, A.edge(), bob.user, 't.test', { from: alice.aor, timeout: 15000 }));
		assert.equal(r.status, 200, `MESSAGE to ${bob.aor} got ${r.status} ${r.reason}`);
		assert.ok(ms < 1000, `MESSAGE over TCP answered in ${ms} ms: the refused connection was not failed over at once`);
		const got = bob.ua.requests.filter((q) => q.method === 'MESSAGE');
		assert.equal(got.length, 1, 'bob received it once');
		assert.match(got[0].all('via').join('\n'), /SIP\/2\.0\/TCP /i, 'it crossed between the clusters over TCP');
		/* It was tried, and refused: not merely ordered last. */
		const failed = new RegExp(`target ${HOST}:${deadPort}/tcp failed \\(503\\)`);
		assert.ok(A.procs.some((p) => p.lines.some((l) => failed.test(l.s))), `no core logged ${failed}`);
		console.log(`# refused TCP first target: 200 in ${ms} ms`);
	});

	A.test('first SRV target answers 503: the MESSAGE goes to the next at once', async () => {
		const alice = await registeredUser(A, 'alice7', 'a.test');
		const bob = await registeredUser(B, 'bob7', 'f.test');
		const { r, ms } = await timed(message(alice.ua, A.edge(), bob.user, 'f.test', { from: alice.aor, timeout: 15000 }));
		assert.equal(r.status, 200, `MESSAGE to ${bob.aor} got ${r.status} ${r.reason}`);
		assert.ok(ms < 1000, `answered in ${ms} ms`);
		assert.equal(busy.distinctRequests((q) => q.method === 'MESSAGE').length, 1, 'the 503 server was tried first');
		assert.equal(bob.ua.distinctRequests((q) => q.method === 'MESSAGE').length, 1, 'bob got it');
		console.log(`# 503 first target: 200 in ${ms} ms`);
	});

	A.test('an unknown domain (NXDOMAIN) gets 404 quickly', async () => {
		const alice = await registeredUser(A, 'alice3', 'a.test');
		const { r, ms } = await timed(message(alice.ua, A.edge(), 'nobody', `nx-${rand(4)}.test`, { from: alice.aor, timeout: 8000 }));
		assert.equal(r.status, 404, `MESSAGE to an NXDOMAIN got ${r.status} ${r.reason}`);
		assert.ok(ms < 1000, `404 took ${ms} ms`);
		console.log(`# NXDOMAIN: 404 in ${ms} ms`);
	});

	A.test('a domain whose SRV names our own edge is refused: 404, no loop', async () => {
		const alice = await registeredUser(A, 'alice4', 'a.test');
		const r = await message(alice.ua, A.edge(), 'x', 'self.test', { from: alice.aor, timeout: 8000 });
		assert.equal(r.status, 404, `MESSAGE to self.test got ${r.status} ${r.reason}`);
	});

	A.test('foreign to foreign sent straight to the edge: 403, nothing reaches the target', async () => {
		relayTarget.requests.length = 0;
		const ua = await A.ua('relayer');
		const victim = `victim-${rand(3)}`;
		const m = await message(ua, A.edge(), victim, 'e.test', { from: 'sip:spam@d.test', timeout: 8000 });
		assert.equal(m.status, 403, `MESSAGE d.test -> e.test got ${m.status} ${m.reason}`);
		const i = await ua.send(A.edge(), {
			method: 'INVITE', ruri: `sip:${victim}@e.test`, from: 'sip:spam@d.test', to: `sip:${victim}@e.test`,
			contact: [`<${ua.contactUri('spam')}>`],
		}, 8000);
		assert.equal(i.status, 403, `INVITE d.test -> e.test got ${i.status} ${i.reason}`);
		/* The barrier: a local user's MESSAGE to e.test does reach the
		 * listener through DNS, so anything relayed would be there. */
		const alice = await registeredUser(A, 'alice5', 'a.test');
		relayTarget.handler = () => 200;
		const ok = await message(alice.ua, A.edge(), victim, 'e.test', { from: alice.aor, body: 'barrier', timeout: 8000 });
		assert.equal(ok.status, 200, `the local user's MESSAGE to e.test got ${ok.status} ${ok.reason}`);
		const seen = relayTarget.requests.map((q) => `${q.method} from ${q.get('from')}`);
		assert.equal(seen.length, 1, `the target received ${JSON.stringify(seen)}`);
		assert.match(seen[0], /^MESSAGE from .*alice5/, 'the target received only the local user\'s MESSAGE');
	});
});

describe('80 federation, DNS server silent', () => {
	/* A UDP socket that swallows every query: a DNS server that never
	 * answers. */
	let sink = null;
	const fed = () => ({ federation: { dns_servers: `${HOST}:${sink.port}`, dns_timeout_ms: 300, dns_tries: 1 } });
	before(async () => {
		sink = await SipUA.open({ label: 'dns-sink' });
		sink.handler = () => null;
	});
	after(() => { if (sink) sink.close(); });
	const C = cluster({ name: '80-federation-silent-dns', cores: 1, registrar: { domains: 'a.test' }, sections: fed });

	C.test('no DNS answer: 503 with Retry-After, in about dns_timeout_ms', async () => {
		const alice = await C.ua('alice');
		await new Registration(alice, C.edge(), 'alice', 'a.test').register(600);
		const t0 = Date.now();
		const r = await message(alice, C.edge(), 'bob', 'b.test', { from: 'sip:alice@a.test', timeout: 10000 });
		const ms = Date.now() - t0;
		assert.equal(r.status, 503, `MESSAGE with DNS silent got ${r.status} ${r.reason}`);
		assert.ok(r.has('retry-after'), '503 carries Retry-After');
		assert.ok(ms < 5000, `503 took ${ms} ms`);
		console.log(`# DNS silent: 503 in ${ms} ms`);
	});
});

describe('80 federation, digest auth', () => {
	/* With auth on, "local" means authenticated: a From naming a.test
	 * without credentials is challenged, and nothing leaves for b.test
	 * until the user proves who it is. */
	const dns = new Dnsmasq();
	let target = null;	/* b.test's server: a UDP listener the test owns */
	const PASS = 'federated secret';
	before(async () => {
		dns.port = await freePort();
		target = await SipUA.open({ label: 'b-test-server' });
	});
	const D = cluster({
		name: '80-federation-auth', cores: 1, redis: true, registrar: { auth: 'yes', domains: 'a.test' },
		sections: () => ({ federation: { dns_servers: dns.addr } }),
	});
	before(async () => {
		await dns.start([`host-record=sip.b.test,${HOST}`, `srv-host=_sip._udp.b.test,sip.b.test,${target.port},10,10`]);
	});
	after(async () => {
		await dns.stop();
		if (target) target.close();
	});

	D.test('a MESSAGE from a.test to b.test without credentials gets 407 and does not leave; with them it arrives', async () => {
		const u = `alice-${rand(3)}`;
		await addUser(D, u, 'a.test', PASS);
		const ua = await D.ua('alice');
		const callId = `${rand(10)}@integ`;
		const ruri = `sip:bob@b.test`;
		const send = (hdrs, bump) => ua.send(D.edge(), {
			method: 'MESSAGE', ruri, from: `sip:${u}@a.test`, to: ruri, callId, fromTag: 'f1', cseq: 1 + bump,
			body: `hi ${bump}`, contentType: 'text/plain', headers: hdrs,
		});
		const r = await withAuth(send, 'MESSAGE', ruri, u, PASS);
		assert.equal(r.first.status, 407, `MESSAGE without credentials got ${r.first.status} ${r.first.reason}`);
		assert.equal(r.res.status, 200, `MESSAGE with credentials got ${r.res.status} ${r.res.reason}`);
		const got = target.requests.filter((q) => q.method === 'MESSAGE').map((q) => q.body.toString('latin1'));
		assert.deepEqual([...new Set(got)], ['hi 1'], 'b.test received the authenticated MESSAGE only');
		assert.ok(!target.requests.some((q) => q.has('proxy-authorization')), 'our credentials did not leave the cluster');
	});
});
