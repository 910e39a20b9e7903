'use strict';
/*
 * tests/cluster/sip.js WORKDIR - the SIP steps of the container test
 * (run.sh runs it in the lab namespace, after the playbook).  Clients
 * live on the lab bridge (10.213.0.1) and reach the hosts' edges at
 * 10.213.0.1N: UDP 5060 and WebSocket 8080.  Hosts are stopped and
 * booted through `run.sh --host WORKDIR stop|boot N`.
 *
 * Steps (each logged "cluster: step N ..."):
 *   3. users register through h1 (UDP and WebSocket, digest auth); every
 *      host lists each binding within a bounded time;
 *   4. from h2, MESSAGEs (UDP and WebSocket senders) and calls (SDP
 *      anchored on rtpengine) reach the users registered through h1;
 *   5. h3 stops: registration, MESSAGE and calls go on through h1 and h2;
 *      h3 comes back;
 *   6. every host restarts, one at a time: while each is down the
 *      others serve every binding made through h1 (the WebSocket user,
 *      whose connection dies with its host, reconnects to another host
 *      and registers again), and when all are back no binding is lost.
 * Exits 1 on the first failed check, with what was expected and seen.
 */
const assert = require('node:assert/strict');
const path = require('node:path');
const crypto = require('node:crypto');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const lib = path.join(__dirname, '..', 'integ', 'lib');
const { SipUA, rand, buildResponse } = require(path.join(lib, 'sip'));
const { WsUA } = require(path.join(lib, 'ws'));
const { withAuth } = require(path.join(lib, 'digest'));
const { bindings } = require(path.join(lib, 'flows'));
const { waitUntil, httpGet } = require(path.join(lib, 'wait'));

const W = process.argv[2];
const NET = '10.213.0';
const LAB = `${NET}.1`;
const DOMAIN = 'example.com';
const PASS = process.env.SIPMESH_CLUSTER_PASS;
const USERS = Number(process.env.SIPMESH_CLUSTER_USERS || 20);
const HOSTS = [1, 2, 3];
const up = new Set(HOSTS);
let querier;	/* the UA that asks the registrar, never registered */

const edge = (i) => ({ host: `${NET}.1${i}`, port: 5060 });
const wsUrl = (i) => `ws://${NET}.1${i}:8080`;
const say = (s) => console.log(`cluster: ${s}`);
const step = (s) => say(`step ${s}`);

/* run.sh's sipmesh_sentinel_down_after_ms: a Redis unanswered this long
 * is down for its sentinels, who may then fail it over. */
const DOWN_AFTER_MS = 3000;
let stoppedAt = 0;

function host(cmd, i) {
	const t0 = Date.now();
	if (cmd === 'stop') stoppedAt = t0;
	execFileSync('sh', [path.join(__dirname, 'run.sh'), '--host', W, cmd, String(i)], { stdio: 'inherit' });
	say(`h${i} ${cmd} took ${((Date.now() - t0) / 1000).toFixed(1)} s`);
	if (cmd === 'stop') up.delete(i); else up.add(i);
}

/* One core's Prometheus text (cores 2i-1 and 2i run on host i). */
async function coreMetrics(id) {
	return (await httpGet(`${NET}.1${Math.ceil(id / 2)}:${9500 + id}`, '/metrics', 2000)).body;
}

/*
 * What the sentinel of host i says of the master: {ip, port, epoch,
 * flags, replicas: [{ip, flags, link}]}, or null.  Every host of the
 * inventory runs one (port 26379, the run's sentinel password).
 */
