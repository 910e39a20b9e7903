'use strict';
/*
 * 47 auth sipjs: SIP.js 0.21 (the stack KwikyKonf runs) in Node over
 * WebSocket with authorizationUsername / authorizationPassword against
 * [registrar] auth = yes: it registers by answering the 401, sends a
 * MESSAGE by answering the 407, and calls a registered sipp UDP user
 * whose INVITE carries none of its credentials.  A wrong password
 * leaves it unregistered.  SIP.js knows only MD5 and answers the last
 * challenge of a 401/407 (its parser keeps one WWW-Authenticate, the
 * last): the default order, SHA-256 then MD5, is the one it needs.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { rand } = require('./lib/cluster');
const { startSipp, assertOk, countMessages } = require('./lib/sipp');
const { Registration } = require('./lib/flows');
const { sipjsTests, streamCluster, SipJsUA } = require('./lib/ws');
const { freePort } = require('./lib/ports');
const { addUser, withAuth } = require('./lib/digest');

const DOMAIN = 'a.test';
const PASS = 'sipjs-secret';

describe('47 auth sipjs', () => {
	const c = streamCluster({
		name: '47-auth-sipjs', edges: 1, cores: 2, redis: true,
		registrar: { auth: 'yes', domains: DOMAIN },
		proxy: { t1_ms: 100, t2_ms: 400 },
	});
	const { open, test: wsTest } = sipjsTests(c);

	async function user(name, o = {}) {
		const u = `${name}-${rand(3)}`;
		await addUser(c, u, DOMAIN, PASS);
		const ua = await SipJsUA.open({
			user: u, domain: DOMAIN, server: c.wsUrl(1), ...o, register: false,
			uaOptions: { authorizationUsername: u, authorizationPassword: o.pass || PASS },
		});
		open.push(ua);
		try {
			await ua.register(300);
		} finally {
			c.addEvidence(`SIP.js ${u} log`, ua.log.join('\n'));
		}
		return ua;
	}

	wsTest('SIP.js registers with authorizationUsername/Password and exchanges MESSAGE', async () => {
		const a = await user('alice');
		const b = await user('bob');
		assert.equal(await a.message(b.aor, 'hello bob'), 200);
		await b.waitMessage('hello bob');
		assert.equal(await b.message(a.aor, 'hello alice'), 200);
		await a.waitMessage('hello alice');
		assert.ok(await c.coreStat('auth-ok') >= 4, 'two REGISTERs and two MESSAGEs authenticated');
	});

	wsTest('SIP.js with a wrong password is not registered', async () => {
		await assert.rejects(user('wrong', { pass: 'not the password' }), /REGISTER|terminated|within/);
	});

	wsTest('SIP.js calls a sipp UDP user; the INVITE reaches it without credentials', async () => {
		const a = await user('caller');
		const callee = `callee-${rand(3)}`;
		await addUser(c, callee, DOMAIN, PASS);
		const port = await freePort();
		/* sipp's own digest client needs MD5 first (47-auth-sipp): the
		 * callee's binding is made by a UA of ours for sipp's port. */
		const reg = new Registration(await c.ua('callee-reg'), c.edge(), callee, DOMAIN);
		const r0 = await withAuth((hdrs) => reg.send({
			contacts: [`<sip:${callee}@127.0.0.1:${port}>`], expires: 300, headers: hdrs,
		}), 'REGISTER', `sip:${DOMAIN}`, callee, PASS);
		assert.equal(r0.res.status, 200, `REGISTER of ${callee}`);
		const uas = await (await startSipp(c, {
			scenario: 'uas_call.xml', port, calls: 1, timeout: 20,
			keys: { sm_user: callee, sm_domain: DOMAIN },
		})).ready();
		const s = await a.invite(`sip:${callee}@${DOMAIN}`);
		await a.bye(s);
		const r = await uas.wait(10000);
		assertOk(r, 'sipp callee');
		assert.equal(countMessages(r, 'received', /Proxy-Authorization:/i), 0);
	});
});
