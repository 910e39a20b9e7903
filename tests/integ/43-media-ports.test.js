'use strict';
/*
 * 43 media ports: two rtpengines with media port ranges so small that
 * each holds only a couple of calls.  Calls are answered and never
 * hung up, so their ports stay taken.  An rtpengine that answers "Ran
 * out of ports" is alive: rtpctl moves the new call to the other and
 * marks nobody down; once both are full the caller gets 503 with
 * Retry-After and a Warning that says so.  Before commit "rtpctl: an
 * instance out of ports passes the call on" the first full rtpengine
 * turned the call into 500 Server Internal Error while the other still
 * had ports.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand } = require('./lib/cluster');
const { startUas } = require('./lib/sipp');
const { invite } = require('./lib/flows');

function audioPort(body) {
	const m = /^m=audio (\d+) /m.exec(body.toString('latin1'));
	return m ? Number(m[1]) : undefined;
}

describe('43 media ports', () => {
	const c = cluster({ name: '43-media-ports', cores: 2, media: { rtpengines: 2, rtpctls: 1, portsPerEngine: 8 } });

	c.test('a full rtpengine passes new calls to the other; both full: 503 with Retry-After, nobody marked down', async (t) => {
		const [A, B] = c.rtpengines;
		const user = `full-${rand(3)}`;
		await startUas(c, { user, scenario: 'media_uas_answer.xml', calls: 20, timeout: 60, keys: { sm_name: 'callee' } });
		const ua = await c.ua('filler');
		const since = Date.now();
		const ports = [];
		let refused = null;
		for (let i = 0; i < 16 && !refused; i++) {
			const r = await invite(ua, c.edge(1), user);
			if (r.status === 200) ports.push(audioPort(r.body));
			else refused = r;
		}
		t.diagnostic(`calls answered before the first refusal: ${ports.length}, relay ports ${ports.join(' ')}`);
		assert.ok(refused, `16 calls all answered: the ranges of ${A.min}-${A.max} and ${B.min}-${B.max} did not fill`);
		assert.equal(refused.status, 503, `the call after both filled: ${refused.status} ${refused.reason}`);
		assert.equal(refused.get('retry-after'), '5');
		assert.match(refused.get('warning') || '', /^399 sipmesh "no rtpengine has free ports"$/);
		const inA = ports.filter((p) => p >= A.min && p <= A.max).length;
		const inB = ports.filter((p) => p >= B.min && p <= B.max).length;
		assert.ok(inA > 0 && inB > 0, `calls on ${A.name}: ${inA}, on ${B.name}: ${inB}; both should have taken some`);
		assert.equal(inA + inB, ports.length, 'an answer with a port outside both ranges');
		await c.waitRtpctlLog('ran out of ports', since, 3000);
		const down = c.rtpctls.flatMap((r) => r.proc.lines.filter((l) => l.t >= since && /is down/.test(l.s)));
		assert.deepEqual(down.map((l) => l.s), [], 'a full rtpengine was taken for a dead one');
	});
});
