'use strict';
/*
 * 82 federation with Kamailio (issue 11): a.test is a sipmesh cluster,
 * b.test a real Kamailio from Debian (tests/integ/kamailio/b-test.cfg:
 * in-memory registrar, Record-Route, no auth).  Each finds the other
 * only through DNS: one dnsmasq serves the SRV records of both domains;
 * sipmesh reads it through [federation] dns_servers, Kamailio through
 * its own resolver (glibc's, /etc/resolv.conf in a mount namespace of
 * its own, see lib/kamailio.js: that resolver takes no port, so the
 * dnsmasq listens on port 53 of a loopback address of its own).
 * Nothing in either configuration names the other domain's server.
 * Users: Node UAs for MESSAGE, sipp for calls, registered on their own
 * side; a call with BYE from the caller and one with BYE from the
 * callee, each way, both proxies' Record-Route in the 200.
 */
const assert = require('node:assert/strict');
const { describe, before, after } = require('node:test');
const { cluster, freePort, rand, HOST } = require('./lib/cluster');
const { message, registeredUser } = require('./lib/flows');
const { crossDomainCall } = require('./lib/sipp');
const { Dnsmasq } = require('./lib/dnsmasq');
const { Kamailio, dnsAddress } = require('./lib/kamailio');

describe('82 federation with Kamailio', () => {
	const dns = new Dnsmasq(53, dnsAddress());
	const kam = new Kamailio('b-test.cfg', dns.host);
	const fed = () => ({ federation: { dns_servers: dns.addr, failover_ms: 2000, blocklist_s: 60 } });

	const A = cluster({ name: '82-federation-kamailio', cores: 1, registrar: { domains: 'a.test' }, sections: fed });
	before(async () => {
		await kam.start();
		await dns.start([
			`host-record=edge.a.test,${HOST}`,
			`host-record=sip.b.test,${HOST}`,
			`srv-host=_sip._udp.a.test,edge.a.test,${A.edge().port},10,10`,
			`srv-host=_sip._udp.b.test,sip.b.test,${kam.port},10,10`,
		]);
	}, { timeout: 20000 });
	after(async () => {
		const problem = await kam.stop();
		await dns.stop();
		assert.equal(problem, null, `Kamailio: ${problem}`);
	});

	/* The sipp helpers' view of b.test: its registrar/proxy, with the
	 * cluster's bookkeeping (evidence, per-test cleanup). */
	const B = {
		get dir() { return A.dir; },
		edge: () => kam.edge(),
		own: (p) => A.own(p),
		addEvidence: (l, t) => A.addEvidence(l, t),
	};

	/* A.test with Kamailio's log in the failure report. */
	function test(name, fn) {
		A.test(name, async () => {
			const t0 = Date.now();
			try {
				await fn();
			} finally {
				A.addEvidence(`${kam.proc.name} log during this test`, kam.tail(t0));
				A.addEvidence('dnsmasq log during this test', dns.proc.tail(t0));
			}
		});
	}

	test('MESSAGE from alice@a.test (sipmesh) to bob@b.test (Kamailio): 200, delivered once', async () => {
		const alice = await registeredUser(A, 'alice', 'a.test');
		const bob = await registeredUser(A, 'bob', 'b.test', kam.edge());
		const body = `hello bob ${rand(6)}`;
		const t0 = Date.now();
		const r = await message(alice.ua, A.edge(), bob.user, 'b.test', { from: alice.aor, body, timeout: 8000 });
		const ms = Date.now() - t0;
		assert.equal(r.status, 200, `MESSAGE to ${bob.aor} got ${r.status} ${r.reason}`);
		const got = bob.ua.requests.filter((q) => q.method === 'MESSAGE');
		assert.equal(got.length, 1, 'bob received the MESSAGE once');
		assert.equal(got[0].body.toString('latin1'), body);
		const vias = got[0].all('via').join('\n');
		assert.match(vias, new RegExp(`${HOST}:${kam.port}\\b`), 'Kamailio\'s Via');
		assert.match(vias, new RegExp(`:${A.edge().port}\\b`), 'sipmesh\'s Via');
		assert.ok(dns.queries('SRV', '_sip._udp.b.test') >= 1, 'sipmesh looked up b.test\'s SRV');
		console.log(`# MESSAGE sipmesh a.test -> Kamailio b.test: 200 in ${ms} ms`);
	});

	test('MESSAGE from carol@b.test (Kamailio) to dave@a.test (sipmesh): Kamailio finds a.test by DNS, 200', async () => {
		const dave = await registeredUser(A, 'dave', 'a.test');
		const carol = await registeredUser(A, 'carol', 'b.test', kam.edge());
		const body = `hello dave ${rand(6)}`;
		const t0 = Date.now();
		const r = await message(carol.ua, kam.edge(), dave.user, 'a.test', { from: carol.aor, body, timeout: 8000 });
		const ms = Date.now() - t0;
		assert.equal(r.status, 200, `MESSAGE to ${dave.aor} got ${r.status} ${r.reason}`);
		const got = dave.ua.requests.filter((q) => q.method === 'MESSAGE');
		assert.equal(got.length, 1, 'dave received the MESSAGE once');
		assert.equal(got[0].body.toString('latin1'), body);
		assert.match(got[0].all('via').join('\n'), new RegExp(`${HOST}:${kam.port}\\b`), 'it came through Kamailio');
		assert.ok(dns.queries('SRV', '_sip._udp.a.test') >= 1, 'Kamailio looked up a.test\'s SRV');
		console.log(`# MESSAGE Kamailio b.test -> sipmesh a.test: 200 in ${ms} ms`);
	});

	test('the peer is no open relay either: Kamailio refuses d.test -> a.test with 403', async () => {
		/* A sanity check of the peer's config, so that the tests above
		 * show routing by DNS, not a catch-all: a From of another domain
		 * is refused by Kamailio. */
		const ua = await A.ua('relayer');
		const r = await message(ua, kam.edge(), 'x', 'a.test', { from: 'sip:spam@d.test', timeout: 8000 });
		assert.equal(r.status, 403, `Kamailio relayed d.test -> a.test: ${r.status} ${r.reason}`);
	});

	/* A sipp call from caller@from through src's server to a sipp callee
	 * registered as callee-xxx@to on dst; asserts both proxies'
	 * Record-Route in the caller's 200. */
	async function call(src, dst, from, to, uas, uac) {
		const { caller, callee: calleeRes, rr } = await crossDomainCall(src, dst, from, to, uas, uac);
		for (const [name, port] of [['sipmesh', A.edge().port], ['Kamailio', kam.port]])
			assert.match(rr, new RegExp(`${HOST}:${port}[;>]`), `Record-Route of ${name} in the 200 (${rr})`);
		/* The BYE crossed both: the callee (or caller) got it through
		 * the route set, and each side answered it 200. */
		const byes = [caller, calleeRes].map((x) => x.parsed.filter((m) => /^BYE /.test(m.text)).length);
		assert.ok(byes[0] >= 1 && byes[1] >= 1, `BYE seen by caller and callee (${byes})`);
	}

	test('call a.test -> b.test, BYE from the caller through sipmesh and Kamailio', async () => {
		await call(A, B, 'a.test', 'b.test', 'uas_call.xml', 'uac_call.xml');
	});

	test('call a.test -> b.test, BYE from the callee through Kamailio and sipmesh', async () => {
		await call(A, B, 'a.test', 'b.test', 'uas_call_bye.xml', 'uac_call_bye.xml');
	});

	test('call b.test -> a.test, BYE from the caller through Kamailio and sipmesh', async () => {
		await call(B, A, 'b.test', 'a.test', 'uas_call.xml', 'uac_call.xml');
	});

	test('call b.test -> a.test, BYE from the callee through sipmesh and Kamailio', async () => {
		await call(B, A, 'b.test', 'a.test', 'uas_call_bye.xml', 'uac_call_bye.xml');
	});
});
