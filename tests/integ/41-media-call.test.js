'use strict';
/*
 * 41 media call: sipp calls through a cluster that anchors media on two
 * real rtpengine daemons through two sipmesh-rtpctl processes
 * (cluster({ media })), checked the way a user would notice:
 *   - the SDP each side receives points at the relay (c=127.0.0.1, a
 *     port in the serving rtpengine's range, never the other party's
 *     own port) with RTP/AVP on both sides (phone -> phone);
 *   - RTP really flows: the caller plays a PCMA pcap from its media
 *     port to the relay, the callee (sipp -rtp_echo) sends every packet
 *     back, and rtpengine's ng query counts packets received on both
 *     legs, each from the right party's media port;
 *   - after BYE, CANCEL or a failed call the session is gone from
 *     rtpengine (ng query: unknown call; ng list: not listed);
 *   - a forked call: each branch gets its own relay ports (via-branch),
 *     the losing branch's early answer and the winner's 200 both reach
 *     the caller, and RTP goes between the caller and the winner;
 *   - one rtpengine SIGKILLed under a stream of calls: every call made
 *     after rtpctl noticed succeeds on the other; both dead: the caller
 *     gets 503 with a Warning naming the cause, every sipmesh process
 *     stays up and answers; restarted rtpengines are taken back.
 *
 * Call-IDs are chosen with sipp's -cid_str so that the test can ask
 * rtpengine about the call while it runs.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { describe, it } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { startSipp, runSipp, startUas, assertOk } = require('./lib/sipp');

const PCAP = '/usr/share/sip-tester/g711a.pcap';	/* played by media_uac_rtp.xml */
const MIN_PACKETS = 25;	/* 0.5 s of 20 ms packets: media flows, not a stray packet */

/* ---- reading sipp's message logs ---- */

/* The first message of a sipp run in direction dir whose text matches re. */
function msgOf(r, dir, re) {
	const m = r.parsed.find((x) => x.dir === dir && re.test(x.text));
	assert.ok(m, `no ${dir} message matching ${re} in the sipp log`);
	return m.text;
}

function header(text, name) {
	const m = new RegExp(`^${name}:[ \\t]*(.*)$`, 'mi').exec(text);
	return m ? m[1].trim() : undefined;
}

/* {c, s, o, media: [{type, port, proto, fmts}]} of a message's SDP body, or null. */
function sdpOf(text) {
	const parts = text.split(/\r?\n\r?\n/);
	if (parts.length < 2) return null;
	const body = parts.slice(1).join('\n');
	if (!/^v=0/m.test(body)) return null;
	const sdp = { media: [], raw: body };
	for (const l of body.split(/\r?\n/)) {
		const m = /^([a-z])=(.*)$/.exec(l.trim());
		if (!m) continue;
		if (m[1] === 'm') {
			const [type, port, proto, ...fmts] = m[2].split(/\s+/);
			sdp.media.push({ type, port: Number(port), proto, fmts });
		} else if (m[1] === 'c' && !sdp.media.length) {
			sdp.c = m[2];
		} else if (m[1] === 's' || m[1] === 'o') {
			sdp[m[1]] = m[2];
		}
	}
	return sdp;
}

function toTag(text) {
	const m = /;\s*tag=([^;>\s]+)/i.exec(header(text, 'To') || '');
	return m ? m[1] : undefined;
}

function topBranch(text) {
	const m = /branch=([^;,\s]+)/i.exec(header(text, 'Via') || '');
	return m ? m[1] : undefined;
}

/*
 * Asserts that an SDP seen by one party points at the relay: the
 * connection address is loopback, the audio port lies in the range of
 * engine (an entry of c.rtpengines) and is not otherPort (the other
 * party's own media port), with profile proto.
 */
function assertRelayed(sdp, what, { engine, otherPort, proto = 'RTP/AVP' }) {
	assert.ok(sdp, `${what}: no SDP`);
	assert.equal(sdp.c, 'IN IP4 127.0.0.1', `${what}: c= is "${sdp.c}"\n${sdp.raw}`);
	const a = sdp.media.find((m) => m.type === 'audio');
	assert.ok(a, `${what}: no m=audio\n${sdp.raw}`);
	assert.equal(a.proto, proto, `${what}: profile ${a.proto}, expected ${proto}\n${sdp.raw}`);
	assert.notEqual(a.port, otherPort, `${what}: m=audio ${a.port} is the other party's own port: not anchored\n${sdp.raw}`);
	assert.ok(a.port >= engine.min && a.port <= engine.max,
		`${what}: m=audio ${a.port} is outside ${engine.name}'s range ${engine.min}-${engine.max}\n${sdp.raw}`);
	assert.doesNotMatch(sdp.raw, /a=(candidate|ice-ufrag|fingerprint|crypto)/, `${what}: WebRTC attributes left\n${sdp.raw}`);
	return a.port;
}

