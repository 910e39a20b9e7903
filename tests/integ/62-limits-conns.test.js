'use strict';
/*
 * 62 limits conns: what one edge lets a source do with connections.
 * Caps per source address (max_conns_per_ip) and in all (max_conns);
 * a handshake deadline (handshake_timeout_s) for a TCP connection that
 * sends nothing, half a request or only keepalives (slowloris), a TLS
 * handshake that never starts, a WebSocket upgrade that never ends and
 * one that ends but carries no SIP (pongs, keepalives);
 * a message deadline (msg_idle_timeout_s) that CRLF pings and WebSocket
 * pongs do not hold off; a WebSocket message cut in 1-byte fragments
 * (closed at the fragment limit; memory follows the bytes, not
 * max_msg); and a per-source connection rate (conn_rate) refused at
 * accept and logged once.  A silent connect takes no place until it
 * speaks or the kernel hands it over (defer_accept_s): before commit
 * "edge: TCP_DEFER_ACCEPT...", 30 of them locked out a client that
 * spoke until the handshake deadline.  Before commit "edge: per-source rate
 * limits...", a plain TCP connection was open at accept and stayed 60 s
 * here (idle_timeout_s) on anything, pings included, and a 1-byte
 * fragment took max_msg of memory.  Before commit "edge: a WebSocket
 * is pending until its first SIP message", one that upgraded and then
 * sent nothing was open until msg_idle_timeout_s.
 *
 * integ: serial (it times deadlines and rates)
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const { describe } = require('node:test');
const WS = require('ws');
const { rand, waitUntil, HOST } = require('./lib/cluster');
const { streamCluster, StreamUA, rawTcp, closedWithin, wsClosed, within } = require('./lib/ws');

const PER_IP = 5;
const MAX = 24;
const HANDSHAKE_S = 2;
/* 3 s: the kernel resends the SYN-ACK of a silent connect after 1 and
 * 3 s, and hands it over at the second. */
const DEFER_S = 3;
const MSG_IDLE_S = 4;

/* Inbound connections the edge holds now. */
async function held(c) {
	return (await c.edgeStat('conns_opened')) - (await c.edgeStat('conns_closed'));
}

/* A TCP connection to dest from localAddress (rawTcp: a CRLF keepalive
 * first unless hello says otherwise). */
function tcp(dest, localAddress, hello) {
	return rawTcp({ host: dest.host, port: dest.port, localAddress }, hello);
}

/* Sends an OPTIONS down s; resolves when its 200 is back. */
async function options(s, dest) {
	const cid = `lim-${rand(8)}`;
	const a = s.address();
	s.write(`OPTIONS sip:${dest.host}:${dest.port} SIP/2.0\r\n` +
		`Via: SIP/2.0/TCP ${a.address}:${a.port};branch=z9hG4bK-${rand(8)};rport\r\n` +
		'Max-Forwards: 70\r\nFrom: <sip:lim@a.test>;tag=1\r\nTo: <sip:lim@a.test>\r\n' +
		`Call-ID: ${cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`);
	await waitUntil(() => new RegExp(`^SIP/2\\.0 200[^]*?Call-ID: ${cid}`, 'm').test(s.buf), 5000,
		`200 to the OPTIONS over TCP from ${a.address}`);
}

/* A WebSocket to the edge from localAddress, once open. */
async function ws(c, localAddress, o = {}) {
	const w = new WS(c.wsUrl(), 'sip', { localAddress, ...o });
	await within(new Promise((r, j) => { w.once('open', r); w.once('error', j); }), 3000, 'ws open');
	return w;
}

/* Sends an OPTIONS to the proxy down WebSocket w; resolves when its
 * 200 is back. */
