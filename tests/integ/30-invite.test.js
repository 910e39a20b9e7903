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

	c.test('call; BYE from the callee is loose-routed back to the caller through the proxy', async () => {
		await call(c, 'uas_call_bye.xml', 'uac_call_bye.xml');
	});

	c.test('CANCEL of a ringing call: 200 for the CANCEL, 487 for the INVITE, the callee gets the CANCEL', async () => {
		await call(c, 'uas_cancel.xml', 'uac_cancel.xml');
	});

	c.test('486 from the callee is relayed to the caller and ACKed hop by hop', async () => {
		const { caller } = await call(c, 'uas_busy.xml', 'uac_busy.xml');
		/* One 486 only: the proxy matched our ACK and stopped retransmitting. */
		const n = countMessages(caller, 'received', /^SIP\/2\.0 486/);
		assert.equal(n, 1, `the caller received ${n} copies of the 486 ` +
			'(more than one: the proxy kept retransmitting it, so it did not match the caller\'s ACK)');
	});

	c.test('lost 200: the callee retransmits its 200 until the late ACK, every copy reaches the caller', async () => {
		const { caller, callee } = await call(c, 'uas_call.xml', 'uac_late_ack.xml');
		const got = countMessages(caller, 'received', /^SIP\/2\.0 200[^]*CSeq:\s*1 INVITE/i);
		const sent = countMessages(callee, 'sent', /^SIP\/2\.0 200[^]*CSeq:\s*1 INVITE/i);
		assert.ok(sent >= 2, `the callee sent the 200 ${sent} time(s); expected retransmissions while the ACK was late`);
		assert.ok(got >= 2, `the callee sent the 200 ${sent} times but the caller received ${got}: ` +
			'the proxy must relay retransmitted 2xx to INVITE');
	});
});
