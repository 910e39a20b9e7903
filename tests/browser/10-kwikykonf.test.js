'use strict';
/*
 * 10 kwikykonf: real browsers (headless Debian Chromium, fake camera
 * and microphone) on KwikyKonf, served by a real sipmesh edge, through
 * two cores, Redis, rtpctl and two real rtpengines, all inside a
 * loopback-only network namespace (tests/browser/run.sh).  Media is
 * checked the way a user would notice, with RTCPeerConnection.getStats()
 * in each page: inbound audio and video bytes and decoded frames grow.
 *
 *   - 1:1 video call (two pages in a room);
 *   - a page served over HTTPS joins over WSS and talks to a WS page;
 *   - a 3-party and a 4-party room: every page has a session to every
 *     other page, video flows on all of them (screenshot of the
 *     3-party room);
 *   - Leave button and a closed tab: the others drop the tile within
 *     seconds (BYE), the leaver is back at the form;
 *   - a crashed tab (renderer crash) and a frozen browser (SIGSTOP:
 *     WebSocket still open, no media): the others drop its tile;
 *   - three pages joining at the same moment: exactly one INVITE per
 *     pair, nobody refused, nobody calls itself;
 *   - a protected room: no phrase and a wrong phrase are refused with a
 *     clear message, the right one joins;
 *   - a sipp UDP phone calls a browser user (RTP/AVP <-> DTLS-SRTP
 *     across rtpengine): the browser receives audio; a browser calls a
 *     sipp phone that echoes RTP: the browser hears it; a phone calling
 *     the room address is answered by exactly one participant;
 *   - clear messages when the server or the camera is unavailable.
 */
const fs = require('node:fs');
const path = require('node:path');
const { describe } = require('node:test');
const { chromium } = require('playwright-core');
const {
	kkCluster, chromiumPool, state, waitPeers, waitJoined, assertMediaFlows, check,
	launchArgs, ROOT, waitUntil, waitInvitesDone, waitMesh, protectedRoom,
} = require('./lib/browser');
const { startSipp, startUas, assertOk } = require('../integ/lib/sipp');

const SCREENSHOT = process.env.SIPMESH_SCREENSHOT ||
	path.join(ROOT, 'build', 'browser', 'screenshot-3party.png');

