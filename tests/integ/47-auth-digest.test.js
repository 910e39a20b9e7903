'use strict';
/*
 * 47 auth digest: [registrar] auth = yes, seen from a UA that computes
 * digest responses itself (lib/digest.js, node:crypto): challenges with
 * SHA-256 then MD5, REGISTER and MESSAGE with credentials, and every
 * attack on the registrar and the proxy the authentication is there to
 * stop (issue 9): hijack, wipe, query, nonce-count replay, stale and
 * forged nonces, a local From without credentials, From spoofing with
 * another user's credentials, wrong passwords, a Redis that is gone.
 * A foreign From needs no credentials.  Local domain a.test; accounts
 * made with sipmesh-ctl; nonces live 3 s so staleness is quick to see.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand } = require('./lib/cluster');
const { Registration, bindings, assertContacts } = require('./lib/flows');
const { challenges, authorization, withAuth, addUser, parseChallenge } = require('./lib/digest');
const { waitUntil } = require('./lib/wait');

const DOMAIN = 'a.test';
const PASS = 'correct horse';
const NONCE_S = 3;

/* A REGISTER's digest-uri: its Request-URI. */
const REG_URI = `sip:${DOMAIN}`;

describe('47 auth digest', () => {
	const c = cluster({
		name: '47-auth-digest', edges: 1, cores: 2, redis: { timeout_ms: 500 },
		registrar: { auth: 'yes', domains: DOMAIN, nonce_lifetime_s: NONCE_S, max_contacts: 5 },
	});
	const user = (p) => `${p}-${rand(3)}`;

	/* A Registration whose sends answer the challenge of alg. */
	async function registered(label, u, alg = 'SHA-256', expires = 300) {
		const reg = new Registration(await c.ua(label), c.edge(), u);
		const r = await withAuth((hdrs) => reg.send({ expires, headers: hdrs }), 'REGISTER', REG_URI,
			u, PASS, alg);
		assert.equal(r.res.status, 200, `REGISTER ${u} with ${alg} credentials got ${r.res.status} ${r.res.reason}`);
		return { reg, ...r };
	}

	/* The bindings of u's AOR as its owner sees them (an authenticated query). */
	async function listed(u) {
		const reg = new Registration(await c.ua(`q-${u}`), c.edge(), u);
		const r = await withAuth((hdrs) => reg.send({ contacts: [], headers: hdrs }), 'REGISTER', REG_URI,
			u, PASS);
		assert.equal(r.res.status, 200, `query of ${u} got ${r.res.status}`);
		return bindings(r.res).map((b) => b.uri);
	}

	/* MESSAGE from ua as `from` to sip:to@DOMAIN on one Call-ID: CSeq 1, then 2 with credentials. */
	function messenger(ua, from, to, o = {}) {
		const callId = `${rand(10)}@integ`;
		const fromTag = rand(4);
		const ruri = `sip:${to}@${DOMAIN}`;
		return (hdrs, bump) => ua.send(c.edge(), {
			method: 'MESSAGE', ruri, from, to: ruri, callId, fromTag, cseq: 1 + bump,
			body: o.body || `hi ${rand(4)}`, contentType: 'text/plain', headers: hdrs,
		});
	}

	c.test('REGISTER without credentials: 401 with SHA-256 then MD5 challenges, qop=auth, one nonce', async () => {
		const u = user('alice');
		await addUser(c, u, DOMAIN, PASS);
		const reg = new Registration(await c.ua('alice'), c.edge(), u);
		const r = await reg.send({ expires: 300 });
		assert.equal(r.status, 401);
		const ch = challenges(r);
		assert.deepEqual(ch.map((x) => x.algorithm), ['SHA-256', 'MD5'], r.text);
		for (const x of ch) {
			assert.equal(x.scheme, 'Digest');
			assert.equal(x.realm, DOMAIN);
			assert.equal(x.qop, 'auth');
			assert.equal(x.stale, undefined, 'a first challenge is not stale');
			assert.match(x.nonce, /^[0-9a-f]{56}$/);
		}
		assert.equal(ch[0].nonce, ch[1].nonce);
		assert.deepEqual(bindings(r), [], 'a 401 lists no binding');
	});

	c.test('REGISTER with SHA-256 credentials (RFC 7616 response from node:crypto) gets 200', async () => {
		const u = user('sha');
		await addUser(c, u, DOMAIN, PASS);
		const { reg, res } = await registered('sha', u, 'SHA-256');
		assertContacts(res, [reg.contact], 'SHA-256 REGISTER');
	});

	c.test('REGISTER with MD5 credentials gets 200', async () => {
		const u = user('md5');
		await addUser(c, u, DOMAIN, PASS);
		const { reg, res } = await registered('md5', u, 'MD5');
		assertContacts(res, [reg.contact], 'MD5 REGISTER');
	});

	c.test('hijack: alice\'s credentials on a REGISTER of bob\'s AOR get 403; bob\'s binding stays', async () => {
		const alice = user('alice');
		const bob = user('bob');
		await addUser(c, alice, DOMAIN, PASS);
		await addUser(c, bob, DOMAIN, PASS);
		const { reg: bobReg } = await registered('bob', bob);
		const evil = new Registration(await c.ua('mallory'), c.edge(), bob);
		/* To is bob's AOR; the credentials are alice's own, and right. */
		const r = await withAuth((hdrs) => evil.send({ expires: 300, headers: hdrs }), 'REGISTER',
			REG_URI, alice, PASS);
		assert.equal(r.res.status, 403, `hijack got ${r.res.status} ${r.res.reason}`);
		assert.deepEqual(bindings(r.res), []);
		assert.deepEqual(await listed(bob), [bobReg.contact]);
		assert.ok(await c.coreStat('auth-forbidden') >= 1);
	});

	c.test('wipe: Contact: * without credentials gets 401; the bindings stay', async () => {
		const u = user('wipe');
		await addUser(c, u, DOMAIN, PASS);
		const { reg } = await registered('victim', u);
		const evil = new Registration(await c.ua('wiper'), c.edge(), u);
		const r = await evil.send({ contacts: ['*'], expires: 0 });
		assert.equal(r.status, 401);
		assert.deepEqual(await listed(u), [reg.contact]);
	});

	c.test('query without credentials gets 401 and no contact is leaked', async () => {
		const u = user('query');
		await addUser(c, u, DOMAIN, PASS);
		await registered('queried', u);
		const spy = new Registration(await c.ua('spy'), c.edge(), u);
		const r = await spy.send({ contacts: [] });
		assert.equal(r.status, 401);
		assert.deepEqual(r.all('contact'), [], 'no Contact in the 401');
	});

	c.test('nonce-count replay: the same Authorization on a new REGISTER with another contact is refused', async () => {
		const u = user('replay');
		await addUser(c, u, DOMAIN, PASS);
		const { reg, auth } = await registered('replayed', u);
		const before = await c.coreStat('auth-replays');
		/* An eavesdropper resends the header it saw, its own Contact. */
		const evil = new Registration(await c.ua('eavesdropper'), c.edge(), u);
		evil.callId = reg.callId;	/* the nonce is bound to the Call-ID */
		evil.cseq = reg.cseq;
		const r = await evil.send({ expires: 300, headers: [['Authorization', auth]] });
		assert.equal(r.status, 401, `replay got ${r.status} ${r.reason}`);
		assert.equal(challenges(r)[0].stale, undefined);
		assert.deepEqual(await listed(u), [reg.contact], 'the replayed REGISTER bound nothing');
		assert.equal(await c.coreStat('auth-replays'), before + 1);
	});

	c.test('a higher nonce-count on the same nonce is accepted (a refresh without a new challenge)', async () => {
		const u = user('refresh');
		await addUser(c, u, DOMAIN, PASS);
		const { reg, ch } = await registered('refresher', u);
		const r = await reg.send({ expires: 300, headers: [['Authorization', authorization(ch, 'REGISTER', REG_URI, u, PASS, { nc: 2 })]] });
		assert.equal(r.status, 200, `nc=2 got ${r.status} ${r.reason}`);
	});

	c.test('stale nonce: after nonce_lifetime_s the right response gets 401 stale=true, then a fresh nonce works', async () => {
		const u = user('stale');
		await addUser(c, u, DOMAIN, PASS);
		const { reg, ch } = await registered('stale', u);
		let r;
		let nc = 2;
		/* The event waited for is the nonce's expiry, seen by the core. */
		await waitUntil(async () => {
			r = await reg.send({ expires: 300, headers: [['Authorization', authorization(ch, 'REGISTER', REG_URI, u, PASS, { nc: nc++ })]] });
			return r.status === 401;
		}, (NONCE_S + 5) * 1000, 'the nonce to go stale', 250);
		const ch2 = challenges(r);
		assert.deepEqual(ch2.map((x) => x.stale), ['true', 'true'], r.text);
		assert.notEqual(ch2[0].nonce, ch.nonce);
		const again = await reg.send({ expires: 300, headers: [['Authorization', authorization(ch2[0], 'REGISTER', REG_URI, u, PASS)]] });
		assert.equal(again.status, 200);
	});

	c.test('a nonce of another Call-ID gets 401 stale=true, never 200', async () => {
		const u = user('othercid');
		await addUser(c, u, DOMAIN, PASS);
		const { ch } = await registered('first', u);
		const other = new Registration(await c.ua('second'), c.edge(), u);
		const r = await other.send({ expires: 300, headers: [['Authorization', authorization(ch, 'REGISTER', REG_URI, u, PASS, { nc: 5 })]] });
		assert.equal(r.status, 401);
		assert.equal(challenges(r)[0].stale, 'true');
	});

	c.test('forged nonce: 401 without stale, counted; nothing is bound', async () => {
		const u = user('forged');
		await addUser(c, u, DOMAIN, PASS);
		const before = await c.coreStat('auth-failures');
		const reg = new Registration(await c.ua('forger'), c.edge(), u);
		const forged = { realm: DOMAIN, nonce: 'ab'.repeat(28), algorithm: 'SHA-256' };
		const r = await reg.send({ expires: 300, headers: [['Authorization', authorization(forged, 'REGISTER', REG_URI, u, 'guessed')]] });
		assert.equal(r.status, 401);
		assert.equal(challenges(r)[0].stale, undefined);
		/* Even the right password over a nonce we never minted binds nothing. */
		const r2 = await reg.send({ expires: 300, headers: [['Authorization', authorization(forged, 'REGISTER', REG_URI, u, PASS)]] });
		assert.equal(r2.status, 401);
		assert.deepEqual(await listed(u), []);
		assert.ok(await c.coreStat('auth-failures') > before);
	});

	c.test('wrong password, 30 times: always 401, the cluster stays up, failures counted', async () => {
		const u = user('brute');
		await addUser(c, u, DOMAIN, PASS);
		const before = await c.coreStat('auth-failures');
		const reg = new Registration(await c.ua('brute'), c.edge(), u);
		for (let i = 0; i < 30; i++) {
			const r = await withAuth((hdrs) => reg.send({ expires: 300, headers: hdrs }), 'REGISTER', REG_URI,
				u, `wrong ${i}`, i % 2 ? 'MD5' : 'SHA-256');
			assert.equal(r.res.status, 401, `try ${i}: ${r.res.status}`);
		}
		c.assertAlive();
		assert.ok(await c.coreStat('auth-failures') >= before + 30);
		/* An unknown user is no different from a wrong password. */
		const ghost = new Registration(await c.ua('ghost'), c.edge(), user('ghost'));
		const g = await withAuth((hdrs) => ghost.send({ expires: 300, headers: hdrs }), 'REGISTER', REG_URI,
			ghost.user, PASS);
		assert.equal(g.res.status, 401);
	});

	c.test('MESSAGE from a local user without credentials: 407 with both challenges, not delivered', async () => {
		const to = user('rcpt');
		await addUser(c, to, DOMAIN, PASS);
		const { reg } = await registered('rcpt', to);
		const from = user('sender');
		const ua = await c.ua('sender');
		const r = await messenger(ua, `sip:${from}@${DOMAIN}`, to)([], 0);
		assert.equal(r.status, 407);
		assert.deepEqual(challenges(r).map((x) => x.algorithm), ['SHA-256', 'MD5']);
		assert.equal(r.all('www-authenticate').length, 0);
		assert.equal(reg.ua.requests.filter((m) => m.method === 'MESSAGE').length, 0);
	});

	c.test('MESSAGE with the sender\'s credentials is delivered, without our Proxy-Authorization', async () => {
		const to = user('rcpt');
		const from = user('sender');
		await addUser(c, to, DOMAIN, PASS);
		await addUser(c, from, DOMAIN, PASS);
		const { reg } = await registered('rcpt', to);
		const body = `auth ${rand(6)}`;
		const ua = await c.ua('sender');
		const r = await withAuth(messenger(ua, `sip:${from}@${DOMAIN}`, to, { body }), 'MESSAGE',
			`sip:${to}@${DOMAIN}`, from, PASS);
		assert.equal(r.first.status, 407);
		assert.equal(r.res.status, 200, `MESSAGE with credentials got ${r.res.status}`);
		const got = await reg.ua.waitRequest((m) => m.method === 'MESSAGE' && m.body.toString() === body);
		assert.equal(got.get('proxy-authorization'), undefined, 'credentials consumed');
	});

	c.test('From spoofing: bob\'s From with alice\'s valid credentials gets 403, not delivered', async () => {
		const to = user('rcpt');
		const alice = user('alice');
		const bob = user('bob');
		for (const u of [to, alice, bob]) await addUser(c, u, DOMAIN, PASS);
		const { reg } = await registered('rcpt', to);
		const ua = await c.ua('spoofer');
		const r = await withAuth(messenger(ua, `sip:${bob}@${DOMAIN}`, to), 'MESSAGE', `sip:${to}@${DOMAIN}`,
			alice, PASS);
		assert.equal(r.res.status, 403, `spoofed From got ${r.res.status}`);
		assert.equal(reg.ua.requests.filter((m) => m.method === 'MESSAGE').length, 0);
	});

	c.test('a foreign From needs no credentials: delivered as it is', async () => {
		const to = user('rcpt');
		await addUser(c, to, DOMAIN, PASS);
		const { reg } = await registered('rcpt', to);
		const body = `from afar ${rand(6)}`;
		const ua = await c.ua('foreigner');
		const r = await messenger(ua, 'sip:someone@b.test', to, { body })([], 0);
		assert.equal(r.status, 200, `foreign MESSAGE got ${r.status} ${r.reason}`);
		await reg.ua.waitRequest((m) => m.method === 'MESSAGE' && m.body.toString() === body);
	});

	c.test('INVITE, SUBSCRIBE, REFER and PUBLISH from a local user without credentials: 407', async () => {
		const ua = await c.ua('methods');
		for (const method of ['INVITE', 'SUBSCRIBE', 'REFER', 'PUBLISH']) {
			const to = `sip:${user('target')}@${DOMAIN}`;
			const r = await ua.send(c.edge(), {
				method, ruri: to, from: `sip:methods@${DOMAIN}`, to,
				contact: [`<${ua.contactUri('methods')}>`],
				headers: method === 'SUBSCRIBE' || method === 'PUBLISH' ? [['Event', 'presence']] :
					method === 'REFER' ? [['Refer-To', `<sip:x@${DOMAIN}>`]] : [],
			});
			assert.equal(r.status, 407, `${method}: ${r.status} ${r.reason}`);
			assert.equal(challenges(r).length, 2);
		}
	});

	c.test('OPTIONS to the proxy itself (a keep-alive) needs no credentials', async () => {
		const ua = await c.ua('pinger');
		const e = c.edge();
		const r = await ua.send(e, { method: 'OPTIONS', ruri: `sip:${e.addr}`, from: `sip:pinger@${DOMAIN}`, to: `sip:${e.addr}` });
		assert.equal(r.status, 200);
		const r2 = await ua.send(e, { method: 'OPTIONS', ruri: `sip:somebody@${DOMAIN}`, from: `sip:pinger@${DOMAIN}`, to: `sip:somebody@${DOMAIN}` });
		assert.equal(r2.status, 407, 'OPTIONS to a user is authenticated');
	});

	c.test('Redis gone and the account not cached: 503 with Retry-After, then service again', async () => {
		const u = user('nocache');
		await addUser(c, u, DOMAIN, PASS);
		const reg = new Registration(await c.ua('nocache'), c.edge(), u);
		const first = await reg.send({ expires: 300 });
		assert.equal(first.status, 401);
		const ch = parseChallenge(first.all('www-authenticate')[0]);
		const redis = c.redis.proc;
		process.kill(redis.pid, 'SIGSTOP');	/* no answer, as a stalled Redis */
		let r;
		try {
			r = await reg.send({ expires: 300, headers: [['Authorization', authorization(ch, 'REGISTER', REG_URI, u, PASS)]], timeout: 8000 });
		} finally {
			process.kill(redis.pid, 'SIGCONT');
		}
		assert.equal(r.status, 503, `${r.status} ${r.reason}`);
		assert.match(r.get('retry-after') || '', /^\d+$/);
		c.assertAlive();
		/* Redis answers again: so does the registrar (the link comes
		 * back within its back-off). */
		let last;
		await waitUntil(async () => {
			last = await withAuth((hdrs) => reg.send({ expires: 300, headers: hdrs }), 'REGISTER',
				REG_URI, u, PASS);
			return last.res.status === 200;
		}, 8000, 'a REGISTER to succeed once Redis is back', 200);
	});
});
