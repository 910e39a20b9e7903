'use strict';
/*
 * 84 federation in a network namespace (issue 11): two sipmesh
 * clusters as two deployments would run them, each on the standard
 * port 5060 of an address of its own (A on 127.0.1.1 for a.test, B on
 * 127.0.2.1 for b.test), and one dnsmasq on port 53 as the resolver,
 * all inside a network namespace that holds only loopback, where
 * /etc/resolv.conf names that dnsmasq (lib/netns.js).  The DNS has
 * what a small deployment publishes: a.test only an A record (no
 * NAPTR, no SRV: RFC 3263's last resort, the default port 5060), b.test
 * a `_sip._udp` SRV record naming port 5060, n.test (also B's) a NAPTR
 * record leading to an SRV name only the NAPTR gives.  A reads the
 * resolver from /etc/resolv.conf (nothing about DNS in its config), B
 * from [federation] dns_servers.  Neither config names the other
 * domain.  B advertises a name, sip.b.test (as a TLS peer must, RFC
 * 5922), so its Via, Record-Route and the next hop of every in-dialog
 * request towards it are that name: A locates it (an A record, the
 * Route names the port) for BYE, ACK and re-INVITE, either way.
 * Each cluster has a second edge on an IPv6 address of its own
 * (fd00::a1, fd00::b1, added to lo), and v6.test (B's) has only an
 * AAAA record: a MESSAGE from a.test and calls with BYE from either
 * side reach it over IPv6 (A's core sends from its IPv6 edge whichever
 * edge the request came in on; each cluster double Record-Routes, its
 * IPv4 edge facing its user, its IPv6 edge the other cluster).
 * B's own name and addresses (sip.b.test, 127.0.2.1, [fd00::b1], with
 * the port or without) are local at B, never looked up there: a
 * MESSAGE from either side to a user registered with one of them as
 * the domain is delivered; they are not b.test (404 for bob@b.test).
 * Users: Node UAs and sipp over UDP on both sides, SIP.js users over
 * WebSocket on both (B's to and from sipp on A): MESSAGE both ways,
 * calls with BYE from either side (both clusters' Record-Route in the
 * 200), ACK and BYE along Route
 * values that leave the default port out (as Kamailio writes them on
 * 5060), MESSAGE and calls between the WebSocket user and a UDP user;
 * c.test's first SRV target an address where nothing listens (left at
 * once, on the ICMP error), an unknown domain, and relay attempts at
 * either edge.  Two clusters on one port of one host used to refuse each
 * other as "this cluster" (lib/infra.c): this file is the test.
 */
const { reexecWithResolver, RESOLVER_ADDR: DNS_ADDR } = require('./lib/netns');
if (!reexecWithResolver(__filename))
	return;

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const { describe, before, after } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { message, registeredUser } = require('./lib/flows');
const { runSipp, startUas, assertOk, crossDomainCall } = require('./lib/sipp');
const { Dnsmasq } = require('./lib/dnsmasq');
const { SipJsUA } = require('./lib/ws');

const A_ADDR = '127.0.1.1';
const B_ADDR = '127.0.2.1';
const B_NAME = 'sip.b.test';	/* what B advertises; its A record is B_ADDR */
const DEAD_ADDR = '127.0.3.1';	/* nothing listens there */
/* The second edge of each cluster listens on an IPv6 address of its
 * own, added to lo in the namespace (before()); v6.test, served by B,
 * has only an AAAA record, B's. */
const A_ADDR6 = 'fd00::a1';
const B_ADDR6 = 'fd00::b1';
/* Before the clusters start (their before() binds them). */
for (const a of [A_ADDR6, B_ADDR6]) execFileSync('ip', ['-6', 'addr', 'add', `${a}/128`, 'dev', 'lo', 'nodad']);
const WS_PORT = 5066;
const FAILOVER_MS = 2000;

