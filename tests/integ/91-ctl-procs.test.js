'use strict';
/*
 * 91 ctl procs: sipmesh-ctl talks to the running processes of this
 * host through their control sockets (<run_dir>/<kind>-<id>.ctl, mode
 * 0600): ps lists them with their pids and levels; stats prints a
 * process's counters (no metrics address configured) and they move
 * with traffic; log changes a process's levels at run time (sip:debug
 * shows each message with its Call-ID, a bad or hostile level list is
 * refused and changes nothing); drain edge N closes the edge's
 * WebSocket clients over drain_s and stops its listener.
 */
const assert = require('node:assert/strict');
const { spawnSync } = require('node:child_process');
const fs = require('node:fs');
const net = require('node:net');
const path = require('node:path');
const { describe } = require('node:test');
const { rand, waitUntil, HOST } = require('./lib/cluster');
const { Registration, message } = require('./lib/flows');
const { streamCluster, WsUA } = require('./lib/ws');

describe('91 ctl procs', () => {
	const c = streamCluster({ name: '91-ctl-procs', edges: 1, cores: 2, edge: { drain_s: 1 } });

	function ctl(...args) {
		const bin = path.join(process.env.SIPMESH_BIN || '', 'sipmesh-ctl');
		const r = spawnSync(bin, ['-c', c.confPath, ...args], { encoding: 'utf8', timeout: 10000 });
		return { code: r.status, out: r.stdout, err: r.stderr };
	}

	/* A counter's value in a Prometheus text. */
	function counter(text, name) {
		const m = new RegExp(`^${name.replace(/[{}"]/g, '\\$&')} (\\d+)$`, 'm').exec(text);
		assert.ok(m, `${name} in the counters`);
		return Number(m[1]);
	}

	c.test('ps lists the processes; stats moves with traffic; sockets are for their user only', async () => {
		const ps = ctl('-j', 'ps');
		assert.equal(ps.code, 0, ps.err);
		const list = JSON.parse(ps.out);
		const pids = Object.fromEntries(c.procs.map((p) => [p.name, p.pid]));
		assert.deepEqual(list.map((x) => `${x.kind}-${x.id}`).sort(), ['core-1', 'core-2', 'edge-1']);
		for (const x of list) {
			const mine = c.procs.find((p) => p.pid === x.pid);
			assert.ok(mine, `${x.kind} ${x.id}: pid ${x.pid} is one of the cluster's (${JSON.stringify(pids)})`);
			assert.equal(x.log_format, 'plain');
			assert.match(x.log_levels, /^main:info .* rtp:info$/);
		}
		assert.match(ctl('ps').out, /rtpctl +1 +not running on this host/);
		for (const f of ['edge-1.ctl', 'core-1.ctl', 'core-2.ctl'])
			assert.equal(fs.statSync(path.join(c.runDir, f)).mode & 0o777, 0o600, `${f} mode`);

		const before = ctl('stats', 'core', '1').out + ctl('stats', 'core', '2').out;
		const ua = await c.ua('stats');
		for (let i = 0; i < 5; i++)
			assert.equal((await new Registration(ua, c.edge(), `st${i}-${rand(3)}`).register(300)).status, 200);
		const after = ctl('stats', 'core', '1').out + ctl('stats', 'core', '2').out;
		const sum = (t) => t.split('\n').filter((l) => l.startsWith('sipmesh_core_registers_total '))
			.reduce((a, l) => a + Number(l.split(' ')[1]), 0);
		assert.equal(sum(after) - sum(before), 5, 'five more REGISTERs counted over both cores');
		assert.ok(counter(ctl('stats', 'edge', '1').out, 'sipmesh_edge_messages_received_total') >= 5);
		const gone = ctl('stats', 'core', '9');
		assert.equal(gone.code, 1);
		assert.match(gone.err, /core 9 is not running on this host/);
	});

	c.test('log levels change at run time; a bad or hostile list changes nothing', async () => {
		const core = c.cores[0].proc;
		const set = ctl('log', 'core', '1', 'sip:debug');
		assert.equal(set.code, 0, set.err);
		assert.match(set.out, /sip:debug/);
		const callee = await c.ua('log-callee');
		const user = `lg-${rand(4)}`;
		await new Registration(callee, c.edge(), user).register(300);
		const sender = await c.ua('log-sender');
		const t0 = Date.now();
		const ids = [];
		for (let i = 0; i < 6; i++) {
			const callId = `ctl-log-${rand(6)}@t`;
			ids.push(callId);
			assert.equal((await message(sender, c.edge(), user, 'a.test', { callId })).status, 200);
		}
		/* Call-IDs spread over both cores: some reached core 1. */
		await waitUntil(() => core.lines.some((l) => l.t >= t0 && / debug sip: \[ctl-log-/.test(l.s)), 3000,
			'core 1 to log a MESSAGE at sip:debug');
		assert.ok(!c.cores[1].proc.lines.some((l) => l.t >= t0 && / debug sip: /.test(l.s)),
			'core 2 kept its levels');
		/* Hostile and bad lists: 400, levels as they were. */
		for (const bad of ['sip:loud', 'nope:debug', 'sip:debug%0a12:00:00.000 forged', 'sip:debug&x=1']) {
			const r = ctl('log', 'core', '1', bad);
			assert.equal(r.code, 1, bad);
			assert.match(r.err, /400/);
		}
		assert.match(JSON.parse(ctl('-j', 'ps').out).find((x) => x.kind === 'core' && x.id === 1).log_levels,
			/sip:debug/);
		const all = ctl('log', 'all', 'all:info');
		assert.equal(all.code, 0, all.err);
		assert.equal((all.out.match(/main:info cfg:info net:info sip:info/g) || []).length, 3);
		const t1 = Date.now();
		assert.equal((await message(sender, c.edge(), user, 'a.test', {})).status, 200);
		await new Promise((r) => setTimeout(r, 200));
		assert.ok(!core.lines.some((l) => l.t >= t1 && / debug /.test(l.s)), 'back at info');
	});

	c.test('drain edge 1: its WebSocket clients are closed over drain_s, its listener stops', async () => {
		const ws = [];
		for (let i = 0; i < 6; i++) {
			const u = await WsUA.open({ url: c.wsUrl(1) });
			const name = `dr${i}-${rand(3)}`;
			const r = await u.send({
				method: 'REGISTER', ruri: 'sip:a.test', from: `sip:${name}@a.test`,
				to: `sip:${name}@a.test`, user: name, expires: 300,
			});
			assert.equal(r.status, 200);
			ws.push(u);
		}
		const t0 = Date.now();
		const d = ctl('drain', 'edge', '1');
		assert.equal(d.code, 0, d.err);
		assert.match(d.out, /edge 1 draining over 1 s: 6 connections to move/);
		await waitUntil(() => ws.every((u) => u.closed), 4000, 'the clients closed');
		assert.ok(Math.max(...ws.map((u) => u.closedAt)) - t0 < 2500, 'within drain_s');
		const port = Number(new URL(c.wsUrl(1)).port);
		const refused = await new Promise((res) => {
			const s = net.connect({ host: HOST, port }, () => { s.destroy(); res(false); });
			s.on('error', () => res(true));
		});
		assert.ok(refused, 'the drained edge accepts no new connection');
	});
});
