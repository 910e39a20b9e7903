'use strict';
/*
 * browser.js - headless Debian Chromium (playwright-core) against a
 * real sipmesh cluster serving KwikyKonf, for tests/browser/.
 *
 * kkCluster(opts) is tests/integ/lib/cluster.js's cluster() with one
 * edge that also listens on WS and WSS (free loopback ports, a
 * self-signed pair made with openssl) and serves web/dist over HTTP and
 * HTTPS on those ports, two cores, Redis, two real rtpengines and an
 * rtpctl, [proxy] media = yes.  c.pageUrl(secure) is the KwikyKonf
 * address.
 *
 * Browser: one Chromium (fake camera and microphone, no GPU, no
 * background networking) per test file; every participant is a page
 * in its own browser context (own storage, as separate people).
 * Chromium sends WebRTC media from every interface it finds, so these
 * tests only run inside a network namespace holding nothing but
 * loopback (tests/browser/run.sh); inNetns() checks that.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { before, after } = require('node:test');
const { chromium } = require('playwright-core');

/* assert.ok that throws a plain Error (node:test's reporter prints the
 * cluster report appended to its message; an AssertionError's stack
 * keeps only the original message). */
function check(cond, msg) {
	if (!cond) throw new Error(msg);
}
const integ = require('../../integ/lib/cluster');

const { cluster, freePort, waitUntil, HOST } = integ;
const ROOT = path.resolve(__dirname, '..', '..', '..');
const WEB_DIST = path.join(ROOT, 'web', 'dist');
const CHROMIUM = process.env.SIPMESH_CHROMIUM || '/usr/bin/chromium';

/* The interfaces this process sees: only "lo" inside the namespace. */
function inNetns() {
	/* /proc/self/net follows the network namespace; /sys may not. */
	let all = Object.keys(os.networkInterfaces());
	try {
		all = fs.readFileSync('/proc/self/net/dev', 'latin1').split('\n').slice(2)
			.map((l) => l.split(':')[0].trim()).filter(Boolean);
	} catch { /* getifaddrs' view */ }
	return all.every((n) => n === 'lo');
}

let pair = null;
function tlsPair() {
	if (pair) return pair;
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smb-tls-'));
	const cert = path.join(dir, 'cert.pem');
	const key = path.join(dir, 'key.pem');
	execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes',
		'-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1',
		'-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'], { stdio: 'ignore' });
	process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
	pair = { cert, key };
	return pair;
}

function kkCluster(opts = {}) {
	const ports = {};
	const edge = { http_root: WEB_DIST, ...(opts.edge || {}) };
	before(async () => {
		if (!inNetns() && !process.env.SIPMESH_BROWSER_ANY_NET)
			throw new Error('browser tests must run in a loopback-only network namespace (tests/browser/run.sh)');
		if (!fs.existsSync(path.join(WEB_DIST, 'index.html')))
			throw new Error(`${WEB_DIST}/index.html is missing: build it with \`sh web/build.sh\``);
		ports.ws = await freePort();
		ports.wss = await freePort();
		const p = tlsPair();
		edge.tls_cert = p.cert;
		edge.tls_key = p.key;
	});
	const c = cluster({
		name: opts.name || 'browser', edges: 1, cores: 2, redis: true,
		/* Four Chromiums on two CPUs can hold a userspace rtpengine
		 * past two 200 ms pings (fresh-check saw it): an engine taken
		 * for dead here fails the room's calls, and no browser test is
		 * about engine fail-over (41-media-call is, with 2). */
		media: { rtpengines: 2, rtpctls: 1, rtpctl: { fail_threshold: 5 }, ...(opts.media || {}) },
		...opts, edge,
		edgeKeys: () => ({ ws: `${HOST}:${ports.ws}`, wss: `${HOST}:${ports.wss}` }),
	});
	c.ports = ports;
	c.pageUrl = (secure = false, query = '') =>
		`${secure ? 'https' : 'http'}://${HOST}:${secure ? ports.wss : ports.ws}/${query}`;
	return c;
}

/*
 * One Chromium for the test file (before/after hooks).  Returns an
 * object whose .open(...) makes a participant.
 */
/* Options for chromium.launch()/launchServer(): Debian's Chromium. */
function launchArgs() {
	return {
		executablePath: CHROMIUM,
		headless: true,
		args: [
			'--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream',
			'--no-sandbox', '--headless', '--disable-gpu', '--disable-quic', '--no-first-run',
			'--disable-background-networking', '--disable-component-update', '--disable-sync',
			/* Chromium leaves the loopback interface out of ICE
			 * gathering: in a namespace with only lo it would offer
			 * no candidate at all and never connect. */
			'--allow-loopback-in-peer-connection',
			'--autoplay-policy=no-user-gesture-required',
			'--disable-renderer-backgrounding', '--disable-background-timer-throttling',
			'--disable-backgrounding-occluded-windows',
		],
	};
}