describe('84 federation in a network namespace, port 5060', () => {
	const dns = new Dnsmasq(53, DNS_ADDR);
	/* Edge 2 of a cluster: UDP and TCP on its IPv6 address, port 5060. */
	const v6Edge = (addr) => ({ udp: `[${addr}]:5060`, tcp: `[${addr}]:5060` });
	const A = cluster({
		name: '84-netns-a', cores: 1, edges: 2, host: A_ADDR, port: 5060, registrar: { domains: 'a.test' },
		edgeKeys: (e) => (e.id === 2 ? v6Edge(A_ADDR6) : { ws: `${A_ADDR}:${WS_PORT}` }),
		sections: () => ({ federation: { failover_ms: FAILOVER_MS } }),
	});
	const B = cluster({
		name: '84-netns-b', cores: 1, edges: 2, host: B_ADDR, port: 5060,
		registrar: { domains: 'b.test c.test n.test v6.test' },
		edgeKeys: (e) => (e.id === 2 ? v6Edge(B_ADDR6) : { advertise: `${B_NAME}:5060`, ws: `${B_ADDR}:${WS_PORT}` }),
		sections: () => ({ federation: { dns_servers: `${DNS_ADDR}:53`, failover_ms: FAILOVER_MS } }),
	});
	before(async () => {
		await dns.start([
			/* a.test: an A record and nothing else. */
			`host-record=a.test,${A_ADDR}`,
			/* b.test: SRV with the default port, the server's A record. */
			`srv-host=_sip._udp.b.test,${B_NAME},5060,10,10`,
			`host-record=${B_NAME},${B_ADDR}`,
			/* n.test (served by B): NAPTR to an SRV name nothing
			 * else leads to. */
			`naptr-record=n.test,10,10,s,SIP+D2U,,_sip._udp.naptr.n.test`,
			`srv-host=_sip._udp.naptr.n.test,${B_NAME},5060,10,10`,
			/* c.test (served by B): first an address where nothing
			 * listens on 5060, then B. */
			`srv-host=_sip._udp.c.test,dead.c.test,5060,10,10`,
			`host-record=dead.c.test,${DEAD_ADDR}`,
			`srv-host=_sip._udp.c.test,sip.b.test,5060,20,10`,
			/* v6.test (served by B): an AAAA record, nothing else. */
			`host-record=v6.test,${B_ADDR6}`,
		]);
	});
	after(() => dns.stop());

	/* A.test() with B's and dnsmasq's logs in the failure report too:
	 * every test crosses both clusters. */
	function test(name, fn) {
		A.test(name, async (t) => {
			const since = Date.now();
			A.evidence.push({ label: `cluster ${B.name}`, get text() { return B.processReport(since); } });
			A.evidence.push({ label: 'dnsmasq', get text() { return dns.proc.tail(since); } });
			await fn(t);
			B.assertAlive();
		});
	}

	/* Waits for dnsmasq to log a query (its line may come after the
	 * answer). */
	function asked(type, name) {
		return waitUntil(() => dns.queries(type, name) >= 1, 2000, `dnsmasq to log query[${type}] ${name}`);
	}

	/* A Node UA registered as user@domain on cluster c. */
	/* The Record-Route lines of a message's text. */
	function recordRoutes(text) {
		return text.split(/\r?\n/).filter((l) => /^Record-Route:/i.test(l)).join('\n');
	}

	/* Both clusters' Record-Route, each naming what it advertises (A
	 * its address, B its name) with the port left out (5060, the
	 * default) or 5060. */
	function assertBothRecordRoutes(rr, what) {
		for (const host of [A_ADDR, B_NAME])
			assert.match(rr, new RegExp(`sip:${host.replace(/\./g, '\\.')}(:5060)?[;>]`),
				`${what}: Record-Route of the cluster ${host} (${rr || 'none'})`);
	}

	test('the DNS is as published: a.test has only an A record, b.test an SRV naming 5060', async () => {
		const alice = await registeredUser(A, 'alice', 'a.test');
		const bob = await registeredUser(B, 'bob', 'b.test');
		/* B -> A: B asks NAPTR, SRV, then falls back to a.test's A record. */
		const r = await message(bob.ua, B.edge(), alice.user, 'a.test', { from: bob.aor, timeout: 8000 });
		assert.equal(r.status, 200, `MESSAGE to ${alice.aor} got ${r.status} ${r.reason}`);
		await asked('SRV', '_sip._udp.a.test');
		await asked('A', 'a.test');
		const r2 = await message(alice.ua, A.edge(), bob.user, 'b.test', { from: alice.aor, timeout: 8000 });
		assert.equal(r2.status, 200, `MESSAGE to ${bob.aor} got ${r2.status} ${r2.reason}`);
		/* A asked through /etc/resolv.conf: nothing in its config. */
		await asked('SRV', '_sip._udp.b.test');
	});

	test('MESSAGE from a.test to b.test and back, each crossing both clusters on port 5060', async () => {
		const alice = await registeredUser(A, 'alice2', 'a.test');
		const bob = await registeredUser(B, 'bob2', 'b.test');
		for (const [from, to, edge] of [[alice, bob, A.edge()], [bob, alice, B.edge()]]) {
			const body = `hello ${to.user} ${rand(6)}`;
			const r = await message(from.ua, edge, to.user, to.aor.split('@')[1], { from: from.aor, body, timeout: 8000 });
			assert.equal(r.status, 200, `MESSAGE ${from.aor} -> ${to.aor} got ${r.status} ${r.reason}`);
			const got = to.ua.requests.filter((q) => q.method === 'MESSAGE');
			assert.equal(got.length, 1, `${to.aor} received the MESSAGE once`);
			assert.equal(got[0].body.toString('latin1'), body);
			const vias = got[0].all('via').join('\n');
			for (const host of [A_ADDR, B_NAME])
				assert.match(vias, new RegExp(host.replace(/\./g, '\\.')), `a Via of the cluster ${host}`);
		}
	});

	/* A sipp call from caller@from through src to a sipp callee
	 * registered on dst as user@to; asserts both Record-Routes. */
	async function sippCall(src, dst, from, to, uas, uac, o) {
		const t0 = Date.now();
		const { rr } = await crossDomainCall(src, dst, from, to, uas, uac, o);
		assertBothRecordRoutes(rr, 'the 200 to the INVITE');
		console.log(`# ${from} -> ${to} (${uac} / ${uas}) in ${Date.now() - t0} ms: ${rr.replace(/\s*\n\s*/g, ' | ')}`);
	}

	/* A's requests towards B in these dialogs follow a Route naming
	 * sip.b.test: A locates it. */
	test('a call from a.test to b.test, BYE from the caller through both clusters', async () => {
		await sippCall(A, B, 'a.test', 'b.test', 'uas_call.xml', 'uac_call.xml');
	});

	test('a call from a.test to b.test, BYE from the callee through both clusters', async () => {
		await sippCall(A, B, 'a.test', 'b.test', 'uas_call_bye.xml', 'uac_call_bye.xml');
	});

	test('a call from b.test to a.test, BYE from the caller through both clusters', async () => {
		await sippCall(B, A, 'b.test', 'a.test', 'uas_call.xml', 'uac_call.xml');
	});

	test('a call from b.test to a.test, BYE from the callee through both clusters', async () => {
		await sippCall(B, A, 'b.test', 'a.test', 'uas_call_bye.xml', 'uac_call_bye.xml');
	});

	test('re-INVITE across domains, either way, from caller and callee: ACK, re-INVITE and BYE along the named Route', async () => {
		for (const [src, dst, from, to] of [[A, B, 'a.test', 'b.test'], [B, A, 'b.test', 'a.test']]) {
			await sippCall(src, dst, from, to, 'nat_uas_answer.xml', 'nat_uac_reinvite_bye.xml', { contact: true });
			await sippCall(src, dst, from, to, 'nat_uas_reinvite_bye.xml', 'nat_uac_answer.xml', { contact: true });
		}
		await asked('A', B_NAME);
	});

	test('n.test published by NAPTR: the MESSAGE follows it to its SRV name, then to B', async () => {
		const alice = await registeredUser(A, 'alice7', 'a.test');
		const nina = await registeredUser(B, 'nina', 'n.test');
		const t0 = Date.now();
		const r = await message(alice.ua, A.edge(), nina.user, 'n.test', { from: alice.aor, timeout: 8000 });
		assert.equal(r.status, 200, `MESSAGE to ${nina.aor} got ${r.status} ${r.reason}`);
		assert.equal(nina.ua.distinctRequests((q) => q.method === 'MESSAGE').length, 1, 'nina got it');
		/* Only the NAPTR's answer names this SRV. */
		await asked('NAPTR', 'n.test');
		await asked('SRV', '_sip._udp.naptr.n.test');
		assert.equal(dns.queries('SRV', '_sip._udp.n.test'), 0, 'A fell back to SRV: the NAPTR was not followed');
		console.log(`# MESSAGE to n.test through NAPTR -> SRV -> A: 200 in ${Date.now() - t0} ms`);
	});

	/* A host in a regular expression; an IPv6 address in brackets. */
	const hostRe = (h) => (h.includes(':') ? `\\[${h}\\]` : h.replace(/\./g, '\\.'));

	test('v6.test has only an AAAA record: a MESSAGE from a.test reaches its user over IPv6', async () => {
		const alice = await registeredUser(A, 'alice8', 'a.test');
		const vic = await registeredUser(B, 'vic', 'v6.test');
		const body = `over v6 ${rand(6)}`;
		const t0 = Date.now();
		const r = await message(alice.ua, A.edge(), vic.user, 'v6.test', { from: alice.aor, body, timeout: 8000 });
		assert.equal(r.status, 200, `MESSAGE to ${vic.aor} got ${r.status} ${r.reason}`);
		const got = vic.ua.requests.filter((q) => q.method === 'MESSAGE');
		assert.equal(got.length, 1, `${vic.aor} received the MESSAGE once`);
		assert.equal(got[0].body.toString('latin1'), body);
		/* A's IPv6 edge sent it (its Via), B's IPv6 edge received it
		 * from that address. */
		const vias = got[0].all('via');
		const v6via = vias.find((v) => new RegExp(`^SIP/2\\.0/UDP ${hostRe(A_ADDR6)}:5060;`).test(v));
		assert.ok(v6via, `a Via of A's IPv6 edge: ${vias.join(' | ')}`);
		await asked('AAAA', 'v6.test');
		console.log(`# MESSAGE to v6.test (AAAA ${B_ADDR6}): 200 in ${Date.now() - t0} ms; Via ${v6via}`);
	});

	test('a call from a.test to v6.test over IPv6, BYE from the caller, then from the callee', async () => {
		for (const [uas, uac] of [['uas_call.xml', 'uac_call.xml'], ['uas_call_bye.xml', 'uac_call_bye.xml']]) {
			const t0 = Date.now();
			const { rr } = await crossDomainCall(A, B, 'a.test', 'v6.test', uas, uac);
			/* Each cluster double Record-Routes: its IPv4 edge facing
			 * its user, its IPv6 edge facing the other cluster. */
			for (const host of [A_ADDR6, B_ADDR6, A_ADDR, B_NAME])
				assert.match(rr, new RegExp(`sip:${hostRe(host)}(:5060)?[;>]`), `Record-Route of ${host} (${rr})`);
			console.log(`# a.test -> v6.test (${uac} / ${uas}) in ${Date.now() - t0} ms: ${rr.replace(/\s*\n\s*/g, ' | ')}`);
		}
	});

	/* dnsmasq's log lines so far about name (any type, SRV names too). */
	const dnsAbout = (name) => dns.proc.lines.filter((l) => l.s.includes(`${name} from`)).length;

	/* B's own name (what it advertises) and addresses (IPv4 with and
	 * without the port, IPv6) are local at B: never located by DNS, no
	 * loop, delivered from B's location store, each as a domain of its
	 * own.  A locates them as it does any other host. */
	test('B\'s own name and addresses are local at B, each a domain of its own: delivered from a.test and from b.test', async () => {
		const alice = await registeredUser(A, 'alice9', 'a.test');
		const bob = await registeredUser(B, 'bob9', 'b.test');
		/* Phones that register with the server's name or address as
		 * their domain. */
		const own = [
			{ ...(await registeredUser(B, 'carol', B_NAME)), hosts: [B_NAME, `${B_NAME}:5060`] },
			{ ...(await registeredUser(B, 'dave', B_ADDR)), hosts: [B_ADDR, `${B_ADDR}:5060`] },
			{ ...(await registeredUser(B, 'erin', `[${B_ADDR6}]`)), hosts: [`[${B_ADDR6}]`, `[${B_ADDR6}]:5060`] },
		];
		const dnsBefore = dnsAbout(B_NAME);
		let n = 0;
		/* B's user first: nothing from A meanwhile, so B asked the DNS
		 * nothing about its name if dnsmasq logged nothing about it. */
		for (const [from, edge] of [[bob, B.edge()], [alice, A.edge()]]) {
			for (const to of own)
				for (const host of to.hosts) {
					const body = `to ${to.user}@${host} ${rand(6)}`;
					const r = await message(from.ua, edge, to.user, host, { from: from.aor, body, timeout: 8000 });
					assert.equal(r.status, 200, `MESSAGE ${from.aor} -> sip:${to.user}@${host} got ${r.status} ${r.reason}`);
					await to.ua.waitRequest((m) => m.method === 'MESSAGE' && m.body.toString('latin1') === body, 2000, body);
					n++;
				}
			if (from === bob)
				assert.equal(dnsAbout(B_NAME), dnsBefore, `B looked its own name ${B_NAME} up`);
		}
		/* The own name is not another name for b.test: bob9 is
		 * bob9@b.test only, and the answer is B's 404, not a loop (483)
		 * or a relay refusal (403). */
		for (const [from, edge] of [[bob, B.edge()], [alice, A.edge()]])
			for (const host of [B_NAME, B_ADDR]) {
				const r = await message(from.ua, edge, bob.user, host, { from: from.aor, timeout: 8000 });
				assert.equal(r.status, 404, `MESSAGE ${from.aor} -> sip:${bob.user}@${host} got ${r.status} ${r.reason}`);
			}
		assert.equal(bob.ua.requests.filter((q) => q.method === 'MESSAGE').length, 0, 'bob9@b.test got nothing');
		console.log(`# ${n} MESSAGEs to B's own name and addresses delivered (200); to bob9 at them 404`);
	});

	/* A Route value as a peer that leaves out the default port (Kamailio
	 * does on 5060) would have written it. */
	const portless = (r) => r.replace(/(sip:(?:[^@;>]+@)?[^:;>@]+):5060([;>])/, '$1$2');

	test('in-dialog requests along Route values without the port (5060 by default) cross both clusters', async () => {
		const alice = await registeredUser(A, 'alice3', 'a.test');
		const bob = await registeredUser(B, 'bob3', 'b.test');
		const callId = `${rand(10)}@integ`;
		const ok = await alice.ua.send(A.edge(), {
			method: 'INVITE', ruri: bob.aor, from: alice.aor, fromTag: 'caller', to: bob.aor, callId,
			contact: [`<${alice.ua.contactUri(alice.user)}>`],
			body: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n',
			contentType: 'application/sdp',
		}, 8000);
		assert.equal(ok.status, 200, `INVITE to ${bob.aor} got ${ok.status} ${ok.reason}`);
		const rrs = ok.list('record-route');
		assertBothRecordRoutes(rrs.map((r) => `Record-Route: ${r}`).join('\n'), 'the 200');
		const bare = rrs.map(portless);
		assert.ok(bare.every((r, i) => r !== rrs[i]), `every Record-Route named port 5060: ${rrs}`);
		const toTag = /;\s*tag=([^;>\s]+)/i.exec(ok.get('to'))[1];
		const bobContact = /<([^>]+)>/.exec(ok.get('contact'))[1];
		const dlg = { from: alice.aor, fromTag: 'caller', to: bob.aor, toTag, callId };
		alice.ua.request(A.edge(), {
			...dlg, method: 'ACK', ruri: bobContact, cseq: 1, retransmit: false,
			headers: [...bare].reverse().map((r) => ['Route', r]),
		});
		const inv = await bob.ua.waitRequest((m) => m.method === 'INVITE', 1000, 'the INVITE');
		await bob.ua.waitRequest((m) => m.method === 'ACK', 5000, 'the ACK along port-less Routes');
		/* The callee hangs up, along its own route set without ports. */
		const aliceContact = /<([^>]+)>/.exec(inv.get('contact'))[1];
		const bye = await bob.ua.send(B.edge(), {
			method: 'BYE', ruri: aliceContact, from: bob.aor, fromTag: toTag, to: alice.aor, toTag: 'caller',
			callId, cseq: 1, headers: inv.list('record-route').map(portless).map((r) => ['Route', r]),
		}, 8000);
		assert.equal(bye.status, 200, `the callee's BYE along port-less Routes got ${bye.status} ${bye.reason}`);
		assert.equal(alice.ua.distinctRequests((q) => q.method === 'BYE').length, 1, 'the caller got the BYE');
	});

	test('first SRV target an address where nothing listens on 5060: the MESSAGE goes to the next at once', async () => {
		const alice = await registeredUser(A, 'alice5', 'a.test');
		const bob = await registeredUser(B, 'bob5', 'c.test');
		const t0 = Date.now();
		const r = await message(alice.ua, A.edge(), bob.user, 'c.test', { from: alice.aor, timeout: 10000 });
		const ms = Date.now() - t0;
		assert.equal(r.status, 200, `MESSAGE to ${bob.aor} got ${r.status} ${r.reason}`);
		assert.ok(ms < FAILOVER_MS, `answered in ${ms} ms: not at once on the ICMP error, failover_ms is ${FAILOVER_MS}`);
		assert.equal(bob.ua.distinctRequests((q) => q.method === 'MESSAGE').length, 1, 'bob got it');
		const tried = new RegExp(`target ${DEAD_ADDR.replace(/\./g, '\\.')}:5060/udp failed`);
		assert.ok(A.procs.some((p) => p.lines.some((l) => l.t >= t0 && tried.test(l.s))), `no core logged ${tried}`);
		console.log(`# dead first target ${DEAD_ADDR}:5060: 200 in ${ms} ms`);
	});

	test('an unknown domain gets 404 at once, through /etc/resolv.conf', async () => {
		const alice = await registeredUser(A, 'alice6', 'a.test');
		const nx = `nx-${rand(4)}.test`;
		const t0 = Date.now();
		const r = await message(alice.ua, A.edge(), 'nobody', nx, { from: alice.aor, timeout: 8000 });
		assert.equal(r.status, 404, `MESSAGE to ${nx} got ${r.status} ${r.reason}`);
		assert.ok(Date.now() - t0 < 1000, `404 took ${Date.now() - t0} ms`);
		/* dnsmasq's log line may come after the answer. */
		await waitUntil(() => dns.proc.lines.some((l) => l.s.includes(`] ${nx} from`) || l.s.includes(`.${nx} from`)),
			2000, `dnsmasq to log a query about ${nx}`);
	});

	test('foreign to foreign straight to either edge: 403, nothing leaves', async () => {
		for (const c of [A, B]) {
			const ua = await c.ua(`relayer-${c.name}`);
			const before = dns.proc.lines.length;
			const victim = `sip:victim@${c === A ? 'b.test' : 'a.test'}`;
			for (const from of ['sip:spam@d.test', victim.replace('victim', 'spoof')]) {
				const r = await ua.send(c.edge(), {
					method: 'MESSAGE', ruri: 'sip:victim@e.test', from, to: 'sip:victim@e.test',
					body: 'relay?', contentType: 'text/plain',
				}, 8000);
				assert.equal(r.status, 403, `${c.name}: MESSAGE ${from} -> e.test got ${r.status} ${r.reason}`);
			}
			assert.ok(!dns.proc.lines.slice(before).some((l) => /e\.test/.test(l.s)),
				`${c.name} looked e.test up: a relay was attempted`);
		}
	});

	/* A SIP.js user over WebSocket on A (a.test), or on B (b.test),
	 * stopped at the end of the test. */
	async function wsUser(label, onB = false) {
		const [domain, addr] = onB ? ['b.test', B_ADDR] : ['a.test', A_ADDR];
		const u = await SipJsUA.open({ user: `${label}-${rand(3)}`, domain, server: `ws://${addr}:${WS_PORT}` });
		A.own(u);
		A.evidence.push({ label: `SIP.js ${u.aor} log`, get text() { return u.log.join('\n'); } });
		return u;
	}

	test('WebSocket user on a.test and UDP user on b.test: MESSAGE both ways', async () => {
		const ws = await wsUser('wsmsg');
		const bob = await registeredUser(B, 'bob3', 'b.test');
		const there = `to udp ${rand(6)}`;
		assert.equal(await ws.message(bob.aor, there), 200, `SIP.js MESSAGE to ${bob.aor}`);
		const got = bob.ua.requests.filter((q) => q.method === 'MESSAGE');
		assert.equal(got.length, 1, 'the UDP user received it once');
		assert.equal(got[0].body.toString('latin1'), there);
		const back = `to ws ${rand(6)}`;
		const r = await message(bob.ua, B.edge(), ws.user, 'a.test', { from: bob.aor, body: back, timeout: 8000 });
		assert.equal(r.status, 200, `MESSAGE to ${ws.aor} got ${r.status} ${r.reason}`);
		await ws.waitMessage(back);
	});

	test('WebSocket user on b.test and sipp UDP users on a.test: MESSAGE both ways', async () => {
		const ws = await wsUser('wsb', true);
		const u = `sippmsg-${rand(3)}`;
		const uas = await startUas(A, { user: u, domain: 'a.test', scenario: 'uas_message.xml', calls: 1 });
		assert.equal(await ws.message(`sip:${u}@a.test`, `hello sipmesh from ${ws.aor}`), 200,
			`SIP.js MESSAGE to sip:${u}@a.test`);
		assertOk(await uas.wait(10000), 'the sipp UDP user on a.test got the MESSAGE');
		const uac = await runSipp(A, {
			scenario: 'uac_message.xml', dest: A.edge(), service: ws.user,
			keys: { sm_domain: 'b.test', sm_from_domain: 'a.test' },
		});
		assertOk(uac, 'the sipp UDP sender on a.test');
		await ws.waitFor(() => ws.messages.some((m) => /^hello sipmesh/.test(m.body)), 3000, 'MESSAGE from sipp');
	});

	test('WebSocket user on a.test calls a UDP user on b.test, and hangs up', async () => {
		const ws = await wsUser('wscall');
		const u = `udpcallee-${rand(3)}`;
		const callee = await startUas(B, { user: u, domain: 'b.test', scenario: 'uas_call.xml', timeout: 20 });
		const inv = await ws.invite(`sip:${u}@b.test`);
		assertBothRecordRoutes(inv.dialog ? inv.dialog.routeSet.map((x) => `Record-Route: ${x}`).join('\n') : '',
			'the SIP.js caller\'s route set');
		await ws.bye(inv);
		const res = await callee.wait(10000);
		assertOk(res, 'the UDP callee (INVITE, ACK, BYE)');
	});

	test('a UDP user on b.test calls the WebSocket user on a.test, who is hung up on', async () => {
		const ws = await wsUser('wsans');
		const caller = await runSipp(B, {
			scenario: 'uac_call.xml', dest: B.edge(), service: ws.user,
			keys: { sm_domain: 'a.test', sm_from_domain: 'b.test' }, timeout: 20,
		});
		assertOk(caller, 'the UDP caller (INVITE, ACK, BYE)');
		const ok = caller.parsed.find((m) => m.dir === 'received' && /^SIP\/2\.0 200/.test(m.text) && /INVITE/.test(m.text));
		assert.ok(ok, 'the caller received a 200 for its INVITE');
		assertBothRecordRoutes(recordRoutes(ok.text), 'the 200 from the WebSocket user');
		await ws.waitFor(() => ws.byes.length === 1, 5000, 'the BYE');
	});
});
