'use strict';
/*
 * 35 edges reuseport: three edges of one host share every SIP port
 * ([cluster] edges = 3, [edge] reuseport = yes): UDP, TCP, TLS, WS and
 * WSS.  Before commit "edge: WS/WSS listen on the edge's own
 * SO_REUSEPORT socket" the second edge failed with "ws listen ...
 * (address in use)": libwebsockets 4.1.6 does not set SO_REUSEPORT.
 *   - every edge holds a listening socket on every shared port, and
 *     each has its own incarnation;
 *   - 30 WebSocket clients from six 127.0.0.x sources: the kernel
 *     spreads them, every edge holds some (the server end of each
 *     connection is found in /proc), every client registers, and a
 *     MESSAGE sent over UDP reaches every client, so through every edge;
 *   - the KwikyKonf page is served on the shared WS port by each edge,
 *     and /kk/guest answers there;
 *   - WSS, TLS and TCP clients register through the shared ports;
 *   - one edge SIGKILLed: its clients, and only they, lose their
 *     connection; the others still get messages; started again it
 *     listens on the shared ports and takes new connections;
 *   - an edge out of file descriptors (a flood of connections under a
 *     low RLIMIT_NOFILE) rests its listener instead of spinning on the
 *     connection it cannot accept, and accepts again once fds free up;
 *   - an edge started on those ports without reuseport = yes cannot
 *     bind, and its error says which key fixes it.
 */
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const { describe, before, after } = require('node:test');
const { cluster, freePort, rand, waitUntil, Proc, HOST } = require('./lib/cluster');
const { tlsPair, WsUA, StreamUA, rawWs } = require('./lib/ws');
const procnet = require('./lib/procnet');

const EDGES = 3;
const SOURCES = ['127.0.0.2', '127.0.0.3', '127.0.0.4', '127.0.0.5', '127.0.0.6', '127.0.0.7'];
const DOMAIN = 'ws.test';

