'use strict';
/*
 * 75 make run: scripts/run.sh (what `make run` starts after building)
 * with a configuration on free loopback ports.  Its processes run under
 * supervisors: a core killed with SIGKILL is logged and started again
 * within seconds, the bindings survive (Redis and the shared store),
 * and REGISTER works again; Ctrl-C (SIGINT) stops every process it
 * started, supervisors included.  It prints where each process serves
 * its Prometheus metrics, and they answer there.  Before commit "run: supervise every
 * process" the first process to die took the whole cluster down.
 * With [cluster] edges = 3 and [edge] reuseport = yes it runs three
 * edges that share every port (before commit "edge: WS/WSS listen on
 * the edge's own SO_REUSEPORT socket" edges 2 and 3 could not listen
 * on the WS port and restarted forever): each has its own incarnation
 * and reaches the cores (WebSocket clients register through every
 * one), and one SIGKILLed is started again and shares the ports again.
 */
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { describe, it, after } = require('node:test');
const { Proc, freePort, waitUntil, rand, HOST } = require('./lib/cluster');
const { SipUA } = require('./lib/sip');
const { Registration, assertContacts } = require('./lib/flows');
const { WsUA } = require('./lib/ws');
const procnet = require('./lib/procnet');

const ROOT = path.resolve(__dirname, '../..');

/* Every live descendant of pid: [{pid, cmd}], from /proc. */
function descendants(pid) {
	const kids = new Map();
	for (const d of fs.readdirSync('/proc')) {
		if (!/^\d+$/.test(d)) continue;
		try {
			const st = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
			const ppid = Number(st.slice(st.lastIndexOf(')') + 2).split(' ')[1]);
			const cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'latin1').split('\0').join(' ').trim();
			if (!kids.has(ppid)) kids.set(ppid, []);
			kids.get(ppid).push({ pid: Number(d), cmd });
		} catch { /* gone meanwhile */ }
	}
	const out = [];
	const walk = (p) => { for (const k of kids.get(p) || []) { out.push(k); walk(k.pid); } };
	walk(pid);
	return out;
}

