'use strict';
/*
 * 38 log json: [log] format = json and levels per subsystem.  Every
 * line every process writes is one JSON object with ts, proc, level,
 * sys and msg; the lines about a MESSAGE carry its Call-ID as call_id,
 * also one with quotes and a backslash in it; sip:debug shows the
 * transaction layer's debug lines while the other subsystems stay at
 * info.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { cluster, rand, waitUntil } = require('./lib/cluster');
const { Registration, message } = require('./lib/flows');

describe('38 log json', () => {
	const c = cluster({
		name: '38-log-json', edges: 1, cores: 1, log: 'info',
		logKeys: { format: 'json', levels: 'sip:debug' },
	});

	c.test('every line is a JSON object; a call\'s lines carry its Call-ID; sip at debug, the rest at info', async () => {
		const user = `lj-${rand(4)}`;
		const callee = await c.ua('log-callee');
		await new Registration(callee, c.edge(), user).register(300);
		const sender = await c.ua('log-sender');
		const callId = `"quoted\\"${rand(6)}@log.test`;
		const r = await message(sender, c.edge(), user, 'a.test', { callId });
		assert.equal(r.status, 200);

		const core = c.cores[0].proc;
		let mine = [];
		await waitUntil(() => {
			mine = core.lines.map((l) => JSON.parse(l.s)).filter((o) => o.call_id === callId);
			return mine.some((o) => o.sys === 'sip' && o.level === 'debug');
		}, 3000, 'a sip debug line with the MESSAGE\'s Call-ID');
		for (const p of c.procs.filter((x) => /^(edge|core)/.test(x.name))) {
			assert.ok(p.lines.length > 0, `${p.name} logged`);
			for (const l of p.lines) {
				let o;
				assert.doesNotThrow(() => { o = JSON.parse(l.s); }, `${p.name}: not JSON: ${l.s}`);
				assert.deepEqual(Object.keys(o).filter((k) => k !== 'call_id'),
					['ts', 'proc', 'level', 'sys', 'msg'], `${p.name}: ${l.s}`);
				assert.match(o.ts, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
				assert.match(o.proc, /^(sipmesh-edge|core-\d+)$/);
				if (o.level === 'debug') assert.equal(o.sys, 'sip', `only sip at debug: ${l.s}`);
			}
		}
	});
});