function audioPort(sdp) {
	return sdp.media.find((m) => m.type === 'audio').port;
}

/* ---- rtpengine's view of a call (ng query) ---- */

/* [{tag, viaBranch, localPorts, rtp: {endpointPort, packets}}] of a query reply. */
function legs(q) {
	return Object.values(q.tags || {}).map((t) => {
		const streams = (t.medias || []).flatMap((m) => m.streams || []);
		const rtp = streams.find((s) => (s.flags || []).includes('RTP')) || streams[0] || {};
		return {
			tag: t.tag,
			viaBranch: t['via-branch'],
			localPorts: streams.map((s) => s['local port']),
			rtp: {
				endpointPort: rtp.endpoint ? rtp.endpoint.port : undefined,
				packets: rtp.stats ? rtp.stats.packets : 0,
			},
		};
	});
}

function legOf(q, tag) {
	const l = legs(q).find((x) => x.tag === tag);
	assert.ok(l, `rtpengine has no leg with tag ${tag}: ${JSON.stringify(legs(q))}`);
	return l;
}

/* A fresh Call-ID for a one-call sipp run: [args, callId]. */
function cidArgs(what) {
	const p = `${what}-${rand(4)}`;
	return [['-cid_str', `${p}-%u@%s`], `${p}-1@127.0.0.1`];
}

