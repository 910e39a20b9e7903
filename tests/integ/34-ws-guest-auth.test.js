'use strict';
/*
 * 34 ws guest auth: KwikyKonf guest credentials against cores with
 * digest authentication on ([registrar] auth = yes), with SIP.js over
 * WebSocket as the page uses it (authorizationUsername/Password).
 *
 *   - a guest registers its own address and its room's addresses
 *     (conf.<room>, conf.<room>.<tag>), and sends a MESSAGE as itself;
 *   - attacks, each refused and without effect a user would notice:
 *     guest A's credentials cannot register guest B's address (403; a
 *     MESSAGE to B still reaches B alone), another room's conf
 *     address (403), an account's address (403), nor send a MESSAGE
 *     as B (403); an expired username with its right MAC, a tampered
 *     password and a username whose expiry was pushed back are
 *     refused (401/403), and nothing gets registered.
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const fs = require('node:fs');
const path = require('node:path');
const { describe } = require('node:test');
const { rand } = require('./lib/cluster');
const { streamCluster, sipjsTests, SipJsUA, within, guestCreds } = require('./lib/ws');
const SIP = require('sip.js');

const DOMAIN = 'ws.test';

/* A plain Error: the cluster report gets appended to its message. */
function expectCode(got, want, what) {
	if (got !== want) throw new Error(`${what}: got ${got}, want ${want}`);
}

/* The guest key as edges and cores derive it from the host's key file. */
function guestKey(c) {
	const master = fs.readFileSync(path.join(c.runDir, 'cluster.key'));
	return crypto.createHmac('sha256', master)
		.update(Buffer.concat([Buffer.from('sipmesh guest'), Buffer.from([1])])).digest();
}

describe('34 ws guest auth', () => {
	const c = streamCluster({
		name: '34-ws-guest-auth', edges: 1, cores: 2, redis: true,
		/* Default challenge order, SHA-256 then MD5: SIP.js 0.21 keeps
		 * the last WWW-/Proxy-Authenticate and speaks MD5 only. */
		registrar: { auth: 'yes' }, proxy: { t1_ms: 100, t2_ms: 400 },
	});
	const { open, test: gt } = sipjsTests(c);

	/* A SIP.js user whose own address is `as` (a user part) and whose
	 * digest credentials are cred ({username, password}). */
	async function agent(as, cred) {
		const u = await SipJsUA.open({
			user: as, domain: DOMAIN, server: c.wsUrl(1), register: false,
			uaOptions: { authorizationUsername: cred.username, authorizationPassword: cred.password },
		});
		open.push(u);
		c.addEvidence(`SIP.js ${as} log`, { toString: () => u.log.join('\n') });
		return u;
	}

	const bodies = (u) => u.messages.map((m) => m.body);

	/* REGISTERs user part `user` from u's agent; resolves with the final
	 * status code (after SIP.js answered any challenge), checked
	 * against want when given. */
	async function register(u, user, want) {
		const uri = SIP.UserAgent.makeURI(`sip:${user}@${DOMAIN}`);
		const r = new SIP.Registerer(u.ua, { expires: 300, params: { toUri: uri, fromUri: uri } });
		const code = await within(new Promise((res, rej) => {
			r.register({
				requestDelegate: {
					onAccept: (x) => res(x.message.statusCode),
					onReject: (x) => res(x.message.statusCode),
				},
			}).catch(rej);
		}), 8000, `REGISTER ${user}`);
		if (want !== undefined) expectCode(code, want, `REGISTER ${user} by ${u.aor}`);
		return code;
	}

	async function message(u, target, body, want) {
		const code = await u.message(target, body);
		if (want !== undefined) expectCode(code, want, `MESSAGE from ${u.aor} to ${target}`);
		return code;
	}

	gt('a guest registers its own address and its room\'s, and sends as itself', async () => {
		const room = `r${rand(4)}`;
		const ga = await guestCreds(c, room);
		const a = await agent(ga.user, ga);
		await register(a, ga.user, 200);
		await register(a, `conf.${room}`, 200);
		await register(a, `conf.${room}.0123abcd`, 200);
		const gb = await guestCreds(c, room);
		const b = await agent(gb.user, gb);
		await register(b, gb.user, 200);
		await message(b, a.aor, 'hello a', 200);
		assert.deepEqual(bodies(a), ['hello a']);
		/* The room address forks to the guest that registered it. */
		await message(b, `sip:conf.${room}@${DOMAIN}`, 'to the room', 200);
		assert.deepEqual(bodies(a), ['hello a', 'to the room']);
	});

	gt('guest A cannot register guest B\'s address, another room\'s, nor an account\'s (403)', async () => {
		const room = `r${rand(4)}`;
		const ga = await guestCreds(c, room);
		const gb = await guestCreds(c, room);
		const b = await agent(gb.user, gb);
		await register(b, gb.user, 200);
		const a = await agent(ga.user, ga);
		await register(a, gb.user, 403);
		await register(a, `conf.other${rand(3)}`, 403);
		await register(a, `conf.${room}x`, 403);
		await register(a, `alice${rand(3)}`, 403);
		/* B's address still reaches B, and only B. */
		const gc = await guestCreds(c, room);
		const s = await agent(gc.user, gc);
		await message(s, b.aor, 'for b', 200);
		assert.deepEqual(bodies(b), ['for b']);
		assert.deepEqual(bodies(a), []);
	});

	gt('guest A cannot send a MESSAGE as guest B (403)', async () => {
		const room = `r${rand(4)}`;
		const ga = await guestCreds(c, room);
		const gb = await guestCreds(c, room);
		const b = await agent(gb.user, gb);
		await register(b, gb.user, 200);
		/* A's credentials, B's From. */
		const forger = await agent(gb.user, ga);
		await message(forger, b.aor, 'I am b', 403);
		assert.deepEqual(bodies(b), []);
	});

	gt('an expired username, a tampered password and a pushed-back expiry are refused', async () => {
		const room = `r${rand(4)}`;
		const key = guestKey(c);
		const mac = (u) => crypto.createHmac('sha256', key).update(u).digest('base64url');
		const user = `guest.${room}.${Array.from(crypto.randomBytes(10), (x) => (x % 36).toString(36)).join('')}`;
		const expiredName = `${Math.floor(Date.now() / 1000) - 5}:${user}`;
		const expired = await agent(user, { username: expiredName, password: mac(expiredName) });
		const st1 = await register(expired, user);
		assert.ok(st1 === 401 || st1 === 403, `expired credentials got ${st1}`);

		const g = await guestCreds(c, room);
		const last = g.password.slice(-1) === 'A' ? 'B' : 'A';
		const tampered = await agent(g.user, { username: g.username, password: g.password.slice(0, -1) + last });
		const st2 = await register(tampered, g.user);
		assert.equal(st2, 401, `a tampered password got ${st2}`);

		const later = `${g.expires + 86400}:${g.user}`;
		const pushed = await agent(g.user, { username: later, password: g.password });
		const st3 = await register(pushed, g.user);
		assert.ok(st3 === 401 || st3 === 403, `a pushed-back expiry got ${st3}`);

		/* Nothing got registered: a MESSAGE to either address finds no one. */
		const gs = await guestCreds(c, room);
		const s = await agent(gs.user, gs);
		for (const aor of [`sip:${user}@${DOMAIN}`, `sip:${g.user}@${DOMAIN}`]) {
			const st = await message(s, aor, 'anyone?');
			assert.ok(st === 404 || st === 480, `MESSAGE to ${aor}: ${st}`);
		}
	});
});
