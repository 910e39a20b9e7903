'use strict';
/*
 * 30 invite: calls between two sipp user agents through the proxy.
 * The callee is a sipp UAS registered from its own port; the caller a
 * sipp UAC sending to the edge.  Each scenario checks the proxy's part
 * in the messages it sees (Record-Route, loose routing, hop-by-hop
 * ACK); here we check that both ends completed their scenario.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand } = require('./lib/cluster');
const { runSipp, startUas, assertOk, countMessages } = require('./lib/sipp');

/* Runs callee scenario uas and caller scenario uac for a fresh AOR. */
async function call(c, uas, uac, o = {}) {
	const user = `callee-${rand(3)}`;
	const callee = await startUas(c, { user, scenario: uas, timeout: o.timeout || 20 });
	const caller = await runSipp(c, {
		scenario: uac, dest: c.edge(o.edge || 1), service: user,
		keys: { sm_domain: 'a.test' }, timeout: o.timeout || 20,
	});
	const calleeRes = await callee.wait(((o.timeout || 20) + 5) * 1000);
	assertOk(caller, `caller (${uac})`);
	assertOk(calleeRes, `callee (${uas})`);
	return { caller, callee: calleeRes };
}

describe('30 invite', () => {
	const c = cluster({ name: '30-invite', edges: 1, cores: 2 });

	c.test('call with Record-Route; ACK and BYE from the caller are loose-routed through the proxy', async () => {
		await call(c, 'uas_call.xml', 'uac_call.xml');
	});
});
