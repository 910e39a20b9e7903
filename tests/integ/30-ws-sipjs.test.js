'use strict';
/*
 * 30 ws sipjs: browsers' SIP stacks (SIP.js 0.21 and JsSIP, in Node
 * over the `ws` package) against a real cluster over WS and WSS:
 * registration, MESSAGE between WebSocket users and to an AOR held by
 * two of them, un-registration, a closed WebSocket whose binding must
 * go and not be used any more (480 once none is left), and a SIP.js user talking to a sipp UDP user
 * (MESSAGE both ways; INVITE/200/ACK/BYE with the BYE from either
 * side).  Signaling only: INVITEs carry a fixed SDP, no media runs.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { rand } = require('./lib/cluster');
const { runSipp, startUas, assertOk } = require('./lib/sipp');
const { sipjsTests, streamCluster, SipJsUA, jssipUA } = require('./lib/ws');
const { Registration, waitBindings, normUri } = require('./lib/flows');

describe('30 ws sipjs', () => {
	const c = streamCluster({ name: '30-ws-sipjs', edges: 1, cores: 2, proxy: { t1_ms: 100, t2_ms: 400 } });
	const { open, test: wsTest } = sipjsTests(c);

	/* A registered SIP.js user, stopped at the end of the test. */
	async function user(name, o = {}) {
		const u = await SipJsUA.open({
			user: `${name}-${rand(3)}`, server: c.wsUrl(1, !!o.secure), ...o,
			...(o.user ? { user: o.user } : {}),
		});
		open.push(u);
		c.addEvidence(`SIP.js ${u.user} log`, u.log.join('\n'));
		return u;
	}

	/* c.test with the SIP.js users stopped afterwards. */
	wsTest('SIP.js registers over WS and over WSS', async () => {
		const a = await user('wsreg');
		const b = await user('wssreg', { secure: true });
		assert.ok(a.registerer && b.registerer);
	});

	wsTest('MESSAGE between two WebSocket users (WS to WSS and back)', async () => {
		const a = await user('alice');
		const b = await user('bob', { secure: true });
		assert.equal(await a.message(b.aor, 'hello bob'), 200);
		await b.waitMessage('hello bob');
		assert.equal(await b.message(a.aor, 'hello alice'), 200);
		await a.waitMessage('hello alice');
	});

	wsTest('MESSAGE to an AOR registered by two WebSocket clients reaches both', async () => {
		const name = `conf-${rand(4)}`;
		const p1 = await user('p1', { user: name });
		const p2 = await user('p2', { user: name, secure: true });
		const s = await user('sender');
		assert.equal(await s.message(p1.aor, 'to the room'), 200);
		await p1.waitMessage('to the room');
		await p2.waitMessage('to the room');
	});

	/* RFC 3261 16.5: a proxy whose target set is empty answers 480; an
	 * AOR that had bindings stays known for a while (404 is for a user
	 * the registrar has never seen, 40-errors). */
	wsTest('after un-REGISTER a MESSAGE gets 480', async () => {
		const a = await user('gone');
		const s = await user('sender');
		await a.unregister();
		const st = await s.message(a.aor, 'anyone?');
		assert.equal(st, 480, `MESSAGE to ${a.aor} after its un-REGISTER got ${st}`);
		assert.equal(a.messages.length, 0);
	});

	wsTest('a closed WebSocket\'s binding is removed and not used; with no contact left the AOR answers 480', async () => {
		const name = `flow-${rand(4)}`;
		const keep = await user('keep', { user: name });
		const lost = await user('lost', { user: name });
		const s = await user('sender');
		const reg = new Registration(await c.ua('query'), c.edge(), name, 'ws.test');
		const uris = (bs) => bs.map((b) => b.uri).sort();
		const both = [normUri(keep.contactUri), normUri(lost.contactUri)].sort();
		assert.deepEqual(uris(await reg.query()), both, 'both WebSocket contacts are bound');
		/* The tab crashes: the socket dies without un-REGISTER.  The
		 * edge sees the close and the core drops the flow's binding. */
		lost.socket.terminate();
		await waitBindings(reg, (bs) => uris(bs).join() === normUri(keep.contactUri), 3000,
			'the closed WebSocket\'s binding to go');
		const t0 = Date.now();
		assert.equal(await s.message(keep.aor, 'after the crash'), 200);
		await keep.waitMessage('after the crash');
		assert.equal(lost.messages.length, 0);
		assert.ok(Date.now() - t0 < 3000, 'no wait for a dead branch');
		/* With no contact left the AOR is known but unreachable: 480. */
		keep.socket.terminate();
		await waitBindings(reg, (bs) => bs.length === 0, 3000, 'the last binding to go');
		const st = await s.message(keep.aor, 'nobody');
		assert.equal(st, 480, `MESSAGE to ${keep.aor} with every flow closed got ${st}`);
	});

	wsTest('JsSIP registers over WS and exchanges MESSAGE with a SIP.js user', async () => {
		const j = await jssipUA({ user: `jssip-${rand(3)}`, server: c.wsUrl(1, true) });
		try {
			const a = await user('sipjs');
			assert.equal(await a.message(`sip:${j.user}@ws.test`, 'hi jssip'), 200);
			await a.waitFor(() => j.messages.includes('hi jssip'), 5000, 'JsSIP got it');
			assert.equal(await j.message(a.aor, 'hi sipjs'), 200);
			await a.waitMessage('hi sipjs');
		} finally {
			await j.stop();
		}
	});

	wsTest('SIP.js and a sipp UDP user exchange MESSAGE both ways', async () => {
		const a = await user('web', { domain: 'a.test' });
		const u = `sipp-${rand(3)}`;
		const uas = await startUas(c, { user: u, scenario: 'uas_message.xml', calls: 1 });
		assert.equal(await a.message(`sip:${u}@a.test`, 'hello sipmesh from the web'), 200);
		assertOk(await uas.wait(10000), 'sipp got the MESSAGE');
		const uac = await runSipp(c, {
			scenario: 'uac_message.xml', dest: c.edge(), service: a.user, keys: { sm_domain: 'a.test' },
		});
		assertOk(uac, 'sipp sender');
		await a.waitFor(() => a.messages.some((m) => /^hello sipmesh/.test(m.body)), 3000, 'MESSAGE from sipp');
	});

	wsTest('SIP.js calls a sipp UDP user and hangs up (BYE from the WebSocket side)', async () => {
		const a = await user('caller', { domain: 'a.test' });
		const u = `callee-${rand(3)}`;
		const uas = await startUas(c, { user: u, scenario: 'uas_call.xml', calls: 1 });
		const s = await a.invite(`sip:${u}@a.test`);
		await a.bye(s);
		assertOk(await uas.wait(10000), 'sipp callee');
	});

	wsTest('SIP.js calls a sipp UDP user who hangs up (BYE to the WebSocket side)', async () => {
		const a = await user('caller', { domain: 'a.test' });
		const u = `callee-${rand(3)}`;
		const uas = await startUas(c, { user: u, scenario: 'uas_call_bye.xml', calls: 1 });
		const s = await a.invite(`sip:${u}@a.test`);
		await a.waitFor(() => a.byes.length === 1, 5000, 'BYE from sipp');
		assert.equal(a.byes[0], s.request.callId);
		assertOk(await uas.wait(10000), 'sipp callee');
	});

	wsTest('a sipp UDP user calls SIP.js and hangs up', async () => {
		const a = await user('callee', { domain: 'a.test' });
		const r = await runSipp(c, {
			scenario: 'uac_call.xml', dest: c.edge(), service: a.user, keys: { sm_domain: 'a.test' },
		});
		assertOk(r, 'sipp caller');
		await a.waitFor(() => a.byes.length === 1, 3000, 'BYE from sipp');
	});

	wsTest('a sipp UDP user calls SIP.js, which hangs up', async () => {
		const a = await user('callee', { domain: 'a.test' });
		const sipp = runSipp(c, {
			scenario: 'uac_call_bye.xml', dest: c.edge(), service: a.user, keys: { sm_domain: 'a.test' },
		});
		await a.waitFor(() => a.invites.length === 1 && a.invites[0].state === 'Established',
			10000, 'call established');
		await a.bye(a.invites[0]);
		assertOk(await sipp, 'sipp caller');
	});
});
