'use strict';
/*
 * 72 process faults: a cluster with media (one edge, two cores, one
 * rtpctl, two rtpengines, Redis) under a steady load of REGISTER
 * refreshes and MESSAGEs (Node UAs over UDP) and sipp calls with SDP
 * anchored on rtpengine; one process at a time is killed with SIGKILL
 * and started again 1 s later, as systemd's Restart= does in deploy/.
 * Each test asserts that no binding is lost (every AOR reachable and
 * in Redis afterwards), that new requests succeed within 2 s of the
 * restart, and bounds the requests and calls that failed; it reports
 * them as one "fault: ..." line (the closing note's table).  Redis
 * faults are 70-redis-faults; they time recovery on a busy machine:
 * integ: serial
 */
const assert = require('node:assert/strict');
const { describe, afterEach } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { message } = require('./lib/flows');
const { startSipp, startUas, countMessages } = require('./lib/sipp');
const { hold, startLoad, stopLoads, inRedis, registerMany, unreachable, report } = require('./lib/load');

const AORS = 40;
const CALL_RATE = 3;	/* calls per second during a test */
const CALLS = 18;

describe('72 process faults', () => {
	const c = cluster({
		name: '72-process-faults', edges: 1, cores: 2, redis: { timeout_ms: 500, backoff_max_ms: 1000 },
		media: { rtpengines: 2, rtpctls: 1 },
	});
	afterEach(stopLoads);

	/* Calls: a sipp UAS answering with SDP, a sipp UAC at CALL_RATE. */
	async function startCalls(tag) {
		const user = `${tag}-callee-${rand(3)}`;
		const uas = await startUas(c, {
			user, scenario: 'media_uas_answer.xml', calls: CALLS, timeout: 60, keys: { sm_name: 'callee' },
		});
		const uac = await startSipp(c, {
			scenario: 'media_uac_call.xml', dest: c.edge(1), service: user, keys: { sm_domain: 'a.test' },
			calls: CALLS, rate: CALL_RATE, timeout: 60, args: ['-cid_str', `${tag}-%u-%s`],
		});
		return { uas, uac };
	}

	async function fault(t, name, tag, kill, restart) {
		const ua = await c.ua(`${tag}-ua`);
		const regs = await registerMany(c, ua, c.edge(1), tag, AORS);
		await waitUntil(async () => (await inRedis(c, regs)) === AORS, 5000, 'the bindings in Redis');
		const calls = await startCalls(tag);
		const load = startLoad(await c.ua(`${tag}-sender`), c.edge(1), regs);
		await hold(1500);
		await kill();
		await hold(1000);		/* RestartSec=1 */
		const restarted = Date.now();
		await restart();
		const probe = await c.ua(`${tag}-probe`);
		await waitUntil(async () => {
			const r = await message(probe, c.edge(1), regs[0].user, 'a.test', { timeout: 1000 }).catch(() => null);
			return r && r.status === 200;
		}, 10000, 'a MESSAGE to succeed after the restart', 20);
		const recovery = (Date.now() - restarted) / 1000;
		await hold(1500);
		const fig = await load.stop();
		const r = await calls.uac.wait(90000);
		await calls.uas.stop(1000);
		const sent = countMessages(r, 'sent', /^INVITE /);
		const answered = countMessages(r, 'received', /^SIP\/2\.0 200 [\s\S]*CSeq: 1 INVITE/i);
		const lost = AORS - await inRedis(c, regs);
		const bad = await unreachable(await c.ua(`${tag}-check`), c.edge(1), regs);
		report(t, name, { ...fig, lost, recovery, extra: `calls answered ${answered}/${sent}` });
		c.addEvidence(`${name}: load`, JSON.stringify(fig));
		assert.equal(lost, 0, 'bindings missing from Redis');
		assert.equal(bad, 0, 'AORs unreachable after the restart');
		assert.ok(recovery < 2, `recovery took ${recovery} s`);
		assert.ok(fig.failed <= Math.max(3, fig.sent * 0.05),
			`${fig.failed} of ${fig.sent} requests failed: ${fig.failures.join('; ')}`);
		assert.ok(answered >= sent / 2, `only ${answered} of ${sent} calls answered`);
		c.assertAlive();
	}

	c.test('kill -9 of the edge, restarted 1 s later', { timeout: 180000 }, async (t) => {
		await fault(t, 'edge kill -9', 'fe', () => c.stopEdge(1, 'SIGKILL'), () => c.startEdge(1));
	});

	c.test('kill -9 of a core, restarted 1 s later', { timeout: 180000 }, async (t) => {
		await fault(t, 'core kill -9', 'fc', () => c.kill('core', 1), () => c.startAgain('core', 1));
	});

	c.test('kill -9 of rtpctl, restarted 1 s later', { timeout: 180000 }, async (t) => {
		await fault(t, 'rtpctl kill -9', 'fr', () => c.kill('rtpctl', 1), () => c.startAgain('rtpctl', 1));
	});

	c.test('kill -9 of one rtpengine, restarted 1 s later', { timeout: 180000 }, async (t) => {
		const [A] = c.rtpengines;
		await fault(t, 'rtpengine kill -9', 'fm', () => c.killRtpengine(A), () => c.restartRtpengine(A));
	});
});