function sentinelView(i) {
	const pw = fs.readFileSync(path.join(W, 'credentials', 'sentinel_password'), 'utf8').trim().split(/\s+/)[0];
	const ask = (...args) => execFileSync('redis-cli', ['-h', `${NET}.1${i}`, '-p', '26379', '--no-auth-warning',
		'-a', pw, ...args], { encoding: 'utf8', timeout: 2000 }).trim().split('\n');
	const dict = (lines) => {
		const d = {};
		for (let k = 0; k + 1 < lines.length; k += 2) d[lines[k]] = lines[k + 1];
		return d;
	};
	try {
		const m = dict(ask('SENTINEL', 'MASTER', 'sipmesh'));
		const flat = ask('SENTINEL', 'REPLICAS', 'sipmesh');
		/* redis-cli prints the replicas' dictionaries one after
		 * another, each starting with its "name" */
		const replicas = [];
		for (let k = 0; k + 1 < flat.length; k += 2) {
			if (flat[k] === 'name') replicas.push({});
			if (replicas.length) replicas[replicas.length - 1][flat[k]] = flat[k + 1];
		}
		return { ip: m.ip, port: m.port, epoch: m['config-epoch'], flags: m.flags,
			replicas: replicas.map((r) => ({ ip: r.ip, flags: r.flags, link: r['master-link-status'] })) };
	} catch {
		return null;
	}
}

/*
 * Until the cluster has settled after a host came back, as an
 * operator's rolling restart waits before the next host:
 *   - every sentinel of the hosts up names the same master at the same
 *     config-epoch, with no failover in progress and no flag but
 *     "master", and every other Redis of the hosts up is its replica
 *     with its link up (a host's absence can start a failover that
 *     ends after the host is back: the next host must not go before);
 *   - every core of the hosts up has its Redis link up and nothing
 *     waiting to be written there (sipmesh_core_redis_up 1,
 *     redis_dirty_aors 0): a binding registered while the Redis master
 *     was away lives only in the store of the host that took it until
 *     that host's cores are linked again, and a host stopped before
 *     then takes it along.
 * Not before down-after (plus a ping) has passed since the last stop.
 * Logs how long it took.
 */
async function waitInStep(what) {
	const t0 = Date.now();
	/* A failover the absence may have started is decided once
	 * down-after has passed since the stop (and the sentinels' next
	 * ping): only then does a settled view mean settled. */
	const decided = stoppedAt + DOWN_AFTER_MS + 1000 - Date.now();
	if (decided > 0) await new Promise((res) => setTimeout(res, decided));
	const cores = [...up].flatMap((i) => [2 * i - 1, 2 * i]);
	let last = '';
	await waitUntil(async () => {
		const bad = [];
		const views = [...up].map((i) => [i, sentinelView(i)]);
		const first = views[0][1];
		for (const [i, v] of views) {
			if (!v || !first || v.ip !== first.ip || v.port !== first.port || v.epoch !== first.epoch ||
			    v.flags !== 'master')
				bad.push(`sentinel of h${i}: ${v ? `${v.ip}:${v.port} epoch ${v.epoch} ${v.flags}` : 'no answer'}`);
		}
		/* the Redis servers: h1 and h2 (the inventory's sipmesh_redis) */
		for (const i of [1, 2].filter((j) => up.has(j) && first && `${NET}.1${j}` !== first.ip)) {
			const r = first && first.replicas.find((x) => x.ip === `${NET}.1${i}`);
			if (!r || r.flags !== 'slave' || r.link !== 'ok')
				bad.push(`Redis of h${i}: ${r ? `${r.flags}, link ${r.link}` : 'not a replica'}`);
		}
		for (const id of cores) {
			const m = await coreMetrics(id).catch((e) => `error ${e.message}`);
			const v = (name) => (new RegExp(`^sipmesh_core_${name} (\\S+)`, 'm').exec(m) || [])[1];
			if (v('redis_up') !== '1' || v('redis_dirty_aors') !== '0')
				bad.push(`core ${id}: redis_up ${v('redis_up')}, dirty ${v('redis_dirty_aors')}`);
		}
		last = bad.join('; ');
		return bad.length === 0;
	/* a failover and the replicas' reconfiguration: up to ~20 s here
	 * (failover-timeout 10 s) */
	}, 60000, `Redis settled and every core in step with it ${what}`, 200).catch((err) => {
		err.message += ` (last seen: ${last})`;
		throw err;
	});
	say(`Redis settled (one master, its replicas linked) and every core of h${[...up].sort().join(', h')} ` +
		`linked to it with nothing unwritten ${what}, after ${Date.now() - t0} ms`);
}