describe('41 media call', () => {
	const c = cluster({ name: '41-media-call', cores: 2, media: { rtpengines: 2, rtpctls: 2 } });
	let forked = null;	/* the forked call, for the test after it */

	c.test('RTP flows through the relay: both SDPs point at rtpengine with RTP/AVP, packets on both legs; BYE deletes the session', async (t) => {
		assert.ok(fs.existsSync(PCAP), `${PCAP} is missing (package sip-tester)`);
		const user = `echo-${rand(3)}`;
		const callee = await startUas(c, {
			user, scenario: 'media_uas_answer.xml', keys: { sm_name: 'callee' }, args: ['-rtp_echo'],
		});
		const [args, cid] = cidArgs('rtp');
		const caller = await startSipp(c, {
			scenario: 'media_uac_rtp.xml', dest: c.edge(1), service: user,
			keys: { sm_domain: 'a.test' }, args,
		});
		const { engine } = await c.engineHolder(cid);
		/* The caller talks for 3 s: both legs must count packets by then. */
		let q = null;
		await waitUntil(async () => {
			q = await c.ngQuery(engine, cid);
			const ls = legs(q);
			return ls.length === 2 && ls.every((l) => l.rtp.packets >= MIN_PACKETS);
		}, 2800, `${MIN_PACKETS} RTP packets on both legs in rtpengine`).catch((err) => {
			err.message += `\nlast query: ${JSON.stringify(legs(q || {}))}`;
			throw err;
		});
		const [rc, re] = [await caller.wait(30000), await callee.wait(30000)];
		assertOk(rc, 'caller (media_uac_rtp.xml)');
		assertOk(re, 'callee (media_uas_answer.xml -rtp_echo)');

		const invSent = msgOf(rc, 'sent', /^INVITE /);
		const callerPort = audioPort(sdpOf(invSent));
		const invGot = msgOf(re, 'received', /^INVITE /);
		const okSent = msgOf(re, 'sent', /^SIP\/2\.0 200[^]*CSeq:\s*1 INVITE/i);
		const calleePort = audioPort(sdpOf(okSent));
		const okGot = msgOf(rc, 'received', /^SIP\/2\.0 200[^]*CSeq:\s*1 INVITE/i);
		const toCallee = assertRelayed(sdpOf(invGot), "the callee's INVITE", { engine, otherPort: callerPort });
		const toCaller = assertRelayed(sdpOf(okGot), "the caller's 200", { engine, otherPort: calleePort });
		assert.equal(sdpOf(okGot).s, 'callee', "the caller's 200 carries the callee's answer");

		/* rtpengine's legs: the caller's (From tag) sends to toCaller, the callee's to toCallee. */
		const callerLeg = legOf(q, /tag=([^;>\s]+)/.exec(header(invSent, 'From'))[1]);
		const calleeLeg = legOf(q, toTag(okGot));
		assert.ok(callerLeg.localPorts.includes(toCaller), `the port in the caller's 200 (${toCaller}) is the caller leg's (${callerLeg.localPorts})`);
		assert.ok(calleeLeg.localPorts.includes(toCallee), `the port in the callee's INVITE (${toCallee}) is the callee leg's (${calleeLeg.localPorts})`);
		assert.equal(callerLeg.rtp.endpointPort, callerPort, "RTP from the caller's media port");
		assert.equal(calleeLeg.rtp.endpointPort, calleePort, "RTP (echo) from the callee's media port");
		t.diagnostic(`call on ${engine.name}: caller ${callerPort} <-> relay ${toCaller}|${toCallee} <-> callee ${calleePort}; ` +
			`packets from caller ${callerLeg.rtp.packets}, from callee ${calleeLeg.rtp.packets}`);
		await c.assertEngineGone(cid, 'BYE');
	});

	c.test('CANCEL during early media: the 183 SDP is relayed, and the session is gone from rtpengine afterwards', async () => {
		const user = `cancel-${rand(3)}`;
		const callee = await startUas(c, { user, scenario: 'media_uas_early_cancel.xml', keys: { sm_name: 'early' } });
		const [args, cid] = cidArgs('cancel');
		const caller = await startSipp(c, {
			scenario: 'media_uac_cancel.xml', dest: c.edge(1), service: user, keys: { sm_domain: 'a.test' }, args,
		});
		/* The caller waits 1.5 s in early media: the session exists. */
		const { engine, reply } = await c.engineHolder(cid);
		assert.equal(legs(reply).length, 2, `both legs known during early media: ${JSON.stringify(legs(reply))}`);
		const [rc, re] = [await caller.wait(30000), await callee.wait(30000)];
		assertOk(rc, 'caller (media_uac_cancel.xml)');
		assertOk(re, 'callee (media_uas_early_cancel.xml)');
		const callerPort = audioPort(sdpOf(msgOf(rc, 'sent', /^INVITE /)));
		const calleePort = audioPort(sdpOf(msgOf(re, 'sent', /^SIP\/2\.0 183/)));
		assertRelayed(sdpOf(msgOf(re, 'received', /^INVITE /)), "the callee's INVITE", { engine, otherPort: callerPort });
		assertRelayed(sdpOf(msgOf(rc, 'received', /^SIP\/2\.0 183/)), "the caller's 183", { engine, otherPort: calleePort });
		await c.assertEngineGone(cid, 'CANCEL (487)');
	});

	c.test('486 after early media: the session is gone from rtpengine afterwards', async () => {
		const user = `busy-${rand(3)}`;
		const callee = await startUas(c, { user, scenario: 'media_uas_early_busy.xml', keys: { sm_name: 'early' } });
		const [args, cid] = cidArgs('busy');
		const caller = await startSipp(c, {
			scenario: 'media_uac_busy.xml', dest: c.edge(1), service: user, keys: { sm_domain: 'a.test' }, args,
		});
		const { engine, reply } = await c.engineHolder(cid);
		assert.equal(legs(reply).length, 2, `both legs known during early media: ${JSON.stringify(legs(reply))}`);
		const [rc, re] = [await caller.wait(30000), await callee.wait(30000)];
		assertOk(rc, 'caller (media_uac_busy.xml)');
		assertOk(re, 'callee (media_uas_early_busy.xml)');
		const calleePort = audioPort(sdpOf(msgOf(re, 'sent', /^SIP\/2\.0 183/)));
		assertRelayed(sdpOf(msgOf(rc, 'received', /^SIP\/2\.0 183/)), "the caller's 183", { engine, otherPort: calleePort });
		await c.assertEngineGone(cid, '486');
	});

	c.test('the callee hangs up: its BYE (From and To swapped) deletes the session too', async () => {
		const user = `byecallee-${rand(3)}`;
		const callee = await startUas(c, { user, scenario: 'uas_call_bye.xml' });
		const [args, cid] = cidArgs('calleebye');
		const caller = await startSipp(c, {
			scenario: 'uac_call_bye.xml', dest: c.edge(1), service: user, keys: { sm_domain: 'a.test' }, args,
		});
		const { engine } = await c.engineHolder(cid);
		const [rc, re] = [await caller.wait(30000), await callee.wait(30000)];
		assertOk(rc, 'caller (uac_call_bye.xml)');
		assertOk(re, 'callee (uas_call_bye.xml)');
		const callerPort = audioPort(sdpOf(msgOf(rc, 'sent', /^INVITE /)));
		assertRelayed(sdpOf(msgOf(re, 'received', /^INVITE /)), "the callee's INVITE", { engine, otherPort: callerPort });
		await c.assertEngineGone(cid, "the callee's BYE");
	});

	c.test('forked INVITE to two UDP contacts: own relay ports per branch (via-branch), the winner\'s answer and RTP reach the caller', async (t) => {
		const user = `fork-${rand(3)}`;
		/* Two contacts for one AOR: the loser answers 183 at once and is
		 * cancelled, the winner answers 200 after 0.8 s and echoes RTP. */
		const loser = await startUas(c, { user, scenario: 'media_uas_early_cancel.xml', keys: { sm_name: 'loser' } });
		const winner = await startUas(c, {
			user, scenario: 'media_uas_late_answer.xml', keys: { sm_name: 'winner' }, args: ['-rtp_echo'],
		});
		const [args, cid] = cidArgs('fork');
		const caller = await startSipp(c, {
			scenario: 'media_uac_rtp.xml', dest: c.edge(1), service: user, keys: { sm_domain: 'a.test' }, args,
		});
		const { engine } = await c.engineHolder(cid);
		/* Wait for RTP both ways: from the caller (its From tag is
		 * sipp's [pid]SIPpTag00[call_number]) and from a callee. */
		const callerTag = `${caller.proc.pid}SIPpTag001`;
		let q = null;
		await waitUntil(async () => {
			q = await c.ngQuery(engine, cid);
			const ls = legs(q);
			return ls.some((l) => l.tag === callerTag && l.rtp.packets >= MIN_PACKETS) &&
				ls.some((l) => l.tag !== callerTag && l.rtp.packets >= MIN_PACKETS);
		}, 3600, `${MIN_PACKETS} RTP packets both ways in rtpengine`).catch((err) => {
			err.message += `\nlast query: ${JSON.stringify(legs(q || {}))}`;
			throw err;
		});
		const rc = await caller.wait(30000);
		const [rw, rl] = [await winner.wait(30000), await loser.wait(30000)];
		assertOk(rc, 'caller (media_uac_rtp.xml)');
		assertOk(rw, 'winning callee (media_uas_late_answer.xml -rtp_echo)');
		assertOk(rl, 'losing callee (media_uas_early_cancel.xml), cancelled by the proxy');

		const invSent = msgOf(rc, 'sent', /^INVITE /);
		assert.equal(/tag=([^;>\s]+)/.exec(header(invSent, 'From'))[1], callerTag);
		const callerPort = audioPort(sdpOf(invSent));
		const invW = msgOf(rw, 'received', /^INVITE /);
		const invL = msgOf(rl, 'received', /^INVITE /);
		const portW = assertRelayed(sdpOf(invW), "the winner's INVITE", { engine, otherPort: callerPort });
		const portL = assertRelayed(sdpOf(invL), "the loser's INVITE", { engine, otherPort: callerPort });
		assert.notEqual(portW, portL, `both branches got relay port ${portW}: forked branches must have their own media`);
		assert.notEqual(topBranch(invW), topBranch(invL), 'the branches have their own Via branch');

		const early = msgOf(rc, 'received', /^SIP\/2\.0 183/);
		const ok = msgOf(rc, 'received', /^SIP\/2\.0 200[^]*CSeq:\s*1 INVITE/i);
		const loserTag = toTag(msgOf(rl, 'sent', /^SIP\/2\.0 183/));
		const winTag = toTag(msgOf(rw, 'sent', /^SIP\/2\.0 200/));
		assert.equal(toTag(early), loserTag, "the caller's 183 is the loser's");
		assert.equal(sdpOf(early).s, 'loser');
		assert.equal(toTag(ok), winTag, "the caller's 200 is the winner's");
		assert.equal(sdpOf(ok).s, 'winner', "the caller's 200 carries the winner's answer");
		const winnerPort = audioPort(sdpOf(msgOf(rw, 'sent', /^SIP\/2\.0 200/)));
		const toCaller = assertRelayed(sdpOf(ok), "the caller's 200", { engine, otherPort: winnerPort });

		/* rtpengine: one leg per branch, each under its Via branch, and
		 * the RTP went caller <-> winner. */
		const lw = legOf(q, winTag);
		const ll = legOf(q, loserTag);
		const lc = legOf(q, callerTag);
		assert.equal(lw.viaBranch, topBranch(invW), "the winner's leg is kept under its branch");
		assert.equal(ll.viaBranch, topBranch(invL), "the loser's leg is kept under its branch");
		assert.ok(lw.localPorts.includes(portW) && ll.localPorts.includes(portL),
			`branch ports ${portW}/${portL} belong to the winner/loser legs ${lw.localPorts}/${ll.localPorts}`);
		assert.ok(lc.localPorts.includes(toCaller), `the 200's port ${toCaller} is the caller leg's ${lc.localPorts}`);
		assert.equal(lw.rtp.endpointPort, winnerPort, "RTP echoed from the winner's media port");
		assert.equal(lc.rtp.endpointPort, callerPort, "RTP from the caller's media port");
		assert.equal(ll.rtp.packets, 0, 'the loser sent nothing');
		t.diagnostic(`fork on ${engine.name}: winner relay port ${portW}, loser ${portL}, caller ${toCaller}; ` +
			`packets caller ${lc.rtp.packets}, winner ${lw.rtp.packets}, loser ${ll.rtp.packets}`);
		forked = { cid, engine, callerTag };
	});

	/*
	 * A delete naming the BYE's tags ends one dialogue only: the
	 * cancelled branch's leg (offered under its own via-branch) would
	 * keep the call alive in rtpengine.  The core deletes by Call-ID.
	 */
	it('forked call: after BYE the session is gone from rtpengine, the cancelled branch\'s leg too', {
		timeout: 10000,
	}, async (t) => {
		assert.ok(forked, 'the forked call test did not get as far as the BYE');
		const q = await c.ngQuery(forked.engine, forked.cid);
		if (q.result === 'ok')
			t.diagnostic(`left in ${forked.engine.name} after BYE: ` +
				legs(q).map((l) => `${l.tag || '(no tag)'} via-branch=${l.viaBranch || '-'}`).join(', '));
		await c.assertEngineGone(forked.cid, 'BYE of the forked call');
	});

	c.test('one rtpengine SIGKILLed under a stream of calls: every call after rtpctl noticed succeeds on the other', { timeout: 120000 }, async (t) => {
		const [A, B] = c.rtpengines;
		const user = `stream-${rand(3)}`;
		const N = 24, KILL_AT = 6, GAP_MS = 250;
		const callee = await startUas(c, {
			user, scenario: 'media_uas_answer.xml', keys: { sm_name: 'callee' }, calls: 1000, timeout: 120,
		});
		const call = async (i, what) => {
			const [args, cid] = cidArgs(`${what}${i}`);
			const sentAt = Date.now();
			const r = await runSipp(c, {
				scenario: 'media_uac_call.xml', dest: c.edge(1), service: user, keys: { sm_domain: 'a.test' },
				args, timeout: 10, label: `sipp ${what} call ${i} (${cid})`,
			});
			return { i, cid, sentAt, endAt: Date.now(), r };
		};
		const runs = [];
		let killedAt = 0;
		for (let i = 0; i < N; i++) {
			if (i === KILL_AT) await c.killRtpengine(A);
			if (i === KILL_AT) killedAt = A.killedAt;
			runs.push(call(i, 'stream'));
			await new Promise((r) => setTimeout(r, GAP_MS));
		}
		const rs = await Promise.all(runs);
		const detected = await c.waitRtpctlLog(`rtpengine ${A.addr} is down`, killedAt, 3000);
		const before = rs.filter((x) => x.sentAt <= detected);
		const after = rs.filter((x) => x.sentAt > detected);
		assert.ok(after.length >= 10, `${after.length} calls were made after the detection (${detected - killedAt} ms after the kill)`);
		/* Calls around the kill may fail once; each is retried and must pass. */
		const retried = [];
		for (const x of before.filter((y) => !y.r.ok)) {
			const again = await call(x.i, 'retry');
			assertOk(again.r, `retry of call ${x.i} (first try failed around the kill)`);
			retried.push(x.i);
		}
		for (const x of after) assertOk(x.r, `call ${x.i} (${x.cid}), made ${x.sentAt - detected} ms after rtpctl noticed`);
		/* Every call after the detection was anchored on B; before the
		 * kill, A took its share (else the kill proved nothing). */
		await callee.stop(1000);
		const relayPort = (x) => {
			const inv = callee.result.parsed.find((m) => m.dir === 'received' && /^INVITE /.test(m.text) &&
				header(m.text, 'Call-ID') === x.cid);
			assert.ok(inv, `the callee never got call ${x.i} (${x.cid})`);
			return audioPort(sdpOf(inv.text));
		};
		const onA = rs.filter((x) => x.i < KILL_AT && x.r.ok).filter((x) => {
			const p = relayPort(x);
			return p >= A.min && p <= A.max;
		});
		assert.ok(onA.length > 0, `no call before the kill was anchored on ${A.name}`);
		for (const x of after) {
			const p = relayPort(x);
			assert.ok(p >= B.min && p <= B.max, `call ${x.i} after detection has relay port ${p}, not in ${B.name}'s ${B.min}-${B.max}`);
		}
		t.diagnostic(`${A.name} killed after call ${KILL_AT} (${onA.length} of the ${KILL_AT} calls before were on it); ` +
			`every rtpctl noticed within ${detected - killedAt} ms; ` +
			`${before.length} calls before (${retried.length} failed and were retried: [${retried}]), ` +
			`${after.length} after, all succeeded on ${B.name}`);
		c.assertAlive();
	});

	c.test('both rtpengines dead: the caller gets 503 with a Warning, every process stays up; restarted ones are taken back', async (t) => {
		const [A, B] = c.rtpengines;
		if (A.proc.alive) await c.killRtpengine(A);
		const killedAt = Date.now();
		await c.killRtpengine(B);
		await c.waitRtpctlLog(`rtpengine ${B.addr} is down`, killedAt, 3000);
		const user = `nomedia-${rand(3)}`;
		const callee = await startUas(c, { user, scenario: 'media_uas_answer.xml', keys: { sm_name: 'callee' } });
		for (let i = 0; i < 3; i++) {
			const [args, cid] = cidArgs(`nomedia${i}`);
			const r = await runSipp(c, {
				scenario: 'media_uac_5xx.xml', dest: c.edge(1), service: user, keys: { sm_domain: 'a.test' }, args,
			});
			assertOk(r, `call ${cid} with no rtpengine: a 503 with Warning: 399 sipmesh "..." expected`);
			const w = header(msgOf(r, 'received', /^SIP\/2\.0 503/), 'Warning');
			assert.match(w, /^399 sipmesh "no rtpengine available"$/, `Warning of the 503: ${w}`);
			if (i === 0) t.diagnostic(`503 Warning: ${w}`);
		}
		await callee.stop(1000);
		assert.ok(!callee.result.parsed.some((m) => m.dir === 'received' && /^INVITE /.test(m.text)),
			'the callee got an INVITE although no relay could anchor its media');
		c.assertAlive();
		const ua = await c.ua('alive');
		const e = c.edge(1);
		const res = await ua.send(e, { method: 'OPTIONS', ruri: `sip:${e.addr}`, from: 'sip:alive@a.test', to: `sip:${e.addr}` });
		assert.equal(res.status, 200, `OPTIONS after the media failures: ${res.status} ${res.reason}`);

		/* Both come back on their ports: the pings take them back. */
		const restart = Date.now();
		await c.restartRtpengine(A);
		await c.restartRtpengine(B);
		await c.waitRtpctlLog(`rtpengine ${A.addr} is up`, restart, 5000);
		await c.waitRtpctlLog(`rtpengine ${B.addr} is up`, restart, 5000);
		const user2 = `back-${rand(3)}`;
		const callee2 = await startUas(c, { user: user2, scenario: 'media_uas_answer.xml', keys: { sm_name: 'callee' } });
		const [args, cid] = cidArgs('back');
		const caller = await runSipp(c, {
			scenario: 'media_uac_call.xml', dest: c.edge(1), service: user2, keys: { sm_domain: 'a.test' }, args,
		});
		assertOk(caller, 'a call after both rtpengines came back');
		assertOk(await callee2.wait(10000), 'its callee');
		const inv = msgOf(callee2.result, 'received', /^INVITE /);
		const p = audioPort(sdpOf(inv));
		assert.ok([A, B].some((x) => p >= x.min && p <= x.max), `relay port ${p} after the restart`);
		await c.assertEngineGone(cid, 'BYE after the restart');
		c.assertAlive();
	});
});
