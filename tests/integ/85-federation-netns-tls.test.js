'use strict';
/*
 * 85 federation over TLS in a network namespace (issue 11): the setup
 * of 84 (each cluster on an address of its own inside a namespace that
 * holds only loopback, the standard ports, a dnsmasq on port 53 named
 * by /etc/resolv.conf, lib/netns.js), now with TLS between the domains
 * and media anchored on each side.
 *
 * Three clusters, UDP on 5060 and TLS on 5061 each, every one publishing
 * only `_sips._tcp` SRV records (b.test behind a NAPTR SIPS+D2T record
 * too): a.test on 127.0.1.1, b.test on 127.0.2.1, c.test on 127.0.3.1.
 * A's and B's certificates (one test CA, trusted by all) name their
 * domain as a dNSName SAN plus the edge's address as an IP SAN (their
 * Record-Route names it: in-dialog requests come back there, README
 * "Federation"); each requires the other to prove its domain with a
 * client certificate ([federation] tls_client_cert_domains).  C's
 * certificate names b.test, not c.test: a server that is not c.test's.
 * A and B anchor media, each on an rtpengine of its own on its own
 * address (cluster({ media: { host } })).
 *
 * What it shows:
 *   - MESSAGE from a.test to b.test and back over TLS, and calls both
 *     ways with BYE through both clusters' TLS Record-Route; the
 *     namespace's packet counters (iptables rules that only count) see
 *     TLS on 5061 between the clusters and not one UDP packet between
 *     127.0.1.1 and 127.0.2.1 on 5060; From b.test over UDP, A answers
 *     403;
 *   - a MESSAGE from a.test to c.test is refused in the handshake: 502
 *     with a Warning naming c.test, tls_peer_refused on A's edge, and
 *     C's edge receives no SIP message;
 *   - a call between the domains is anchored per side: the SDP A's
 *     phone receives names A's rtpengine (c=127.0.1.1, a port of its
 *     range), the SDP B's phone receives names B's (127.0.2.1), and
 *     after the BYE neither rtpengine holds a session (ng list); RTP
 *     from A's phone (0.5 s of a pcap) goes phone -> A's rtpengine ->
 *     B's rtpengine -> B's phone, which echoes it back the same way:
 *     each rtpengine counts packets from its own phone and from the
 *     other rtpengine's address.
 */
const { reexecWithResolver, RESOLVER_ADDR } = require('./lib/netns');
if (!reexecWithResolver(__filename)) return;

const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const { describe, before, after } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { message, registeredUser } = require('./lib/flows');
const { crossDomainCall, startSipp, startUas, assertOk } = require('./lib/sipp');
const { Dnsmasq } = require('./lib/dnsmasq');
const { testCa } = require('./lib/pki');

const A_ADDR = '127.0.1.1';
const B_ADDR = '127.0.2.1';
const C_ADDR = '127.0.3.1';
const TLS_PORT = 5061;
const PCAP = '/usr/share/sip-tester/g711a.pcap';	/* played by media_uac_rtp.xml */
const MIN_PACKETS = 25;	/* 0.5 s of 20 ms packets: media flows, not a stray packet */
const re = (s) => new RegExp(s.replace(/\./g, '\\.'));

/*
 * Packet counters of the namespace: iptables INPUT rules without a
 * target only count what they match (every packet on lo passes INPUT).
 * UDP from one cluster's address to the other's port 5060 (an edge's
 * UDP socket is bound to its address), and TCP to or from port 5061
 * (only the clusters use it: the phones speak UDP).
 */
const RULES = {
	udpAtoB: ['-p', 'udp', '-s', A_ADDR, '-d', B_ADDR, '--dport', '5060'],
	udpBtoA: ['-p', 'udp', '-s', B_ADDR, '-d', A_ADDR, '--dport', '5060'],
	tlsTo: ['-p', 'tcp', '--dport', String(TLS_PORT)],
	tlsFrom: ['-p', 'tcp', '--sport', String(TLS_PORT)],
};
const iptables = (...args) => execFileSync('iptables', ['-w', ...args], { encoding: 'utf8' });