/*
 * fn() -> response, again while it is 503 (what a client does with
 * Retry-After): a core whose store is out of step with Redis (its link
 * down, a reconcile not done) answers 503 for an AOR it holds no
 * binding of, and while a Redis master is lost (down-after 3 s + the
 * election) an account lookup that was in flight, or that no replica
 * could take yet, gets 503 too (the cores read accounts from a replica
 * meanwhile).  Logs how long such a window lasted.
 */
async function retry503(fn, what, ms = 30000) {
	const t0 = Date.now();
	let n = 0;
	for (;;) {
		const r = await fn();
		if (r.status !== 503 || Date.now() - t0 > ms) {
			if (n) say(`${what}: ${n} x 503 (${r.status === 503 ? 'still' : 'then'} ${r.status}) over ${Date.now() - t0} ms`);
			return r;
		}
		n++;
		await new Promise((res) => setTimeout(res, 500));
	}
}

/* One authenticated request: the first send draws the challenge. */
async function authed(send, method, uri, user) {
	const r = await withAuth(send, method, uri, user, PASS, 'SHA-256');
	return r.res;
}

/* An AOR's registration by one UDP UA: stable Call-ID, CSeq grows. */
class Reg {
	constructor(ua, user) {
		this.ua = ua;
		this.user = user;
		this.aor = `sip:${user}@${DOMAIN}`;
		this.callId = `reg-${rand(8)}@cluster`;
		this.cseq = 0;
		this.tag = rand(4);
	}

	get contact() { return `sip:${this.user}@${this.ua.addr}`; }

	/* A REGISTER from ua (default: the AOR's own UA) through host i. */
	send(i, contacts, expires, ua = this.ua) {
		const own = ua === this.ua;
		if (!own && !this.q) this.q = { callId: `q-${rand(8)}@cluster`, cseq: 0, tag: rand(4) };
		const d = own ? this : this.q;
		return authed((hdrs) => {
			d.cseq += 1;
			return ua.send(edge(i), {
				method: 'REGISTER', ruri: `sip:${DOMAIN}`, from: this.aor, to: this.aor,
				fromTag: d.tag, callId: d.callId, cseq: d.cseq,
				contact: contacts, expires, headers: hdrs,
			});
		}, 'REGISTER', `sip:${DOMAIN}`, this.user);
	}

	async register(i, expires = 3600) {
		const r = await retry503(() => this.send(i, [`<${this.contact}>`], expires), `REGISTER ${this.aor} via h${i}`);
		assert.equal(r.status, 200, `REGISTER ${this.aor} through h${i}: ${r.status} ${r.reason}`);
	}

	/*
	 * The contact URIs the registrar lists for the AOR, asked through
	 * host i by another UA (as the user's other device or an admin
	 * would): a request from the AOR's own UA through another edge
	 * would make that edge the way back to it (NAT handling).
	 */
	async query(i) {
		/* A host that just came back may send the query to a core of
		 * another host whose link to the restarted Redis master is in
		 * its back-off (up to backoff_max_ms): 503 + Retry-After, which
		 * a client retries, as register() does. */
		const r = await retry503(() => this.send(i, [], undefined, querier),
			`query of ${this.aor} via h${i}`);
		assert.equal(r.status, 200, `query of ${this.aor} through h${i}: ${r.status} ${r.reason}`);
		return bindings(r).map((b) => b.uri);
	}
}

/*
 * A WebSocket user: connection, registration, answers MESSAGE and
 * INVITE.  Registers as SIP.js does (RFC 5626): one Call-ID for its
 * life and a Contact with +sip.instance and reg-id, so that after a
 * reconnect (its host died) the new binding replaces the old one,
 * whose connection is gone with the host and would never be reported
 * closed.
 */
