'use strict';
/*
 * 47 auth jssip: JsSIP 3.10 in Node over WebSocket with a password
 * against [registrar] auth = yes: it registers by answering the 401
 * and sends MESSAGEs by answering the 407; a wrong password leaves it
 * unregistered.  JsSIP knows only MD5 and, like SIP.js, answers the
 * last challenge of a 401/407: the default order (SHA-256, then MD5)
 * suits it; with MD5 offered first it cannot register, shown too.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { rand } = require('./lib/cluster');
const { sipjsTests, streamCluster, jssipUA } = require('./lib/ws');
const { addUser } = require('./lib/digest');

const DOMAIN = 'a.test';
const PASS = 'jssip-secret';

function suite(name, algorithms, fn) {
	describe(name, () => {
		const c = streamCluster({
			name, edges: 1, cores: 2, redis: true,
			registrar: { auth: 'yes', domains: DOMAIN, ...(algorithms ? { auth_algorithms: algorithms } : {}) },
			proxy: { t1_ms: 100, t2_ms: 400 },
		});
		const { open, test } = sipjsTests(c);
		async function user(prefix, pass = PASS) {
			const u = `${prefix}-${rand(3)}`;
			await addUser(c, u, DOMAIN, PASS);
			const ua = await jssipUA({ user: u, domain: DOMAIN, server: c.wsUrl(1), password: pass });
			open.push(ua);
			return ua;
		}
		fn(c, test, user);
	});
}

suite('47 auth jssip', null, (c, test, user) => {
	test('JsSIP registers with its password and exchanges MESSAGEs', async () => {
		const a = await user('ja');
		const b = await user('jb');
		assert.equal(await a.message(`sip:${b.user}@${DOMAIN}`, 'hello jb'), 200);
		assert.equal(await b.message(`sip:${a.user}@${DOMAIN}`, 'hello ja'), 200);
		const deadline = Date.now() + 5000;
		while ((!b.messages.includes('hello jb') || !a.messages.includes('hello ja')) && Date.now() < deadline)
			await new Promise((r) => setTimeout(r, 20));
		assert.ok(b.messages.includes('hello jb') && a.messages.includes('hello ja'), 'messages delivered');
		assert.ok(await c.coreStat('auth-ok') >= 4, 'two REGISTERs and two MESSAGEs authenticated');
	});

	test('JsSIP with a wrong password is not registered', async () => {
		await assert.rejects(user('jw', 'not the password'), /REGISTER failed|within/);
	});
});

suite('47 auth jssip md5 first', 'MD5 SHA-256', (c, test, user) => {
	test('with MD5 offered first JsSIP cannot register (it answers the last challenge)', async () => {
		await assert.rejects(user('jd'), /REGISTER failed|within/);
	});
});