function chromiumPool(c) {
	const pool = { browser: null, pages: [], consoles: [] };
	before(async () => {
		pool.browser = await chromium.launch(launchArgs());
	}, { timeout: 30000 });
	after(async () => {
		if (pool.browser) await pool.browser.close().catch(() => {});
	});

	/*
	 * A participant: a fresh context and page on KwikyKonf.  o: {name,
	 * room, phrase, secure, join (true), video ('320x240@15'), query
	 * (more of the address), denyMedia (getUserMedia fails as if the
	 * user refused)}.  browser: another Chromium than the pool's.
	 */
	pool.open = async (o, browser = pool.browser) => {
		const ctx = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1000, height: 720 } });
		const page = await ctx.newPage();
		if (o.denyMedia) {
			await page.addInitScript(() => {
				navigator.mediaDevices.getUserMedia = () =>
					Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
			});
		}
		const who = { name: o.name, page, ctx, console: [], sip: [] };
		/* Every SIP message on the page's WebSockets, in order. */
		page.on('websocket', (ws) => {
			ws.on('framesent', (f) => who.sip.push(sipFrame('out', f.payload)));
			ws.on('framereceived', (f) => who.sip.push(sipFrame('in', f.payload)));
		});
		page.on('console', (m) => who.console.push(`${m.type()}: ${m.text()}`));
		page.on('pageerror', (e) => who.console.push(`pageerror: ${e.message}`));
		pool.pages.push(who);
		c.addEvidence(`console of ${o.name}`, { toString: () => who.console.slice(-200).join('\n') });
		await page.goto(c.pageUrl(!!o.secure, `?video=${o.video || '320x240@15'}${o.query || ''}${process.env.SIPMESH_BROWSER_DEBUG ? '&debug=1' : ''}`));
		await page.fill('#name', o.name);
		if (o.room) await page.fill('#room', o.room);
		if (o.phrase) await page.fill('#phrase', o.phrase);
		who.join = () => page.click('#join');
		if (o.join !== false) {
			await who.join();
			await waitJoined(who);
		}
		return who;
	};

	/* Closes every participant still open (end of a test). */
	pool.closeAll = async () => {
		for (const w of pool.pages.splice(0)) {
			await w.ctx.close().catch(() => {});
		}
	};

	/* c.test with every page closed afterwards. */
	pool.test = (name, fn, ms = 90000) => {
		c.test(name, { timeout: ms }, async (t) => {
			try {
				await fn(t);
			} finally {
				await pool.closeAll();
			}
		});
	};
	return pool;
}

/* A WebSocket frame as {dir, text, status, method, callId, cseq}. */
function sipFrame(dir, payload) {
	const text = String(payload);
	const hdr = (re) => { const m = re.exec(text); return m ? m[1].trim() : undefined; };
	const st = /^SIP\/2\.0 (\d{3})/.exec(text);
	const cseq = /^CSeq:\s*(\d+)\s+(\S+)/im.exec(text);
	return {
		dir, text, status: st ? Number(st[1]) : 0,
		method: st ? null : (/^([A-Z]+) /.exec(text) || [])[1],
		callId: hdr(/^(?:Call-ID|i):(.*)$/im),
		cseq: cseq ? `${cseq[1]} ${cseq[2]}` : undefined,
	};
}

/*
 * Waits until every INVITE any of the pages ws sent has its final
 * response: then every INVITE between them has been counted by both
 * sides (a refusal is counted before it is sent).  Resolves with how
 * many INVITEs they sent.
 */
async function waitInvitesDone(ws, ms = 10000) {
	let open = [];
	const sent = () => ws.reduce((n, w) => n + w.sip.filter((f) => f.dir === 'out' && f.method === 'INVITE').length, 0);
	await waitUntil(() => {
		open = ws.flatMap((w) => w.sip.filter((f) => f.dir === 'out' && f.method === 'INVITE')
			.filter((inv) => !w.sip.some((r) => r.dir === 'in' && r.status >= 200 &&
				r.callId === inv.callId && r.cseq === inv.cseq))
			.map((inv) => `${w.name}: ${inv.callId}`));
		return open.length === 0;
	}, ms, 'a final response to every INVITE the pages sent', 50).catch((e) => {
		e.message += `; still open: ${open.join(', ')}`;
		throw e;
	});
	return sent();
}

async function state(w) {
	return w.page.evaluate(() => window.kk.state());
}

