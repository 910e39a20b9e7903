'use strict';
/*
 * 47 auth sipp: [registrar] auth = yes with sipp's own digest client
 * (its [authentication] keyword, MD5, as most phones speak it): a
 * REGISTER answering its 401, and a call through the proxy whose INVITE
 * answers its 407, ACK and BYE following the signed Record-Route with
 * no credentials.  Accounts made with sipmesh-ctl; local domain a.test.
 * sipp 3.6 reads only the first challenge and knows only MD5 (with the
 * default order, SHA-256 first, it stops: "authentication must use MD5
 * or AKAv1-MD5"), as some old phones do: this cluster offers MD5 first
 * with [registrar] auth_algorithms, the setting for such clients.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand } = require('./lib/cluster');
const { runSipp, startSipp, assertOk, countMessages } = require('./lib/sipp');
const { freePort } = require('./lib/ports');
const { addUser } = require('./lib/digest');

const DOMAIN = 'a.test';
const PASS = 'sipp-secret';

describe('47 auth sipp', () => {
	const c = cluster({
		name: '47-auth-sipp', edges: 1, cores: 2, redis: true,
		registrar: { auth: 'yes', domains: DOMAIN, auth_algorithms: 'MD5 SHA-256' },
	});

	/* sipp registers user from port with [authentication]; returns its result. */
	function register(user, port, pass = PASS) {
		return runSipp(c, {
			scenario: 'register_auth.xml', dest: c.edge(), port,
			keys: { sm_user: user, sm_domain: DOMAIN, sm_expires: 300 },
			args: ['-au', user, '-ap', pass],
			label: `sipp REGISTER ${user}@${DOMAIN} with digest`,
		});
	}

	c.test('sipp REGISTER answers the 401 with MD5 credentials and gets 200', async () => {
		const user = `sipp-${rand(3)}`;
		await addUser(c, user, DOMAIN, PASS);
		const r = await register(user, await freePort());
		assertOk(r, 'REGISTER with [authentication]');
		assert.equal(countMessages(r, 'received', /^SIP\/2\.0 401/), 1);
		assert.ok(countMessages(r, 'sent', /Authorization: Digest .*algorithm=MD5/i) >= 1,
			'sipp answered the MD5 challenge');
	});

	c.test('sipp with a wrong password is challenged again, never registered', async () => {
		const user = `sipp-${rand(3)}`;
		await addUser(c, user, DOMAIN, PASS);
		const r = await register(user, await freePort(), 'wrong');
		assert.notEqual(r.code, 0, 'the scenario (expecting 200) must fail');
		assert.ok(countMessages(r, 'received', /^SIP\/2\.0 401/) >= 2, 'a second 401');
		assert.equal(countMessages(r, 'received', /^SIP\/2\.0 200/), 0);
	});

	c.test('call through the proxy: the INVITE answers the 407, ACK and BYE pass on the signed route', async () => {
		const callee = `callee-${rand(3)}`;
		const caller = `caller-${rand(3)}`;
		await addUser(c, callee, DOMAIN, PASS);
		await addUser(c, caller, DOMAIN, PASS);
		const port = await freePort();
		assertOk(await register(callee, port), `REGISTER of ${callee}`);
		const stray = await c.coreStat('stray-acks');
		const uas = await (await startSipp(c, {
			scenario: 'uas_call.xml', port, calls: 1, timeout: 20,
			keys: { sm_user: callee, sm_domain: DOMAIN },
			label: `sipp UAS for ${callee}`,
		})).ready();
		const uac = await runSipp(c, {
			scenario: 'uac_auth_call.xml', dest: c.edge(), service: callee,
			keys: { sm_user: caller, sm_domain: DOMAIN }, timeout: 20,
			args: ['-au', caller, '-ap', PASS],
		});
		const uasRes = await uas.wait(25000);
		assertOk(uac, 'caller with [authentication]');
		assertOk(uasRes, 'callee');
		assert.equal(countMessages(uac, 'received', /^SIP\/2\.0 407/), 1);
		assert.equal(countMessages(uasRes, 'received', /Proxy-Authorization:/i), 0,
			'the callee never sees the caller\'s credentials');
		assert.equal(await c.coreStat('stray-acks'), stray,
			'the ACK of the 407 is expected, not counted as stray');
	});
});