describe('10 kwikykonf', () => {
	const c = kkCluster({ name: '10-kwikykonf' });
	const b = chromiumPool(c);
	/* One cluster (fresh Redis) per run: each test's room name is its own. */
	const newRoom = (p) => p;

	const bt = b.test;

	/* Waits until w has no tile and no session for key. */
	async function waitGone(w, key, ms) {
		await waitUntil(async () => {
			const s = await state(w);
			return !s.tiles.includes(key) && !s.peers.some((p) => p.key === key);
		}, ms, `${w.name} to drop the tile of ${key}`, 100);
	}

	bt('1:1 video call: two pages exchange audio and video; nobody answers its own join', async () => {
		const room = newRoom('one2one');
		const alice = await b.open({ name: 'Alice', room });
		const bob = await b.open({ name: 'Bob', room });
		await waitMesh([alice, bob]);
		await assertMediaFlows(alice);
		await assertMediaFlows(bob);
		for (const w of [alice, bob]) {
			const n = await w.page.evaluate(() => window.kk.counters);
			check(n.ownJoins === 1, `${w.name} saw its own join ${n.ownJoins} times`);
			check(n.refused === 0, `${w.name} refused ${n.refused} INVITEs`);
		}
	});

	bt('a page served over HTTPS joins over WSS and talks to a page on WS', async () => {
		const room = newRoom('secure');
		const carol = await b.open({ name: 'Carol', room, secure: true });
		const dave = await b.open({ name: 'Dave', room });
		check((await state(carol)).server.startsWith('wss://'), 'the HTTPS page did not pick wss://');
		await waitMesh([carol, dave]);
		await assertMediaFlows(carol);
		await assertMediaFlows(dave);
	});

	bt('3-party room: every page has a session to every other, video flows; screenshot', async () => {
		const room = newRoom('three');
		const ws = [];
		for (const name of ['Ada', 'Grace', 'Linus']) ws.push(await b.open({ name, room }));
		await waitMesh(ws);
		for (const w of ws) await assertMediaFlows(w);
		fs.mkdirSync(path.dirname(SCREENSHOT), { recursive: true });
		await ws[0].page.screenshot({ path: SCREENSHOT });
	});

	bt('4-party room: six sessions, video on every one of them', async () => {
		const room = newRoom('four');
		const ws = [];
		for (const name of ['P1', 'P2', 'P3', 'P4']) ws.push(await b.open({ name, room }));
		await waitMesh(ws, 60000);
		for (const w of ws) await assertMediaFlows(w);
	}, 150000);

	bt('Leave button and a closed tab: the others drop the tile within seconds (BYE)', async () => {
		const room = newRoom('leave');
		const ws = [];
		for (const name of ['Stay1', 'Stay2', 'Goer']) ws.push(await b.open({ name, room }));
		const ids = await waitMesh(ws);
		const goer = ws[2];
		const t0 = Date.now();
		await goer.page.click('#leave');
		await Promise.all(ws.slice(0, 2).map((w) => waitGone(w, ids[2], 5000)));
		const took = Date.now() - t0;
		/* The leaver waits for its un-REGISTERs' answers (2 s at most
		 * each) before its form comes back: the others' tiles may go
		 * first. */
		let s = null;
		await waitUntil(async () => (s = await state(goer)).phase === 'idle', 5000,
			'the leaver back at the form', 100).catch(() => {});
		check(s.phase === 'idle' && s.tiles.length === 0, `the leaver's page: ${JSON.stringify(s)}`);
		check(await goer.page.isVisible('#join-form'), 'the join form is not back');
		/* The two who stayed still talk. */
		await waitPeers(ws[0], [ids[1]]);
		await assertMediaFlows(ws[0]);
		c.addEvidence('leave', `tiles dropped ${took} ms after Leave`);
		/* A closed tab says goodbye too (pagehide: BYE, un-REGISTER). */
		await ws[1].page.close({ runBeforeUnload: true });
		await waitGone(ws[0], ids[1], 5000);
	});

	bt('a crashed tab: the others drop its tile', async () => {
		const room = newRoom('crash');
		const ws = [];
		for (const name of ['Calm1', 'Calm2', 'Crasher']) ws.push(await b.open({ name, room }));
		const ids = await waitMesh(ws);
		const cdp = await ws[2].ctx.newCDPSession(ws[2].page);
		const crashed = new Promise((r) => ws[2].page.once('crash', r));
		cdp.send('Page.crash').catch(() => { /* the target dies under it */ });
		await crashed;
		await Promise.all(ws.slice(0, 2).map((w) => waitGone(w, ids[2], 15000)));
		await waitPeers(ws[0], [ids[1]]);
	});

	bt('a frozen browser (network lost: WebSocket open, no media): the others drop its tile', async () => {
		const room = newRoom('frozen');
		const ws = [];
		for (const name of ['Live1', 'Live2']) ws.push(await b.open({ name, room }));
		/* The victim runs in a Chromium of its own, so that it can be stopped. */
		const server = await chromium.launchServer(launchArgs());
		const pid = server.process().pid;
		let other = null;
		try {
			other = await chromium.connect(server.wsEndpoint());
			const victim = await b.open({ name: 'Frozen', room }, other);
			const ids = await waitMesh([...ws, victim]);
			/* The whole process group: browser, renderers, network service. */
			process.kill(-pid, 'SIGSTOP');
			await Promise.all(ws.map((w) => waitGone(w, ids[2], 20000)));
			await waitPeers(ws[0], [ids[1]]);
		} finally {
			try { process.kill(-pid, 'SIGCONT'); } catch { /* gone */ }
			if (other) await other.close().catch(() => {});
			await server.close().catch(() => {});
		}
	});

	bt('three pages joining at the same moment: exactly one INVITE per pair', async () => {
		const room = newRoom('race');
		const ws = [];
		for (const name of ['R1', 'R2', 'R3']) ws.push(await b.open({ name, room, join: false }));
		await Promise.all(ws.map((w) => w.join()));
		await Promise.all(ws.map((w) => waitJoined(w)));
		const ids = await waitMesh(ws);
		/* Once every INVITE has its answer both sides have counted it;
		 * with a live session to a peer no page calls it again, so
		 * no INVITE between them is still to come. */
		const sent = await waitInvitesDone(ws);
		check(sent === 3, `the pages sent ${sent} INVITEs (WebSocket frames), not one per pair`);
		const counts = await Promise.all(ws.map((w) => w.page.evaluate(() => window.kk.counters)));
		for (let i = 0; i < ws.length; i++) {
			check(counts[i].refused === 0, `${ws[i].name} refused ${counts[i].refused} INVITEs`);
			check(!counts[i].invitesOut[ids[i]], `${ws[i].name} called itself`);
			for (let j = i + 1; j < ws.length; j++) {
				const n = (counts[i].invitesOut[ids[j]] || 0) + (counts[j].invitesOut[ids[i]] || 0);
				check(n === 1, `${n} INVITEs between ${ws[i].name} and ${ws[j].name}: ${JSON.stringify(counts)}`);
			}
		}
		await waitMesh(ws);
	});

	bt('a protected room: no phrase and a wrong phrase are refused, the right one joins', async () => {
		await protectedRoom(b, newRoom('locked'));
	});


	bt('a sipp UDP phone calls a browser user: the browser receives its audio', async () => {
		const room = newRoom('phone');
		const alice = await b.open({ name: 'Alice', room });
		const uri = (await state(alice)).uri;
		const [, user, domain] = /^sip:([^@]+)@(.+)$/.exec(uri);
		const sipp = await startSipp(c, {
			scenario: '../../browser/scenarios/phone_calls_browser.xml', dest: c.edge(),
			service: user, keys: { sm_domain: domain }, timeout: 30,
		});
		let key = null;
		await waitUntil(async () => {
			const s = await state(alice);
			const p = s.peers.find((x) => x.phone && x.state === 'connected');
			key = p && p.key;
			return !!key;
		}, 15000, 'Alice to answer the phone');
		await assertMediaFlows(alice, { keys: [key], video: false, gapMs: 1500 });
		assertOk(await sipp.wait(30000), 'sipp phone');
		await waitGone(alice, key, 5000);
	});

	bt('a browser user calls a sipp UDP phone (Call box): it hears the phone\'s echo, then hangs up', async () => {
		const room = newRoom('dialout');
		const alice = await b.open({ name: 'Alice', room });
		const user = 'deskphone';
		const uas = await startUas(c, {
			user, domain: 'phones.test', scenario: '../../browser/scenarios/phone_answers_browser.xml',
			args: ['-rtp_echo'], timeout: 40,
		});
		await alice.page.fill('#dial', `${user}@phones.test`);
		await alice.page.click('#call');
		let key = null;
		await waitUntil(async () => {
			const p = (await state(alice)).peers.find((x) => x.phone && x.state === 'connected');
			key = p && p.key;
			return !!key;
		}, 15000, 'the phone to answer');
		/* The browser's audio went through rtpengine to the phone as
		 * RTP/AVP and came back: both directions work. */
		await assertMediaFlows(alice, { keys: [key], video: false, gapMs: 1500 });
		await alice.page.click(`.tile[data-peer="${key}"] .hangup`);
		await waitGone(alice, key, 3000);
		assertOk(await uas.wait(15000), 'sipp phone (got the BYE)');
	});

	bt('a sipp UDP phone calls the room address: exactly one participant (the oldest) answers', async () => {
		const room = newRoom('phoneroom');
		const ws = [];
		for (const name of ['Host1', 'Host2']) ws.push(await b.open({ name, room }));
		await waitMesh(ws);
		const aor = (await state(ws[0])).roomAor;
		const [, user, domain] = /^sip:([^@]+)@(.+)$/.exec(aor);
		const sipp = await startSipp(c, {
			scenario: '../../browser/scenarios/phone_calls_browser.xml', dest: c.edge(),
			service: user, keys: { sm_domain: domain }, timeout: 30,
		});
		let answered = [];
		await waitUntil(async () => {
			const ss = await Promise.all(ws.map(state));
			answered = ss.map((s) => s.peers.filter((x) => x.phone && x.state === 'connected').map((x) => x.key));
			return answered.flat().length > 0;
		}, 15000, 'a participant to answer the phone');
		/* The proxy CANCELs the other branch when the oldest answers:
		 * wait until Host2 ended its ringing (a final response to the
		 * phone's INVITE, 487, and no phone tile).  Had it answered too,
		 * its 200 would end the wait and show in the count below. */
		const phoneCalls = (w) => w.sip.filter((f) => f.dir === 'in' && f.method === 'INVITE' &&
			!/^X-KK:/im.test(f.text)).map((f) => f.callId);
		await waitUntil(async () => {
			const cids = phoneCalls(ws[1]);
			const ended = ws[1].sip.some((f) => f.dir === 'out' && f.status >= 200 &&
				/ INVITE$/.test(f.cseq || '') && cids.includes(f.callId));
			return ended && (await state(ws[1])).peers.every((x) => !x.phone || x.state === 'connected');
		}, 10000, 'Host2 to end the phone\'s ringing call', 100);
		const ss = await Promise.all(ws.map(state));
		const phones = ss.map((s) => s.peers.filter((x) => x.phone));
		check(phones.flat().length === 1, `phone sessions: ${JSON.stringify(phones)}`);
		check(phones[0].length === 1, `not the oldest participant (Host1) answered: ${JSON.stringify(phones)}`);
		const who = ws[0];
		await assertMediaFlows(who, { keys: [phones.flat()[0].key], video: false, gapMs: 1500 });
		assertOk(await sipp.wait(30000), 'sipp phone');
	});

	bt('clear messages when the server or the camera is unavailable', async () => {
		const nosrv = await b.open({ name: 'Lost', room: newRoom('nosrv'), join: false, query: '&server=ws://127.0.0.1:9' });
		await nosrv.join();
		await waitUntil(async () => /Cannot reach the sipmesh server/.test(await nosrv.page.textContent('#status')),
			15000, 'the "cannot reach" message');
		check((await state(nosrv)).phase === 'idle', 'the page did not go back to the form');

		const nocam = await b.open({ name: 'Blind', room: newRoom('nocam'), join: false, denyMedia: true });
		await nocam.join();
		await waitUntil(async () => /Camera and microphone unavailable/.test(await nocam.page.textContent('#status')),
			10000, 'the "camera unavailable" message');
		check((await state(nocam)).phase === 'idle', 'the page did not go back to the form');
	});
});