/* {rule name: {pkts, bytes}} now. */
function counters() {
	const rows = iptables('-L', 'INPUT', '-n', '-v', '-x').split('\n').slice(2).filter((l) => l.trim());
	const names = Object.keys(RULES);
	assert.equal(rows.length, names.length, `INPUT has the test's rules only:\n${rows.join('\n')}`);
	const out = {};
	rows.forEach((l, i) => {
		const [pkts, bytes] = l.trim().split(/\s+/).map(Number);
		out[names[i]] = { pkts, bytes };
	});
	return out;
}

describe('85 federation over TLS in a network namespace, media per side', () => {
	const { ca, leaf } = testCa();
	const pki = {
		a: leaf('a', 'a.test', `DNS:a.test,IP:${A_ADDR}`),
		b: leaf('b', 'b.test', `DNS:b.test,IP:${B_ADDR}`),
		/* Right CA, wrong domain: not c.test's certificate. */
		c: leaf('c', 'b.test', `DNS:b.test,IP:${C_ADDR}`),
	};
	const dns = new Dnsmasq(53, RESOLVER_ADDR);
	/* A cluster on addr:5060 (UDP, TCP) and addr:5061 (TLS) with cred. */
	const domainCluster = (name, addr, domain, cred, peers, media) => cluster({
		name, cores: 1, host: addr, port: 5060, registrar: { domains: domain },
		edge: { tls_cert: cred.certPath, tls_key: cred.keyPath, tls_ca: ca },
		edgeKeys: () => ({ tls: `${addr}:${TLS_PORT}` }),
		sections: () => ({ federation: { failover_ms: 2000, ...(peers ? { tls_client_cert_domains: peers } : {}) } }),
		...(media ? { media: { rtpengines: 1, rtpctls: 1, host: addr } } : {}),
	});
	const A = domainCluster('85-netns-tls-a', A_ADDR, 'a.test', pki.a, 'b.test', true);
	const B = domainCluster('85-netns-tls-b', B_ADDR, 'b.test', pki.b, 'a.test', true);
	const C = domainCluster('85-netns-tls-c', C_ADDR, 'c.test', pki.c, null, false);
	before(async () => {
		for (const r of Object.values(RULES)) iptables('-A', 'INPUT', ...r);
		await dns.start([
			/* a.test: `_sips._tcp` SRV only. */
			`srv-host=_sips._tcp.a.test,sip.a.test,${TLS_PORT},10,10`,
			`host-record=sip.a.test,${A_ADDR}`,
			/* b.test: NAPTR SIPS+D2T, then the SRV it names. */
			'naptr-record=b.test,10,10,S,SIPS+D2T,,_sips._tcp.b.test',
			`srv-host=_sips._tcp.b.test,sip.b.test,${TLS_PORT},10,10`,
			`host-record=sip.b.test,${B_ADDR}`,
			/* c.test: a server whose certificate is b.test's. */
			`srv-host=_sips._tcp.c.test,sip.c.test,${TLS_PORT},10,10`,
			`host-record=sip.c.test,${C_ADDR}`,
		]);
	});
	after(() => dns.stop());

	/* A.test() with B's, C's and dnsmasq's logs in the failure report. */
	function test(name, fn) {
		A.test(name, async (t) => {
			const since = Date.now();
			for (const c of [B, C])
				A.evidence.push({ label: `cluster ${c.name}`, get text() { return c.processReport(since); } });
			A.evidence.push({ label: 'dnsmasq', get text() { return dns.proc.tail(since); } });
			A.evidence.push({ label: 'iptables INPUT', get text() { return iptables('-L', 'INPUT', '-n', '-v', '-x'); } });
			await fn(t);
			B.assertAlive();
			C.assertAlive();
		});
	}

	/* Runs fn, then asserts that between its start and end TLS packets
	 * crossed on 5061 and no UDP packet between the clusters on 5060;
	 * returns the TLS packets and bytes. */
	async function overTlsOnly(what, fn) {
		const c0 = counters();
		await fn();
		const c1 = counters();
		const d = (k) => ({ pkts: c1[k].pkts - c0[k].pkts, bytes: c1[k].bytes - c0[k].bytes });
		assert.deepEqual([d('udpAtoB').pkts, d('udpBtoA').pkts], [0, 0],
			`${what}: UDP packets on 5060 between ${A_ADDR} and ${B_ADDR} (A->B, B->A)`);
		const tls = { pkts: d('tlsTo').pkts + d('tlsFrom').pkts, bytes: d('tlsTo').bytes + d('tlsFrom').bytes };
		assert.ok(d('tlsTo').pkts > 0 && d('tlsFrom').pkts > 0, `${what}: TCP packets to and from port ${TLS_PORT}: ${JSON.stringify(tls)}`);
		return tls;
	}

	/* Both clusters' TLS Record-Route (their address, port 5061; the
	 * receiving side's with a flow token as its user part). */
	function assertTlsRecordRoutes(rr, what) {
		for (const addr of [A_ADDR, B_ADDR])
			assert.match(rr, re(`[:@]${addr}:${TLS_PORT};transport=tls;`), `${what}: TLS Record-Route of ${addr} (${rr || 'none'})`);
	}

	test('MESSAGE from a.test to b.test and back over mutual TLS (SRV, NAPTR SIPS+D2T): nothing on UDP between the clusters', async (t) => {
		const alice = await registeredUser(A, 'alice', 'a.test');
		const bob = await registeredUser(B, 'bob', 'b.test');
		const pairs = [[alice, bob, A, A_ADDR], [bob, alice, B, B_ADDR]];
		const tls = await overTlsOnly('MESSAGE both ways', async () => {
			for (const [from, to, src, addr] of pairs) {
				const body = `over tls ${rand(6)}`;
				const t0 = Date.now();
				const r = await message(from.ua, src.edge(), to.user, to.aor.split('@')[1], { from: from.aor, body, timeout: 8000 });
				assert.equal(r.status, 200, `MESSAGE ${from.aor} -> ${to.aor} got ${r.status} ${r.reason}`);
				const got = to.ua.requests.filter((q) => q.method === 'MESSAGE');
				assert.equal(got.length, 1, `${to.aor} received it once`);
				assert.equal(got[0].body.toString('latin1'), body);
				assert.match(got[0].all('via').join('\n'), re(`SIP/2.0/TLS ${addr}:${TLS_PORT};`),
					`the cluster on ${addr} sent it on over TLS`);
				t.diagnostic(`${from.aor} -> ${to.aor}: 200 in ${Date.now() - t0} ms`);
			}
		});
		assert.ok(dns.queries('NAPTR', 'b.test') >= 1, 'b.test located through NAPTR');
		assert.ok(dns.queries('SRV', '_sips._tcp.b.test') >= 1, 'then its SIPS+D2T SRV');
		assert.ok(dns.queries('SRV', '_sips._tcp.a.test') >= 1, 'a.test located through _sips._tcp');
		t.diagnostic(`between the clusters: ${tls.pkts} TCP packets (${tls.bytes} bytes) on ${TLS_PORT}, 0 UDP on 5060`);
		/* Mutual: the same request From b.test over UDP, without B's
		 * certificate, is refused and not delivered. */
		const eve = await A.ua('eve');
		const r = await message(eve, A.edge(), alice.user, 'a.test', { from: 'sip:eve@b.test', timeout: 5000 });
		assert.equal(r.status, 403, `From b.test over UDP got ${r.status} ${r.reason}`);
		assert.equal(alice.ua.requests.filter((q) => q.method === 'MESSAGE').length, 1, 'alice got only the one over TLS');
	});

	/* A sipp call from caller@from via src's edge to a callee on dst,
	 * over TLS only between the clusters; returns crossDomainCall's. */
	async function tlsCall(t, src, dst, from, to, uas, uac) {
		let call = null;
		const t0 = Date.now();
		const tls = await overTlsOnly(`call ${from} -> ${to}`, async () => {
			call = await crossDomainCall(src, dst, from, to, uas, uac);
		});
		assertTlsRecordRoutes(call.rr, 'the 200 to the INVITE');
		t.diagnostic(`${from} -> ${to} (${uac}): ${Date.now() - t0} ms, ${tls.pkts} TLS packets, ${tls.bytes} bytes; ` +
			call.rr.replace(/\s*\n\s*/g, ' | '));
		return call;
	}

	test('a call from a.test to b.test over TLS, BYE from the caller through both clusters', async (t) => {
		await tlsCall(t, A, B, 'a.test', 'b.test', 'uas_call.xml', 'uac_call.xml');
	});

	/* {c, port} of the SDP in a message's text (session c= line, first
	 * m=audio). */
	function sdpOf(text, what) {
		const c = /^c=IN IP4 (\S+)/m.exec(text);
		const m = /^m=audio (\d+) /m.exec(text);
		assert.ok(c && m, `${what}: no SDP with c= and m=audio:\n${text}`);
		return { addr: c[1], port: Number(m[1]) };
	}

	/* The SDP one phone received names its own side's rtpengine. */
	function assertAnchored(sdp, side, what) {
		const e = side.rtpengines[0];
		assert.equal(sdp.addr, e.host, `${what}: c= names ${sdp.addr}, not ${side.name}'s rtpengine on ${e.host}`);
		assert.ok(sdp.port >= e.min && sdp.port <= e.max, `${what}: m=audio ${sdp.port} outside ${e.name}'s range ${e.min}-${e.max}`);
	}

	test('a call from b.test to a.test, BYE from the callee: media anchored on each side\'s rtpengine, gone after BYE', async (t) => {
		const { caller, callee } = await tlsCall(t, B, A, 'b.test', 'a.test', 'uas_call_bye.xml', 'uac_call_bye.xml');
		const got = (r, dir, startRe) => {
			const m = r.parsed.find((x) => x.dir === dir && startRe.test(x.text) && /CSeq:\s*1 INVITE/i.test(x.text));
			assert.ok(m, `no ${dir} message matching ${startRe}`);
			return m.text;
		};
		const sent = { offer: sdpOf(got(caller, 'sent', /^INVITE /), 'the offer sent'),
			answer: sdpOf(got(callee, 'sent', /^SIP\/2\.0 200/), 'the answer sent') };
		const toCallee = sdpOf(got(callee, 'received', /^INVITE /), 'the INVITE A\'s phone received');
		const toCaller = sdpOf(got(caller, 'received', /^SIP\/2\.0 200/), 'the 200 B\'s phone received');
		assertAnchored(toCallee, A, 'the offer A\'s phone (the callee) received');
		assertAnchored(toCaller, B, 'the answer B\'s phone (the caller) received');
		const cid = /^Call-ID:\s*(\S+)/mi.exec(got(caller, 'sent', /^INVITE /))[1];
		for (const side of [A, B]) {
			await waitUntil(async () => (await side.ngList(1)).length === 0, 3000,
				`${side.name}'s rtpengine to hold no session after the BYE`);
			assert.equal((await side.ngQuery(1, cid)).result, 'error', `${side.name}'s rtpengine forgot ${cid}`);
		}
		t.diagnostic(`B's phone ${sent.offer.addr}:${sent.offer.port} <-> ${toCaller.addr}:${toCaller.port} (B's rtpengine) ... ` +
			`${toCallee.addr}:${toCallee.port} (A's rtpengine) <-> A's phone ${sent.answer.addr}:${sent.answer.port}; no session left`);
	});

	/* [{from: 'addr:port', packets}] of the RTP streams of an ng query
	 * reply: what the rtpengine received from each endpoint. */
	function rtpIn(q) {
		return Object.values(q.tags || {}).flatMap((tag) => (tag.medias || []).flatMap((m) => m.streams || []))
			.filter((st) => (st.flags || []).includes('RTP') && st.endpoint)
			.map((st) => ({ from: `${st.endpoint.address}:${st.endpoint.port}`, packets: st.stats ? st.stats.packets : 0 }));
	}

	test('RTP from a.test\'s phone to b.test\'s and back crosses both rtpengines, 127.0.1.1 <-> 127.0.2.1', async (t) => {
		assert.ok(fs.existsSync(PCAP), `${PCAP} is missing (package sip-tester)`);
		const user = `echo-${rand(3)}`;
		const callee = await startUas(B, {
			user, domain: 'b.test', scenario: 'media_uas_answer.xml', keys: { sm_name: 'callee' }, args: ['-rtp_echo'],
		});
		const cidPrefix = `rtp85-${rand(4)}`;
		const cid = `${cidPrefix}-1@127.0.0.1`;
		/* The caller talks for 3 s, the callee echoes: each rtpengine
		 * must count packets from its phone and from the other side's
		 * rtpengine by then. */
		const want = { [A.name]: [`127.0.0.1:`, `${B_ADDR}:`], [B.name]: [`${A_ADDR}:`, `127.0.0.1:`] };
		const seen = {};
		const mediaFlows = () => waitUntil(async () => {
			for (const side of [A, B]) {
				const q = await side.ngQuery(1, cid);
				seen[side.name] = q.result === 'ok' ? rtpIn(q) : q.result;
			}
			return [A, B].every((side) => Array.isArray(seen[side.name]) && want[side.name].every((from) =>
				seen[side.name].some((st) => st.from.startsWith(from) && st.packets >= MIN_PACKETS)));
		}, 2800, `${MIN_PACKETS} RTP packets into each rtpengine from its phone and from the other rtpengine`).catch((err) => {
			err.message += `\nlast seen: ${JSON.stringify(seen)}`;
			throw err;
		});
		const tls = await overTlsOnly('the call with RTP', async () => {
			const caller = await startSipp(A, {
				scenario: 'media_uac_rtp.xml', dest: A.edge(), service: user,
				keys: { sm_domain: 'b.test', sm_from_domain: 'a.test' }, args: ['-cid_str', `${cidPrefix}-%u@%s`],
			});
			await mediaFlows();
			const [rc, re2] = [await caller.wait(30000), await callee.wait(30000)];
			assertOk(rc, 'caller on a.test (media_uac_rtp.xml)');
			assertOk(re2, 'callee on b.test (media_uas_answer.xml -rtp_echo)');
		});
		for (const side of [A, B])
			await waitUntil(async () => (await side.ngList(1)).length === 0, 3000, `${side.name}'s rtpengine to hold no session after the BYE`);
		t.diagnostic(Object.entries(seen).map(([n, st]) => `${n}'s rtpengine received ${st.map((x) => `${x.packets} from ${x.from}`).join(', ')}`).join('; ') +
			`; signalling ${tls.pkts} TLS packets, ${tls.bytes} bytes, 0 UDP on 5060`);
	});

	test('a MESSAGE to c.test, whose server proves only b.test: refused before any SIP byte, 502 naming c.test', async (t) => {
		const alice = await registeredUser(A, 'alice-c', 'a.test');
		const refused0 = await A.edgeStat('tls_peer_refused');
		const received0 = await C.edgeStat('received');
		const t0 = Date.now();
		const r = await message(alice.ua, A.edge(), 'carol', 'c.test', { from: alice.aor, timeout: 8000 });
		const ms = Date.now() - t0;
		assert.equal(r.status, 502, `MESSAGE to c.test got ${r.status} ${r.reason}`);
		assert.match(r.get('warning') || '', /c\.test/, `the Warning names the domain: ${r.get('warning')}`);
		assert.ok(dns.queries('SRV', '_sips._tcp.c.test') >= 1, 'c.test located through _sips._tcp');
		assert.equal(await A.edgeStat('tls_peer_refused') - refused0, 1, 'A\'s edge counted one refused TLS peer');
		assert.equal(await C.edgeStat('received'), received0, 'C\'s edge received no SIP message');
		await waitUntil(() => /TLS peer refused for c\.test/.test(A.edges[0].proc.text(t0)), 3000,
			'A\'s edge to log the refusal for c.test');
		t.diagnostic(`c.test: 502 in ${ms} ms, Warning: ${r.get('warning')}`);
	});
});