function wsOptions(w) {
	const cid = `lim-${rand(8)}`;
	return within(new Promise((res) => {
		const on = (d) => {
			if (!/^SIP\/2\.0 200[^]*Call-ID: /.test(d.toString()) || !d.toString().includes(cid)) return;
			w.off('message', on);
			res();
		};
		w.on('message', on);
		w.send(`OPTIONS sip:a.test SIP/2.0\r\nVia: SIP/2.0/WS ${rand(6)}.invalid;branch=z9hG4bK-${rand(8)}\r\n` +
			'Max-Forwards: 70\r\nFrom: <sip:lim@a.test>;tag=1\r\nTo: <sip:a.test>\r\n' +
			`Call-ID: ${cid}\r\nCSeq: 1 OPTIONS\r\nContent-Length: 0\r\n\r\n`);
	}), 5000, '200 to the OPTIONS over WebSocket');
}

/* VmSize or VmRSS of pid, in bytes. */
function vm(pid, what = 'VmSize') {
	const m = new RegExp(`${what}:\\s+(\\d+) kB`).exec(fs.readFileSync(`/proc/${pid}/status`, 'utf8'));
	return Number(m[1]) * 1024;
}

describe('62 limits conns', () => {
	const c = streamCluster({
		name: '62-limits-conns', edges: 1, cores: 1,
		edge: {
			max_conns_per_ip: PER_IP, max_conns: MAX, handshake_timeout_s: HANDSHAKE_S, defer_accept_s: DEFER_S,
			msg_idle_timeout_s: MSG_IDLE_S, idle_timeout_s: 60, ws_ping_s: 1, max_msg: 1048576,
		},
	});
	const socks = [];
	const open = async (dest, local, hello) => { const s = await tcp(dest, local, hello); socks.push(s); return s; };
	const closeAll = async () => {
		for (const s of socks.splice(0)) s.destroy();
		await waitUntil(async () => (await held(c)) === 0, 5000, 'the edge to hold no connection', 100);
	};

	c.test(`a source gets ${PER_IP} connections, the next is closed at accept; others still get theirs`, async () => {
		const d = c.tcpDest();
		for (let i = 0; i < PER_IP; i++) await options(await open(d, '127.0.0.21'), d);
		const over = await open(d, '127.0.0.21');
		assert.ok(await closedWithin(over, 1000), `connection ${PER_IP + 1} from one address not closed at once`);
		await options(await open(d, '127.0.0.22'), d);
		assert.ok(await c.edgeStat('conns_refused') >= 1);
		await closeAll();
	});

	c.test(`past max_conns (${MAX}) a connection from anywhere is closed at accept`, async () => {
		const d = c.tcpDest();
		const mine = [];
		for (let i = 0; i < MAX; i++) {
			const s = await open(d, `127.0.0.${30 + Math.floor(i / PER_IP)}`);
			mine.push(s);
			await options(s, d);
		}
		const over = await open(d, '127.0.0.39');
		assert.ok(await closedWithin(over, 1000), `connection ${MAX + 1} not closed at once`);
		assert.ok(await c.edgeStat('conns_full') >= 1);
		/* One goes: there is room again. */
		mine[0].destroy();
		await waitUntil(async () => (await held(c)) < MAX, 5000, 'the edge to see one close', 100);
		await options(await open(d, '127.0.0.39'), d);
		await closeAll();
	});

	c.test(`slowloris: nothing, half a request, only pings, no TLS, half an upgrade: closed in ${HANDSHAKE_S} s`, async () => {
		const d = c.tcpDest();
		const t0 = Date.now();
		const silent = await open(d, '127.0.0.41', '');
		const half = await open(d, '127.0.0.41', '');
		const pinger = await open(d, '127.0.0.41');
		const tls = await open(c.tlsDest(), '127.0.0.42', '');
		const upg = await open({ host: HOST, port: c.ports[1].ws }, '127.0.0.43', '');
		const req = `REGISTER sip:a.test SIP/2.0\r\nVia: SIP/2.0/TCP ${HOST}:9;branch=z9hG4bK-sl\r\nMax-Forwards: 70\r\n`;
		upg.write(`GET / HTTP/1.1\r\nHost: ${HOST}\r\nUpgrade: websocket\r\n`);
		let k = 0;
		const drip = setInterval(() => {
			if (k < req.length) half.write(req[k++]);
			pinger.write('\r\n\r\n');
		}, 200);
		try {
			/* The silent ones reach the edge DEFER_S after the connect. */
			const late = (DEFER_S + HANDSHAKE_S + 2.5) * 1000;
			for (const [s, what] of [[silent, 'silent'], [half, 'half a request'], [pinger, 'pings only'],
				[tls, 'no TLS handshake'], [upg, 'half an upgrade']]) {
				assert.ok(await closedWithin(s, late - (Date.now() - t0)), `${what}: still open after ${late} ms`);
				const at = (await s.closedAt) - t0;
				assert.ok(at >= HANDSHAKE_S * 1000 - 300, `${what}: closed after ${at} ms, before the deadline`);
			}
			/* The pings were heard: the edge answered them. */
			assert.ok(pinger.buf.includes('\r\n'), 'the edge answered no ping');
		} finally {
			clearInterval(drip);
		}
		assert.ok(await c.edgeStat('conns_idle') >= 5);
		await closeAll();
	});

	/* Accepted at the connect, 30 silent connects took every place of
	 * the edge (max_conns) until the handshake deadline. */
	c.test(`a silent connect takes no place in the edge for ${DEFER_S} s (defer_accept_s); one that speaks gets in`, async () => {
		const d = c.tcpDest();
		const full = await c.edgeStat('conns_full');
		const t0 = Date.now();
		const silent = [];
		for (let i = 0; i < MAX + 6; i++) silent.push(await open(d, `127.0.0.${91 + Math.floor(i / PER_IP)}`, ''));
		await options(await open(d, '127.0.0.98'), d);
		assert.equal(await held(c), 1, 'the edge holds more than the connection that spoke');
		const early = Date.now() - t0;
		assert.ok(early < DEFER_S * 1000, `the checks took ${early} ms, past the deferral`);
		assert.equal(await c.edgeStat('conns_full'), full, 'a connection was refused for max_conns');
		/* Then the kernel hands them over, and the handshake deadline
		 * closes them (those past max_conns at once). */
		const by = (DEFER_S + HANDSHAKE_S + 3) * 1000;
		for (const s of silent)
			assert.ok(await closedWithin(s, Math.max(by - (Date.now() - t0), 1)), `a silent connect still open after ${by} ms`);
		const at = Math.min(...await Promise.all(silent.map((s) => s.closedAt))) - t0;
		assert.ok(at >= DEFER_S * 1000 - 300, `the first silent connect closed after ${at} ms, within the deferral`);
		await closeAll();
	});

	c.test(`pings do not keep a connection past msg_idle_timeout_s (${MSG_IDLE_S} s) without SIP`, async () => {
		const d = c.tcpDest();
		const s = await open(d, '127.0.0.51');
		await options(s, d);
		const t0 = Date.now();
		const w = await ws(c, '127.0.0.52');
		await wsOptions(w);	/* open: past the handshake deadline */
		let pings = 0;
		w.on('ping', () => { pings++; });
		const wsClose = wsClosed(w, (MSG_IDLE_S + 4) * 1000);
		/* TCP sends CRLF keepalives; the WebSocket only answers the
		 * edge's pings (ws does, at once). */
		const keep = setInterval(() => { s.write('\r\n\r\n'); }, 400);
		try {
			assert.ok(await closedWithin(s, (MSG_IDLE_S + 2.5) * 1000), 'TCP: pings kept it open');
			const at = (await s.closedAt) - t0;
			assert.ok(at >= (MSG_IDLE_S - 0.5) * 1000, `TCP: closed after ${at} ms, before the deadline`);
			await wsClose;
			const wat = Date.now() - t0;
			assert.ok(wat >= (MSG_IDLE_S - 0.5) * 1000 && wat <= (MSG_IDLE_S + 3) * 1000,
				`WS: closed after ${wat} ms`);
			assert.ok(pings >= 2, `the edge pinged the WebSocket ${pings} time(s)`);
		} finally {
			clearInterval(keep);
			w.terminate();
		}
		await closeAll();
	});

	c.test('a WebSocket that answers no ping is closed after two ping intervals; one that answers stays', async () => {
		const mute = await ws(c, '127.0.0.53', { autoPong: false });
		const live = await ws(c, '127.0.0.54');
		for (const w of [mute, live]) await wsOptions(w);
		let mutePings = 0, livePings = 0;
		mute.on('ping', () => { mutePings++; });
		live.on('ping', () => { livePings++; });
		const t0 = Date.now();
		try {
			await wsClosed(mute, 6000);
			const at = Date.now() - t0;
			/* pinged after 1 s of silence, given up 1 s later; the
			 * sweep runs every second */
			assert.ok(at >= 1500 && at <= 4500, `the mute WebSocket closed after ${at} ms`);
			assert.ok(mutePings >= 1, 'the mute WebSocket was never pinged');
			await new Promise((r) => setTimeout(r, 1500));
			assert.equal(live.readyState, WS.OPEN, 'the WebSocket that answers pings was closed');
			assert.ok(livePings >= 2, `the live WebSocket got ${livePings} ping(s)`);
		} finally {
			mute.terminate();
			live.terminate();
		}
		await closeAll();
	});

	/* Open at the upgrade, one that answered pings lived for
	 * msg_idle_timeout_s (about an hour by default): 20 addresses of
	 * 1000 such WebSockets filled an edge for that long. */
	c.test(`a WebSocket that upgrades but sends no SIP is closed in ${HANDSHAKE_S} s, pongs and keepalives or not; one that sent SIP stays`, async () => {
		const t0 = Date.now();
		const mute = await ws(c, '127.0.0.55');
		const keeper = await ws(c, '127.0.0.56');
		const sip = await ws(c, '127.0.0.57');
		await wsOptions(sip);
		const keep = setInterval(() => keeper.send('\r\n\r\n'), 300);
		/* The one that speaks SIP goes on speaking it: msg_idle_timeout_s
		 * (MSG_IDLE_S) would otherwise close it too, on a slow machine
		 * before the last check below. */
		const talk = setInterval(() => wsOptions(sip).catch(() => {}), 1000);
		try {
			for (const [w, what] of [[mute, 'silent'], [keeper, 'keepalives only']]) {
				/* The sweep runs every second; msg_idle_timeout_s
				 * (4 s here) is well after. */
				const by = (HANDSHAKE_S + 1.5) * 1000;
				await wsClosed(w, Math.max(by - (Date.now() - t0), 1)).catch(() => {});
				const at = Date.now() - t0;
				assert.equal(w.readyState, WS.CLOSED, `${what}: still open after ${at} ms`);
				assert.ok(at >= HANDSHAKE_S * 1000 - 300, `${what}: closed after ${at} ms, before the deadline`);
			}
			console.log(`# WebSocket without SIP closed after ${Date.now() - t0} ms (handshake_timeout_s ${HANDSHAKE_S})`);
			await new Promise((r) => setTimeout(r, 1000));
			assert.equal(sip.readyState, WS.OPEN, 'the WebSocket that sent SIP was closed');
			await wsOptions(sip);
		} finally {
			clearInterval(keep);
			clearInterval(talk);
			for (const w of [mute, keeper, sip]) w.terminate();
		}
		await closeAll();
	});

	c.test('a WebSocket message in 1-byte fragments: memory follows the bytes, closed at the fragment limit', async () => {
		const pid = c.edges[0].proc.pid;
		const before = vm(pid);
		const wss = [];
		try {
			for (let i = 0; i < 20; i++) {
				const w = await ws(c, `127.0.0.${61 + Math.floor(i / PER_IP)}`);
				wss.push(w);
				await wsOptions(w);	/* past the handshake deadline */
				w.send('O', { fin: false });
				/* A barrier: the pong to a ping sent after the
				 * fragment means the edge has read the fragment. */
				const pong = within(new Promise((r) => w.once('pong', r)), 3000, 'pong');
				w.ping();
				await pong;
			}
			const grown = vm(pid) - before;
			c.addEvidence('memory', `VmSize grew by ${grown} bytes for 20 one-byte fragments`);
			/* max_msg is 1 MiB: one buffer of that per fragment would be 20 MiB. */
			assert.ok(grown < 8 * 1024 * 1024, `VmSize grew by ${grown} bytes`);
			/* The edge's limit is 64 fragments a message: the 65th
			 * closes it.  No more after it, so that the close frame
			 * is not lost in a reset for unread bytes. */
			const game = wss[0];
			const closed = wsClosed(game, 5000);
			for (let i = 0; i < 64; i++) game.send('P', { fin: false });
			const r = await closed;
			assert.equal(r.code, 1008, `close code ${r.code} ${r.reason}`);
		} finally {
			for (const w of wss) w.terminate();
		}
		await closeAll();
	});

	c.test('a reader that stops reading is closed when its write queue fills, not buffered without end', async () => {
		const u = await StreamUA.open({ ...c.tcpDest(), secure: false });
		const user = `slow-${rand(4)}`;
		try {
			const r = await u.send({ method: 'REGISTER', ruri: 'sip:a.test', from: `sip:${user}@a.test`,
				to: `sip:${user}@a.test`, user, expires: 300 });
			assert.equal(r.status, 200);
			u.sock.pause();
			const pid = c.edges[0].proc.pid;
			const before = vm(pid, 'VmRSS');
			const sender = await c.ua('sender', { host: '127.0.0.82' });
			const body = 'x'.repeat(8000);
			let sent = 0;
			/* The write queue holds 8 max_msg (8 MiB here); the kernel
			 * some more.  Batches until the edge gives up on it. */
			while (sent < 4000 && (await c.edgeStat('conns_slow')) === 0) {
				for (let k = 0; k < 200; k++, sent++) {
					sender.request(c.edge(), {
						method: 'MESSAGE', ruri: `sip:${user}@a.test`, to: `sip:${user}@a.test`,
						from: 'sip:sender@a.test', body, retransmit: false,
					});
				}
				await waitUntil(async () => (await c.edgeStat('received')) >= sent, 5000,
					'the edge to take the batch', 50);
			}
			/* Only reported: an ASan build keeps freed memory. */
			const grown = vm(pid, 'VmRSS') - before;
			c.addEvidence('slow reader', `${sent} MESSAGEs of 8 kB; edge RSS grew by ${grown} bytes`);
			assert.ok(await c.edgeStat('conns_slow') >= 1, `still queued after ${sent} MESSAGEs`);
		} finally {
			u.close();
		}
		await closeAll();
	});
});