class WsUser {
	constructor(user) {
		this.user = user;
		this.aor = `sip:${user}@${DOMAIN}`;
		this.got = [];
		this.instance = `urn:uuid:${crypto.randomUUID()}`;
		this.callId = `wsreg-${rand(8)}@cluster`;
		this.cseq = 0;
		this.tag = rand(4);
	}

	async connect(i) {
		if (this.ws) this.ws.close();
		clearInterval(this.answering);
		this.host = i;
		const ws = this.ws = await WsUA.open({ url: wsUrl(i) });
		/* What the client saw when a connection ends (a known flake: a
		 * connection to a host that stays up lost when another host
		 * powers off or boots); terminate() by the test itself is 1006
		 * too, so only while it is the user's current connection. */
		ws.sock.on('error', (e) => say(`${this.user}'s WebSocket to h${i}: error ${e.code || e.message}`));
		ws.sock.on('close', (code) => {
			if (this.ws === ws && up.has(i) && !this.closing)
				say(`${this.user}'s WebSocket to h${i} (up) closed: code ${code}`);
		});
		this.seen = 0;
		this.answering = setInterval(() => this.answer(), 20);
	}

	answer() {
		const ws = this.ws;
		for (; this.seen < ws.requests.length; this.seen++) {
			const m = ws.requests[this.seen];
			if (m.method === 'ACK') continue;
			if (m.method === 'MESSAGE') this.got.push(m.body.toString('latin1'));
			ws.reply(m, 200, 'OK', { body: m.method === 'INVITE' ? sdp('10.213.0.1', 4002) : undefined });
		}
	}

	send(o) {
		return authed((hdrs) => {
			this.cseq += 1;
			const { host: h, port } = this.ws.local;
			return this.ws.send({
				method: 'REGISTER', ruri: `sip:${DOMAIN}`, from: this.aor, to: this.aor,
				fromTag: this.tag, callId: this.callId, cseq: this.cseq,
				contact: `<sip:${this.user}@${h}:${port};transport=ws>;+sip.instance="<${this.instance}>";reg-id=1`,
				headers: hdrs, ...o,
			});
		}, 'REGISTER', `sip:${DOMAIN}`, this.user);
	}

	async register() {
		const r = await retry503(() => this.send({ expires: 3600 }), `REGISTER ${this.aor} over WebSocket to h${this.host}`);
		assert.equal(r.status, 200, `REGISTER ${this.aor} over WebSocket to h${this.host}: ${r.status} ${r.reason}`);
	}

	close() {
		this.closing = true;
		clearInterval(this.answering);
		if (this.ws) this.ws.close();
	}
}

function sdp(ip, port) {
	return `v=0\r\no=- ${rand(6).replace(/\D/g, '1')} 1 IN IP4 ${ip}\r\ns=-\r\nc=IN IP4 ${ip}\r\nt=0 0\r\n` +
		`m=audio ${port} RTP/AVP 0\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n`;
}

/* MESSAGE from `from` (a SipUA, user fromUser) to user through host i. */
function message(from, fromUser, i, user, body) {
	const to = `sip:${user}@${DOMAIN}`;
	const callId = `${rand(10)}@cluster`;
	const tag = rand(4);
	return authed((hdrs, bump) => from.send(edge(i), {
		method: 'MESSAGE', ruri: to, from: `sip:${fromUser}@${DOMAIN}`, to, fromTag: tag, callId,
		cseq: 1 + bump, body, contentType: 'text/plain', headers: hdrs,
	}), 'MESSAGE', to, fromUser);
}

/* MESSAGE over a WebSocket sender (WsUser). */
function wsMessage(from, user, body) {
	const to = `sip:${user}@${DOMAIN}`;
	const callId = `${rand(10)}@cluster`;
	const tag = rand(4);
	return authed((hdrs, bump) => from.ws.send({
		method: 'MESSAGE', ruri: to, from: from.aor, to, fromTag: tag, callId, cseq: 1 + bump,
		body, contentType: 'text/plain', headers: hdrs,
	}), 'MESSAGE', to, from.user);
}