describe('75 make run', () => {
	let run = null;
	let dir = null;
	let seen = [];
	after(async () => {
		if (run && run.alive) {
			process.kill(run.pid, 'SIGINT');
			await Promise.race([run.exited, new Promise((r) => setTimeout(r, 5000))]);
		}
		for (const p of seen) try { process.kill(p.pid, 'SIGKILL'); } catch { /* gone */ }
		if (dir) fs.rmSync(dir, { recursive: true, force: true });
	});

	/* Writes a configuration of these lines into a fresh dir (the
	 * previous one goes) and runs scripts/run.sh on it until it says
	 * it is running. */
	async function startRun(lines) {
		if (dir) fs.rmSync(dir, { recursive: true, force: true });
		dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smr-'));
		const conf = path.join(dir, 'sipmesh.conf');
		fs.writeFileSync(conf, [...lines(dir), ''].join('\n'));
		run = new Proc('make-run', 'sh', ['scripts/run.sh'], {
			cwd: ROOT, env: { SIPMESH_CONF: conf, SIPMESH_BIN: path.join(ROOT, 'build/bin') },
		});
		await waitUntil(() => {
			if (!run.alive) throw new Error(`run.sh exited:\n${run.lines.map((l) => l.s).join('\n')}`);
			return run.lines.some((l) => /running with/.test(l.s));
		}, 30000, 'run.sh to say it is running');
	}

	/* Ctrl-C: run.sh and every process it started must exit. */
	async function stopRun() {
		const all = descendants(run.pid);
		seen = all;
		process.kill(run.pid, 'SIGINT');
		await Promise.race([run.exited, new Promise((r) => setTimeout(r, 10000))]);
		assert.ok(!run.alive, 'run.sh did not exit on SIGINT');
		await waitUntil(() => all.every((p) => !fs.existsSync(`/proc/${p.pid}`) ||
			/State:\s+Z/.test(fs.readFileSync(`/proc/${p.pid}/status`, 'latin1'))),
			5000, 'every process run.sh started to exit');
	}

	it('restarts a killed core, keeps the bindings, and Ctrl-C stops everything', { timeout: 90000 }, async (t) => {
		const sip = await freePort();
		const redis = await freePort();
		const metrics = { 'edge 1': `${HOST}:${await freePort()}`, 'core 2': `${HOST}:${await freePort()}` };
		await startRun((d) => [
			'[cluster]', `run_dir = ${d}/run`, 'edges = 1', 'cores = 2',
			'[log]', 'level = notice',
			'[redis]', `address = ${HOST}:${redis}`, `prefix = smr${process.pid}`,
			'[location]', `shm_name = /sm-run-${process.pid}`, 'shm_size_mb = 16', 'max_bindings = 1000',
			'[proxy]', 'media = no',
			'[edge 1]', `udp = ${HOST}:${sip}`, `tcp = ${HOST}:${sip}`, 'tls =', 'ws =', 'wss =',
			`metrics = ${metrics['edge 1']}`,
			'[core 2]', `metrics = ${metrics['core 2']}`,
		]);
		/* It says where each process serves its metrics, and they do. */
		for (const [who, addr] of Object.entries(metrics)) {
			const url = `http://${addr}/metrics`;
			assert.ok(run.lines.some((l) => l.s === `sipmesh: metrics of ${who} on ${url}`),
				`run.sh did not print the metrics of ${who}:\n${run.lines.map((l) => l.s).join('\n')}`);
			let body = '';
			await waitUntil(async () => {
				body = await fetch(url).then((r) => (r.ok ? r.text() : '')).catch(() => '');
				return body.length > 0;
			}, 10000, `${url} to answer`, 200);
			assert.match(body, new RegExp(`^# TYPE sipmesh_${who.split(' ')[0]}_\\w+ counter$`, 'm'));
		}
		const edge = { host: HOST, port: sip };
		const ua = await SipUA.open({ label: 'runner' });
		try {
			const u = `run-${rand(3)}`;
			const reg = new Registration(ua, edge, u);
			await waitUntil(async () => (await reg.send({ expires: 600 }).catch(() => ({}))).status === 200,
				10000, 'a first REGISTER through the edge', 200);
			seen = descendants(run.pid);
			const core = seen.find((p) => /sipmesh-core .*-i 1$/.test(p.cmd));
			assert.ok(core, `no core 1 among run.sh's processes:\n${seen.map((p) => `${p.pid} ${p.cmd}`).join('\n')}`);
			const since = Date.now();
			process.kill(core.pid, 'SIGKILL');
			await waitUntil(() => run.lines.some((l) => l.t >= since && /core 1 exited \(137\); restarting in 1 s/.test(l.s)),
				5000, 'the supervisor to log the dead core');
			await waitUntil(() => descendants(run.pid).some((p) => p.pid !== core.pid && /sipmesh-core .*-i 1$/.test(p.cmd)),
				10000, 'core 1 to be started again');
			assert.ok(run.alive, 'run.sh stopped with the core');
			/* Every Call-ID works again and the binding is still there. */
			for (let i = 0; i < 8; i++) {
				const q = new Registration(ua, edge, u);
				const r = await q.send({ contacts: [] });
				assert.equal(r.status, 200, `query ${i} after the restart: ${r.status} ${r.reason}`);
				assertContacts(r, [reg.contact], `query ${i} after the restart`);
			}
			t.diagnostic(`core 1 back and serving ${Date.now() - since} ms after SIGKILL`);
		} finally {
			ua.close();
		}
		await stopRun();
	});
	it('runs edges = 3 on shared ports and restarts a killed edge', { timeout: 120000 }, async (t) => {
		const sip = await freePort();
		const ws = await freePort();
		const redis = await freePort();
		await startRun((d) => [
			'[cluster]', `run_dir = ${d}/run`, 'edges = 3', 'cores = 2',
			'[log]', 'level = notice',
			'[redis]', `address = ${HOST}:${redis}`, `prefix = smr${process.pid}e`,
			'[location]', `shm_name = /sm-run3-${process.pid}`, 'shm_size_mb = 16', 'max_bindings = 1000',
			'[proxy]', 'media = no',
			'[edge]', 'reuseport = yes', `udp = ${HOST}:${sip}`, `tcp = ${HOST}:${sip}`, 'tls =',
			`ws = ${HOST}:${ws}`, 'wss =',
		]);
		/* The three edges, by id: {id: pid}, once each listens on both ports. */
		const want = [`tcp ${sip}`, `tcp ${ws}`, `udp ${sip}`];
		const edges = async (what) => {
			let pids = {};
			await waitUntil(() => {
				pids = {};
				for (const p of descendants(run.pid)) {
					const m = /sipmesh-edge .*-i (\d+)$/.exec(p.cmd);
					if (m && procnet.listening(p.pid).join() === want.join()) pids[m[1]] = p.pid;
				}
				return Object.keys(pids).length === 3;
			}, 10000, what);
			return pids;
		};
		let pids = await edges('three edges listening on the shared ports');
		const incs = new Set(run.lines.map((l) => /sipmesh-edge \d: incarnation ([0-9a-f]{8})/.exec(l.s))
			.filter(Boolean).map((m) => m[1]));
		assert.equal(incs.size, 3, `incarnations: ${[...incs]}`);
		assert.ok(!run.lines.some((l) => /edge \d exited/.test(l.s)), run.lines.map((l) => l.s).join('\n'));

		/* WebSocket clients until each edge has registered one: every
		 * edge reaches the cores.  Sent once: nothing retransmits over
		 * a stream, and an edge opens its ports only once the cores are
		 * linked to it. */
		const open = [];
		const registerAll = async () => {
			const got = new Set();
			for (let i = 0; i < 60 && got.size < 3; i++) {
				const u = await WsUA.open({ url: `ws://${HOST}:${ws}`, localAddress: `127.0.0.${2 + (i % 6)}` });
				open.push(u);
				const id = procnet.holder(pids, `${HOST}:${ws}`, `${u.local.host}:${u.local.port}`);
				const user = `r${i}-${rand(3)}`;
				const contact = `<sip:${user}@${rand(6)}.invalid;transport=ws>`;
				const r = await u.send({ method: 'REGISTER', ruri: 'sip:ws.test', from: `sip:${user}@ws.test`,
					to: `sip:${user}@ws.test`, user, expires: 300, contact }, 5000);
				assert.equal(r.status, 200, `REGISTER through edge ${id}: ${r.status}`);
				if (id) got.add(id);
			}
			return [...got].sort();
		};
		try {
			assert.deepEqual(await registerAll(), ['1', '2', '3']);
			const since = Date.now();
			process.kill(pids[2], 'SIGKILL');
			await waitUntil(() => run.lines.some((l) => l.t >= since && /edge 2 exited \(137\); restarting in 1 s/.test(l.s)),
				5000, 'the supervisor to log the dead edge');
			const old = pids[2];
			pids = await edges('edge 2 to be started again and listen on the shared ports');
			assert.notEqual(pids[2], old);
			assert.deepEqual(await registerAll(), ['1', '2', '3']);
			t.diagnostic(`edge 2 back and registering ${Date.now() - since} ms after SIGKILL`);
		} finally {
			for (const u of open) u.close();
		}
		await stopRun();
	});
});