async function lastStatus(w) {
	return w.page.evaluate(() => window.kk.log.filter((l) => l.level !== 'debug').map((l) => `${l.level}: ${l.text}`));
}

/* Waits until the page says it is in the room. */
async function waitJoined(w, ms = 20000) {
	await waitUntil(async () => {
		const s = await state(w);
		if (s.phase === 'idle') {
			const st = await lastStatus(w);
			throw new Error(`${w.name} did not join: ${st.slice(-3).join(' | ')}`);
		}
		return s.phase === 'joined';
	}, ms, `${w.name} to join`, 100);
}

/*
 * Waits until w has a connected session and a tile for exactly the
 * peers named by ids (participant ids), and nothing else.
 */
async function waitPeers(w, ids, ms = 30000) {
	const want = [...ids].sort().join(',');
	let last = null;
	try {
		await waitUntil(async () => {
			last = await state(w);
			const conn = last.peers.filter((p) => p.state === 'connected').map((p) => p.key).sort().join(',');
			const tiles = [...last.tiles].sort().join(',');
			return conn === want && tiles === want && last.peers.length === ids.length;
		}, ms, `${w.name} to be connected to [${want}]`, 200);
	} catch (e) {
		e.message += `\nlast state of ${w.name}: ${JSON.stringify(last)}`;
		throw e;
	}
}

/* Every page connected to every other; resolves with their ids. */
async function waitMesh(ws, ms = 40000) {
	const ids = await Promise.all(ws.map(async (w) => (await state(w)).id));
	await Promise.all(ws.map((w, i) => waitPeers(w, ids.filter((_, j) => j !== i), ms)));
	return ids;
}

/*
 * Has guest (a page at the form) try to join with phrase and waits
 * until it is back at the form showing a status that matches re, with
 * owner (in the room) still alone.
 */
async function assertJoinRefused(guest, owner, phrase, re) {
	await guest.page.fill('#phrase', phrase);
	await guest.join();
	await waitUntil(async () => {
		const s = await state(guest);
		const st = await lastStatus(guest);
		return s.phase === 'idle' && st.length && re.test(st[st.length - 1]);
	}, 15000, `${guest.name} refused with ${re}`, 100);
	const text = await guest.page.textContent('#status');
	check(re.test(text), `the page shows "${text}"`);
	check((await state(owner)).peers.length === 0, `${owner.name} got a session anyway`);
}

/*
 * The protected-room story on pool: Owner opens room with a pass
 * phrase, Guest is refused without it and with a wrong one, then joins
 * with it; both connected, media reaching Guest.  Resolves with
 * {owner, guest}.
 */
async function protectedRoom(pool, room) {
	const owner = await pool.open({ name: 'Owner', room, phrase: 'open sesame' });
	check((await state(owner)).locked, 'the room is not protected');
	const guest = await pool.open({ name: 'Guest', room, join: false });
	await assertJoinRefused(guest, owner, '', /protected: enter its pass phrase/);
	await assertJoinRefused(guest, owner, 'open sesame!', /Wrong pass phrase/);
	await guest.page.fill('#phrase', 'open sesame');
	await guest.join();
	await waitJoined(guest);
	await waitMesh([owner, guest]);
	await assertMediaFlows(guest);
	return { owner, guest };
}

/*
 * Takes two getStats() samples gapMs apart and asserts that, on every
 * session of w (or those in keys), inbound audio bytes, video bytes and
 * decoded video frames increased.  video: false checks audio only.
 */
async function assertMediaFlows(w, { keys = null, gapMs = 2000, video = true } = {}) {
	const a = await w.page.evaluate(() => window.kk.stats());
	await new Promise((r) => setTimeout(r, gapMs));
	const b = await w.page.evaluate(() => window.kk.stats());
	const ks = keys || Object.keys(b);
	check(ks.length > 0, `${w.name} has no sessions`);
	for (const k of ks) {
		const x = a[k], y = b[k];
		check(x && y, `${w.name}: no stats for ${k}`);
		const why = `${w.name} <- ${k}: ${JSON.stringify(x)} then ${JSON.stringify(y)}`;
		check(y.audio.bytes > x.audio.bytes, `inbound audio bytes did not increase: ${why}`);
		if (video) {
			check(y.video.bytes > x.video.bytes, `inbound video bytes did not increase: ${why}`);
			check(y.video.framesDecoded > x.video.framesDecoded, `decoded video frames did not increase: ${why}`);
		}
	}
	return b;
}

module.exports = {
	kkCluster, chromiumPool, launchArgs, check, state, lastStatus, waitJoined, waitPeers, assertMediaFlows, inNetns,
	waitInvitesDone, waitMesh, protectedRoom,
	ROOT, WEB_DIST, waitUntil, HOST,
};