/*
 * A call from `from` (SipUA as fromUser) through host i to user: INVITE
 * with SDP, 200 with the callee's SDP, ACK, BYE.  The SDP the caller
 * gets must be rtpengine's (an address of a host, not the callee's).
 */
async function call(from, fromUser, i, user, what) {
	const to = `sip:${user}@${DOMAIN}`;
	const callId = `${rand(10)}@cluster`;
	const tag = rand(4);
	let cseq = 0;
	const res = await authed((hdrs) => {
		cseq += 1;
		return from.send(edge(i), {
			method: 'INVITE', ruri: to, from: `sip:${fromUser}@${DOMAIN}`, to, fromTag: tag, callId, cseq,
			contact: [`<sip:${fromUser}@${from.addr}>`], body: sdp(LAB, 4000), contentType: 'application/sdp',
			headers: hdrs,
		}, 15000);
	}, 'INVITE', to, fromUser);
	assert.equal(res.status, 200, `${what}: INVITE got ${res.status} ${res.reason}`);
	const body = res.raw.toString('latin1').split('\r\n\r\n').slice(1).join('\r\n\r\n');
	const c = /c=IN IP4 (\S+)/.exec(body);
	assert.ok(c && c[1] !== LAB && c[1].startsWith(`${NET}.1`),
		`${what}: the answer's SDP should name an rtpengine of a host, not the callee ${LAB}:\n${body}`);
	/* ACK and BYE follow the Record-Route to the callee's Contact. */
	const routes = res.all('record-route').reverse();
	const target = /<([^>]+)>/.exec(res.get('contact'))[1];
	const toHdr = res.get('to');
	const toTag = /;\s*tag=([^;\s]+)/.exec(toHdr)[1];
	const inDialog = (method, n) => ({
		method, ruri: target, from: `sip:${fromUser}@${DOMAIN}`, to, fromTag: tag, toTag, callId,
		cseq: n, headers: routes.map((r) => ['Route', r]),
	});
	from.request(edge(i), { ...inDialog('ACK', cseq), cseqMethod: 'ACK', retransmit: false });
	const bye = await from.send(edge(i), inDialog('BYE', cseq + 1));
	assert.equal(bye.status, 200, `${what}: BYE got ${bye.status} ${bye.reason}`);
	return c[1];
}