describe('62 limits conns: rate', () => {
	const RATE = 5;
	const c = streamCluster({
		name: '62-limits-conn-rate', edges: 1, cores: 1,
		edge: { conn_rate: RATE, conn_burst: RATE, max_conns_per_ip: 1000, defer_accept_s: 0 },
	});

	c.test('with defer_accept_s = 0 a silent connect is accepted at once', async () => {
		const s = await tcp(c.tcpDest(), '127.0.0.73', '');
		await waitUntil(async () => (await c.edgeStat('conns_opened')) === 1, 500, 'the edge to accept it', 50);
		s.destroy();
	});

	c.test(`a source opening connections past conn_rate (${RATE}/s) is refused at accept, logged once`, async () => {
		const d = c.tcpDest();
		const t0 = Date.now();
		const socks = await Promise.all(Array.from({ length: 30 }, () => tcp(d, '127.0.0.71')));
		const refused = (await Promise.all(socks.map((s) => closedWithin(s, 1000)))).filter(Boolean).length;
		const elapsed = (Date.now() - t0) / 1000;
		assert.ok(30 - refused <= RATE + Math.ceil(RATE * elapsed), `${30 - refused} accepted in ${elapsed} s`);
		assert.ok(refused >= 30 - RATE - Math.ceil(RATE * elapsed), `only ${refused} refused`);
		assert.equal(await c.edgeStat('conns_limited'), refused);
		const lines = c.edges[0].proc.lines.filter((l) => /connections from 127\.0\.0\.71 over conn_rate/.test(l.s));
		assert.equal(lines.length, 1, `logged ${lines.length} times`);
		/* Another source is not held back. */
		const other = await tcp(d, '127.0.0.72');
		await options(other, d);
		for (const s of socks) s.destroy();
		other.destroy();
	});
});