describe('35 edges reuseport', () => {
	const ports = {};
	let root = null;
	const edge = { reuseport: 'yes' };
	before(async () => {
		ports.tls = await freePort();
		ports.ws = await freePort();
		ports.wss = await freePort();
		const p = tlsPair();
		Object.assign(edge, { tls_cert: p.cert, tls_key: p.key, tls_ca: p.cert });
		root = fs.mkdtempSync(path.join(os.tmpdir(), 'smi-kk-'));
		fs.writeFileSync(path.join(root, 'index.html'), '<!doctype html><title>kk</title>hello kwikykonf\n');
		edge.http_root = root;
	});
	after(() => { if (root) fs.rmSync(root, { recursive: true, force: true }); });
	const c = cluster({
		name: '35-edges-reuseport', edges: EDGES, cores: 2, sharePorts: true, edge,
		edgeKeys: () => ({
			tls: `${HOST}:${ports.tls}`, ws: `${HOST}:${ports.ws}`, wss: `${HOST}:${ports.wss}`,
		}),
	});
	const open = [];
	const wsUrl = (secure = false) => (secure ? `wss://${HOST}:${ports.wss}` : `ws://${HOST}:${ports.ws}`);

	/* Which edge (id) holds the server end of a connection from `from`
	 * ("ip:port") to 127.0.0.1:port; null when none does. */
	function holder(port, from) {
		const pids = Object.fromEntries(c.edges.filter((e) => e.proc && e.proc.alive).map((e) => [e.id, e.proc.pid]));
		const id = procnet.holder(pids, `${HOST}:${port}`, from);
		return id === null ? null : Number(id);
	}

	/* The shared ports edge e listens on: ["tcp 5060", "udp 5060", ...]. */
	const listening = (e) => procnet.listening(e.proc.pid);

	function expectedListeners() {
		const p = c.edge(1).port;
		return [`tcp ${p}`, `tcp ${ports.tls}`, `tcp ${ports.ws}`, `tcp ${ports.wss}`, `udp ${p}`].sort();
	}

	/* A WebSocket client from src that registers user; pushed on open. */
	async function wsClient(user, src, secure = false) {
		const u = await WsUA.open({ url: wsUrl(secure), localAddress: src });
		open.push(u);
		u.user = user;
		u.edge = holder(secure ? ports.wss : ports.ws, `${u.local.host}:${u.local.port}`);
		const r = await u.send({
			method: 'REGISTER', ruri: `sip:${DOMAIN}`, from: `sip:${user}@${DOMAIN}`,
			to: `sip:${user}@${DOMAIN}`, user, expires: 300,
			contact: `<sip:${user}@${rand(6)}.invalid;transport=ws>`,
		});
		assert.equal(r.status, 200, `${user} (edge ${u.edge}): REGISTER got ${r.status}`);
		return u;
	}

	/* A MESSAGE over UDP (to the shared port: any edge) to each of
	 * users; each answers 200 when it arrives.  Resolves with
	 * [{u, status}]. */
	async function messageAll(users, tag) {
		const ua = await c.ua(`sender-${tag}`);
		return Promise.all(users.map(async (u) => {
			const body = `${tag} for ${u.user}`;
			const got = u.waitRequest((m) => m.method === 'MESSAGE' && m.body.toString() === body, 8000,
				`MESSAGE "${body}"`).then((m) => { u.reply(m, 200, 'OK'); return m; });
			const res = await ua.send(c.edge(1), {
				method: 'MESSAGE', ruri: `sip:${u.user}@${DOMAIN}`, from: `sip:sender@${DOMAIN}`,
				to: `sip:${u.user}@${DOMAIN}`, body, contentType: 'text/plain',
			}, 8000);
			if (res.status === 200) await got;
			else got.catch(() => {});
			return { u, status: res.status };
		}));
	}

	function spread(users) {
		const n = {};
		for (const e of c.edges) n[e.id] = 0;
		for (const u of users) n[u.edge] = (n[u.edge] || 0) + 1;
		return n;
	}

	/* 30 registered WebSocket clients (names prefix<i>) over the six
	 * sources; asserts that every edge holds some. */
	async function spreadClients(t, prefix) {
		const users = [];
		for (let i = 0; i < 30; i++)
			users.push(await wsClient(`${prefix}${i}-${rand(3)}`, SOURCES[i % SOURCES.length]));
		const n = spread(users);
		t.diagnostic(`connections per edge: ${JSON.stringify(n)}`);
		for (const e of c.edges) assert.ok(n[e.id] > 0, `edge ${e.id} holds none of 30: ${JSON.stringify(n)}`);
		assert.ok(!('null' in n), `connections held by no edge: ${JSON.stringify(n)}`);
		return users;
	}

	async function closeAll() {
		for (const u of open.splice(0)) u.close();
	}

	c.test('every edge listens on every shared port, each its own incarnation', async () => {
		const inc = new Set();
		for (const e of c.edges) {
			assert.deepEqual(listening(e), expectedListeners(), `edge ${e.id}'s listening sockets`);
			const l = e.proc.lines.find((x) => /incarnation [0-9a-f]{8}/.test(x.s));
			assert.ok(l, `edge ${e.id} logged no incarnation`);
			inc.add(/incarnation ([0-9a-f]{8})/.exec(l.s)[1]);
			assert.ok(!e.proc.lines.some((x) => /address in use|failed/i.test(x.s)),
				`edge ${e.id}: ${e.proc.tail()}`);
		}
		assert.equal(inc.size, EDGES, 'incarnations are not distinct');
	});

	c.test('30 WebSocket clients spread over the edges, register, and each gets a MESSAGE', async (t) => {
		try {
			const users = await spreadClients(t, 'ws');
			const rs = await messageAll(users, `m-${rand(4)}`);
			const bad = rs.filter((x) => x.status !== 200);
			assert.deepEqual(bad.map((x) => `${x.u.user} on edge ${x.u.edge}: ${x.status}`), []);
		} finally {
			await closeAll();
		}
	});

	c.test('the KwikyKonf page and /kk/guest come from every edge on the shared WS port', async () => {
		const seen = new Set();
		for (let i = 0; i < 60 && seen.size < EDGES; i++) {
			const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
			try {
				const { status, body, from } = await new Promise((res, rej) => {
					const q = http.get({ host: HOST, port: ports.ws, path: '/', agent,
						localAddress: SOURCES[i % SOURCES.length] }, (r) => {
						const from = `${r.socket.localAddress}:${r.socket.localPort}`;
						let b = '';
						r.setEncoding('utf8');
						r.on('data', (d) => { b += d; });
						r.on('end', () => res({ status: r.statusCode, body: b, from }));
					});
					q.on('error', rej);
				});
				assert.equal(status, 200);
				assert.match(body, /hello kwikykonf/);
				/* keep-alive: the edge still holds the connection */
				const id = holder(ports.ws, from);
				if (id) seen.add(id);
			} finally {
				agent.destroy();
			}
		}
		assert.equal(seen.size, EDGES, `the page came from edges ${[...seen]} only`);
		const r = await fetch(`http://${HOST}:${ports.ws}/kk/guest?room=r${rand(4)}`);
		assert.equal(r.status, 200);
		assert.ok((await r.json()).username, 'no guest username');
	});

	c.test('WSS, TLS and TCP clients register through the shared ports', async (t) => {
		try {
			const users = [];
			for (let i = 0; i < 12; i++)
				users.push(await wsClient(`wss${i}-${rand(3)}`, SOURCES[i % SOURCES.length], true));
			t.diagnostic(`WSS connections per edge: ${JSON.stringify(spread(users))}`);
			for (const secure of [true, false]) {
				for (let i = 0; i < 6; i++) {
					const s = await StreamUA.open({ port: secure ? ports.tls : c.edge(1).port, secure });
					open.push(s);
					const user = `${secure ? 'tls' : 'tcp'}${i}-${rand(3)}`;
					const r = await s.send({ method: 'REGISTER', ruri: `sip:${DOMAIN}`, from: `sip:${user}@${DOMAIN}`,
						to: `sip:${user}@${DOMAIN}`, user, expires: 300 });
					assert.equal(r.status, 200, `${user}: REGISTER got ${r.status}`);
				}
			}
			const rs = await messageAll(users, `s-${rand(4)}`);
			assert.deepEqual(rs.filter((x) => x.status !== 200).map((x) => `${x.u.user}: ${x.status}`), []);
		} finally {
			await closeAll();
		}
	});

	c.test('an edge killed: only its clients drop, the others still get messages; restarted it shares the ports again', { timeout: 90000 }, async (t) => {
		try {
			const users = await spreadClients(t, 'k');
			const victim = 2;
			const oldPid = c.edges.find((e) => e.id === victim).proc.pid;
			await c.stopEdge(victim, 'SIGKILL');
			const lost = users.filter((u) => u.edge === victim);
			const kept = users.filter((u) => u.edge !== victim);
			await Promise.all(lost.map((u) => u.waitFor(() => u.closed, 5000, 'its connection to drop')));
			/* A MESSAGE round trip after the kill: had a survivor's
			 * connection dropped, it would show by now. */
			const rs = await messageAll(kept, `after-${rand(4)}`);
			assert.deepEqual(rs.filter((x) => x.status !== 200).map((x) => `${x.u.user} on edge ${x.u.edge}: ${x.status}`), []);
			assert.deepEqual(kept.filter((u) => u.closed).map((u) => `${u.user} on edge ${u.edge}`), [],
				'clients of other edges lost their connection');

			await c.startEdge(victim);
			const e = c.edges.find((x) => x.id === victim);
			assert.notEqual(e.proc.pid, oldPid);
			assert.deepEqual(listening(e), expectedListeners(), `edge ${victim}'s listening sockets after the restart`);
			/* New connections reach it again (the kernel picks by
			 * address and port: try until one lands there). */
			let landed = null;
			for (let i = 0; i < 60 && !landed; i++) {
				const u = await wsClient(`n${i}-${rand(3)}`, SOURCES[i % SOURCES.length]);
				if (u.edge === victim) landed = u;
			}
			assert.ok(landed, `no new connection reached the restarted edge ${victim}`);
			const [r] = await messageAll([landed], `back-${rand(4)}`);
			assert.equal(r.status, 200, `MESSAGE to ${landed.user} on the restarted edge: ${r.status}`);
		} finally {
			await closeAll();
		}
	});
	/* utime + stime of pid in clock ticks (/proc/<pid>/stat). */
	function cpuTicks(pid) {
		const st = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
		const f = st.slice(st.lastIndexOf(')') + 2).split(' ');
		return Number(f[11]) + Number(f[12]);
	}

	c.test('an edge out of file descriptors rests its listener, then accepts again', async (t) => {
		const e = c.edges.find((x) => x.id === 3);
		const pid = e.proc.pid;
		const lim = (s) => execFileSync('prlimit', ['--pid', String(pid), `--nofile=${s}`]);
		const before = fs.readdirSync(`/proc/${pid}/fd`).length;
		const soft = fs.readFileSync(`/proc/${pid}/limits`, 'latin1').match(/Max open files\s+(\d+)\s+(\d+)/);
		const flood = [];
		try {
			/* room for a few connections only (more, when connections
			 * of the tests before were still closing as `before` was
			 * counted: a flood of 150 gives edge 3 about 50 of them) */
			lim(`${before + 4}:${soft[2]}`);
			const pending = [];
			for (let i = 0; i < 150; i++) {
				pending.push(rawWs(wsUrl(), { localAddress: SOURCES[i % SOURCES.length], handshakeTimeout: 4000 })
					.then((s) => { flood.push(s); }, () => {}));
			}
			/* Connections queue on edge 3's full listener: it must
			 * not burn CPU retrying them (a spin is ~100 ticks/s). */
			await waitUntil(() => e.proc.lines.some((l) => /WS accept: Too many open files/.test(l.s)), 10000,
				'edge 3 to run out of file descriptors');
			const t0 = cpuTicks(pid);
			await new Promise((r) => setTimeout(r, 1500));
			const used = cpuTicks(pid) - t0;
			t.diagnostic(`edge 3 used ${used} ticks in 1.5 s with its fd table full`);
			assert.ok(used < 40, `edge 3 spun: ${used} clock ticks in 1.5 s`);
			for (const s of flood) s.terminate();
			await Promise.all(pending);
			for (const s of flood) s.terminate();
		} finally {
			lim(`${soft[1]}:${soft[2]}`);
		}
		/* fds free again: a new client reaches edge 3 and registers. */
		let landed = null;
		try {
			for (let i = 0; i < 60 && !landed; i++) {
				const u = await wsClient(`f${i}-${rand(3)}`, SOURCES[i % SOURCES.length]);
				if (u.edge === 3) landed = u;
			}
			assert.ok(landed, 'edge 3 accepts nothing after its fds came back');
		} finally {
			await closeAll();
		}
	});
	c.test('an edge without reuseport cannot share the ports, and says which key fixes it', async () => {
		/* The same configuration with reuseport = no and its own
		 * run_dir (so its link endpoint is free): only the SIP ports
		 * collide. */
		const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smi-nrp-'));
		try {
			const conf = path.join(dir, 'sipmesh.conf');
			fs.writeFileSync(conf, fs.readFileSync(c.confPath, 'utf8')
				.replace(/^reuseport = yes$/m, 'reuseport = no')
				.replace(/^run_dir = .*$/m, `run_dir = ${dir}`));
			const p = new Proc('edge-noreuse', process.env.SIPMESH_BIN + '/sipmesh-edge', ['-c', conf, '-i', '1']);
			await p.exited;
			assert.notEqual(p.code, 0, `it started:\n${p.tail()}`);
			assert.ok(p.lines.some((l) => /UDP bind 127\.0\.0\.1:\d+: Address already in use \(edges of one host share a port only with \[edge\] reuseport = yes\)/.test(l.s)),
				p.tail());
		} finally {
			fs.rmSync(dir, { recursive: true, force: true });
		}
	});
});