async function main() {
	const t0 = Date.now();
	/* One UA per role, all on the lab bridge. */
	const alice = await SipUA.open({ label: 'alice', host: LAB });
	const carol = await SipUA.open({ label: 'carol', host: LAB });
	const batch = await SipUA.open({ label: 'batch', host: LAB });
	querier = await SipUA.open({ label: 'querier', host: LAB });
	/* alice answers an INVITE with her SDP (the UA's default 200 has no body). */
	alice.handler = (req) => {
		if (req.method !== 'INVITE') return 200;
		alice.sendRaw(req.source, buildResponse(req, 200, 'OK', {
			toTag: alice.toTag, body: sdp(LAB, 4002), contentType: 'application/sdp',
			headers: [['Contact', `<${alice.contactUri('alice')}>`]],
		})).catch(() => {});
		return null;
	};
	batch.handler = () => 200;
	const bob = new WsUser('bob');
	const dave = new WsUser('dave');

	step('3: register through h1 (UDP: alice and ' + USERS + ' more AORs; WebSocket: bob)');
	const ra = new Reg(alice, 'alice');
	await ra.register(1);
	const regs = [];
	for (let n = 1; n <= USERS; n++) {
		const r = new Reg(batch, `u${String(n).padStart(3, '0')}`);
		await r.register(1);
		regs.push(r);
	}
	await bob.connect(1);
	await bob.register();
	/* Every other host lists them, within a bounded time. */
	const tq = Date.now();
	for (const i of [2, 3]) {
		await waitUntil(async () => (await ra.query(i)).includes(ra.contact), 5000, `h${i} lists alice`, 100);
		for (const r of regs)
			await waitUntil(async () => (await r.query(i)).includes(r.contact), 5000, `h${i} lists ${r.aor}`, 100);
	}
	say(`h2 and h3 list all ${USERS + 1} UDP bindings made through h1 (all seen within ${Date.now() - tq} ms)`);

	step('4: MESSAGEs and calls from h2 to the users registered through h1');
	let r = await message(carol, 'carol', 2, 'alice', 'udp to udp');
	assert.equal(r.status, 200, `MESSAGE carol -> alice via h2: ${r.status}`);
	await alice.waitRequest((m) => m.method === 'MESSAGE' && m.body.toString() === 'udp to udp', 5000, 'MESSAGE from carol');
	r = await message(carol, 'carol', 2, 'bob', 'udp to ws');
	assert.equal(r.status, 200, `MESSAGE carol -> bob via h2: ${r.status}`);
	await waitUntil(() => bob.got.includes('udp to ws'), 5000, 'bob (WebSocket on h1) gets the MESSAGE');
	await dave.connect(2);
	r = await wsMessage(dave, 'alice', 'ws to udp');
	assert.equal(r.status, 200, `MESSAGE dave (WebSocket on h2) -> alice: ${r.status}`);
	await alice.waitRequest((m) => m.method === 'MESSAGE' && m.body.toString() === 'ws to udp', 5000, 'MESSAGE from dave');
	r = await wsMessage(dave, 'bob', 'ws to ws');
	assert.equal(r.status, 200, `MESSAGE dave (WebSocket on h2) -> bob (WebSocket on h1): ${r.status}`);
	await waitUntil(() => bob.got.includes('ws to ws'), 5000, 'bob gets dave\'s MESSAGE');
	say('MESSAGE UDP->UDP, UDP->WS, WS->UDP, WS->WS through h2 to users on h1: delivered');
	let engine = await call(carol, 'carol', 2, 'alice', 'call carol -> alice via h2');
	say(`call UDP -> UDP via h2: answered, media anchored on rtpengine ${engine}, BYE 200`);
	engine = await call(carol, 'carol', 2, 'bob', 'call carol -> bob (WebSocket) via h2');
	say(`call UDP -> WebSocket via h2: answered, media anchored on rtpengine ${engine}, BYE 200`);

	step('5: h3 stops; the service goes on through h1 and h2');
	host('stop', 3);
	const eve = new Reg(await SipUA.open({ label: 'eve', host: LAB }), 'eve');
	await eve.register(1);
	/* Other hosts learn a binding by Redis pub/sub, after the 200: as
	 * in step 3, within a bound. */
	const te = Date.now();
	await waitUntil(async () => (await eve.query(2)).includes(eve.contact), 5000,
		'h2 lists eve, registered through h1 after h3 stopped', 100);
	say(`h2 lists eve, registered through h1 with h3 down, within ${Date.now() - te} ms`);
	r = await message(carol, 'carol', 2, 'alice', 'without h3');
	assert.equal(r.status, 200, `MESSAGE via h2 with h3 down: ${r.status}`);
	await alice.waitRequest((m) => m.method === 'MESSAGE' && m.body.toString() === 'without h3', 5000, 'MESSAGE with h3 down');
	/* rtpctl takes h3's engine out after fail_threshold missed pings. */
	await new Promise((res) => setTimeout(res, 3000));
	for (let n = 0; n < 3; n++) {
		engine = await call(carol, 'carol', 2, 'alice', `call ${n + 1} with h3 down`);
		assert.notEqual(engine, edge(3).host, 'a call anchored on the stopped host\'s rtpengine');
	}
	const missing = [];
	for (const i of [1, 2])
		for (const reg of [ra, ...regs])
			if (!(await reg.query(i)).includes(reg.contact)) missing.push(`${reg.aor} on h${i}`);
	assert.deepEqual(missing, [], 'bindings missing while h3 is down');
	say(`with h3 down: h1 and h2 list all ${regs.length + 1} bindings, REGISTER via h1 seen on h2, ` +
		'MESSAGE delivered, 3 calls anchored on h1/h2 engines');
	host('boot', 3);
	await waitInStep('after h3 came back');

	step('6: rolling restart of h1, h2, h3, one at a time; no binding lost');
	const bobq = new Reg(querier, 'bob');
	for (const i of HOSTS) {
		host('stop', i);
		const others = HOSTS.filter((j) => j !== i);
		if (bob.host === i) {
			/* Its connection died with the host: reconnect elsewhere. */
			await waitUntil(() => bob.ws.closed, 10000, `bob's WebSocket to h${i} closes`);
			await bob.connect(others[0]);
			await bob.register();
			say(`bob reconnected to h${others[0]} and registered again`);
		}
		if (dave.host === i) {
			await waitUntil(() => dave.ws.closed, 10000, `dave's WebSocket to h${i} closes`);
			await dave.connect(others[others.length - 1]);
		}
		for (const j of others) {
			const body = `while h${i} is down, via h${j}`;
			r = await retry503(() => message(carol, 'carol', j, 'alice', body), `MESSAGE to alice via h${j}`);
			assert.equal(r.status, 200, `MESSAGE to alice via h${j} while h${i} is down: ${r.status} ${r.reason}`);
			await alice.waitRequest((m) => m.method === 'MESSAGE' && m.body.toString() === body, 5000, body);
			r = await retry503(() => message(carol, 'carol', j, 'bob', body), `MESSAGE to bob via h${j}`);
			if (r.status !== 200) {
				/* what each host's store says of bob, for the report */
				for (const k of others)
					say(`bob's bindings as h${k} lists them: ${(await bobq.query(k)).join(' ') || 'none'}`);
			}
			assert.equal(r.status, 200, `MESSAGE to bob via h${j} while h${i} is down: ${r.status} ${r.reason}`);
			await waitUntil(() => bob.got.includes(body), 5000, `bob gets "${body}"`);
		}
		say(`h${i} down: alice (UDP) and bob (WebSocket) reached through h${others.join(' and h')}`);
		host('boot', i);
		const lost = [];
		for (const reg of [ra, ...regs]) {
			const l = await reg.query(i);
			if (!l.includes(reg.contact)) lost.push(reg.aor);
		}
		assert.deepEqual(lost, [], `after h${i} restarted, h${i} lost the bindings of ${lost.join(', ')}`);
		say(`h${i} back: it lists all ${regs.length + 1} bindings made through h1`);
		await waitInStep(`before the next host stops`);
	}
	const lost = [];
	for (const i of HOSTS)
		for (const reg of [ra, eve, ...regs])
			if (!(await reg.query(i)).includes(reg.contact)) lost.push(`${reg.aor} on h${i}`);
	assert.deepEqual(lost, [], 'bindings lost by the rolling restart');
	for (const i of HOSTS) {
		const body = `after the rolling restart, via h${i}`;
		r = await message(carol, 'carol', i, 'bob', body);
		assert.equal(r.status, 200, `MESSAGE to bob via h${i}: ${r.status}`);
		await waitUntil(() => bob.got.includes(body), 5000, `bob gets "${body}"`);
	}
	engine = await call(carol, 'carol', 3, 'alice', 'call via h3 after the rolling restart');
	say(`after the rolling restart: ${regs.length + 2} UDP bindings on every host, bob reached via every host, a call via h3 (rtpengine ${engine})`);
	say(`SIP steps done in ${((Date.now() - t0) / 1000).toFixed(0)} s`);
	bob.close();
	dave.close();
	for (const u of [alice, carol, batch, querier, eve.ua]) u.close();
}

main().then(() => process.exit(0), (err) => {
	console.error(`cluster: FAIL: ${err.stack || err.message}`);
	process.exit(1);
});
