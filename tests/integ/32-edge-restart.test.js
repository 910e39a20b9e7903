'use strict';
/*
 * 32 edge restart: a WebSocket user's binding names the edge and the
 * connection that reaches it.  Two attacks on that, each a test:
 *   - the edge dies (SIGKILL by PID, no goodbye) and starts again; its
 *     connection numbering starts again too.  New users who connect
 *     after the restart take the connections' would-be numbers, and a
 *     MESSAGE for a user of the dead process must not reach them: the
 *     caller gets 430 (RFC 5626 flow failed) or 480, the stale binding
 *     goes (the next MESSAGE gets 480 at once), and once the old user
 *     registers again messages reach it, and only it;
 *   - the same for an in-dialog request: the callee's flow token in
 *     the dialog's Route names a connection of the dead process; the
 *     caller's BYE gets 430 and reaches no newcomer;
 *   - bindings stored before incarnations (binding codec V2 in Redis,
 *     loaded by cores that start on an empty shared store): a UDP one
 *     still works; a flow's names a bare serial that the edge does not
 *     trust even when that serial is open, the caller gets 430, and
 *     once the client registers again its messages arrive;
 *   - the edge is stopped (SIGTERM): it tells the cores about every
 *     open connection before it goes, so their bindings are dropped at
 *     once and a caller gets 480 at once, not a timeout (64*T1 = 6.4 s
 *     here) after a request sent to a dead process;
 *   - the edge dies while Redis is down: the cores' store may then be
 *     stale (another host may have replaced the binding, as in a
 *     failover when the user reconnected elsewhere), so a MESSAGE to
 *     the dead flow gets 503 with Retry-After, not 430 (the flow is
 *     not known to have failed); once Redis is back and the store
 *     reconciled, 430 or 480.
 * The attacks start on a freshly started edge 1, so that the victims
 * hold its first connections and the newcomers after the crash take
 * the same numbers whatever ran before.  Callers are on edge 2, which
 * stays up.
 */
const assert = require('node:assert/strict');
const { describe } = require('node:test');
const { rand, waitUntil } = require('./lib/cluster');
const { message, Registration } = require('./lib/flows');
const { streamCluster, SipJsUA, WsUA } = require('./lib/ws');

describe('32 edge restart', () => {
	const c = streamCluster({ name: '32-edge-restart', edges: 2, cores: 2, redis: true,
		proxy: { t1_ms: 100, t2_ms: 400 } });
	const open = [];

	/* A SIP.js user registered over WS on edge `edge` (1), stopped
	 * after the test.  u.frames: every frame its WebSocket received, whatever
	 * SIP.js made of it (it answers 404 to a request for another
	 * Contact, so its own MESSAGE list would not show a delivery). */
	async function user(name, edge = 1) {
		const u = await SipJsUA.open({ user: name, server: c.wsUrl(edge) });
		u.frames = [];
		u.socket.on('message', (d) => u.frames.push(String(d)));
		open.push(u);
		c.addEvidence(`SIP.js ${u.user} (${u.contactUri}) log`, { toString: () => u.log.join('\n') });
		return u;
	}

	/* The frames of users that carry body, as evidence. */
	function delivered(users, body) {
		return users.flatMap((u) => u.frames.filter((f) => f.includes(body)).map((f) => `${u.user}: ${f}`));
	}

	function wsTest(name, fn) {
		c.test(name, async (t) => {
			try {
				await fn(t);
			} finally {
				for (const u of open.splice(0)) await u.stop();
			}
		});
	}

	/* Edge 1 as a new process with no connection yet. */
	async function freshEdge() {
		await c.stopEdge(1, 'SIGTERM');
		await c.startEdge(1);
	}

	/* A MESSAGE from caller (UDP, edge 2) to u's AOR: its final response. */
	function send(caller, u, body, timeout = 8000) {
		return message(caller, c.edge(2), u.user, u.domain, { body, timeout });
	}

	wsTest('an edge that dies while Redis is down: 503 + Retry-After until the store is in step, then 430/480', async () => {
		await freshEdge();
		const u = await user(`stale-${rand(3)}`);
		const caller = await c.ua('stale-caller');
		assert.equal((await send(caller, u, 'before')).status, 200);
		const t0 = Date.now();
		await c.stopRedis();
		await waitUntil(() => c.cores.every((k) => k.proc.text(t0).includes('serving from shared memory')),
			5000, 'both cores to take Redis for down');
		await c.stopEdge(1, 'SIGKILL');
		const r = await send(caller, u, 'while Redis is down');
		assert.equal(r.status, 503, `MESSAGE to the dead flow while Redis is down: ${r.status} ${r.reason}`);
		assert.ok(r.get('retry-after'), '503 without Retry-After');
		const t1 = Date.now();
		await c.startRedis();
		await waitUntil(() => c.cores.every((k) => /redis \S+: reconciled/.test(k.proc.text(t1))),
			10000, 'both cores to reconcile with the new Redis');
		/* in step once other hosts' cores had the time to write what
		 * they took meanwhile too (their back-off and timeout, 3 s by
		 * default, plus a pass): 503 until then */
		let r2;
		await waitUntil(async () => (r2 = await send(caller, u, 'after the reconcile')).status !== 503,
			8000, 'the store to be in step (no 503)', 200).catch(() => {});
		assert.ok([430, 480].includes(r2.status), `MESSAGE to the dead flow once in step: ${r2.status} ${r2.reason}`);
		await c.startEdge(1);
	});

	wsTest('after SIGKILL and restart, a MESSAGE for a user of the dead edge reaches nobody else', async () => {
		await freshEdge();
		const caller = await c.ua('caller');
		const alice = await user(`alice-${rand(3)}`);
		const bob = await user(`bob-${rand(3)}`);
		/* Both reachable before the crash. */
		assert.equal((await send(caller, alice, 'before')).status, 200);
		await alice.waitMessage('before');
		assert.equal((await send(caller, bob, 'before')).status, 200);
		await bob.waitMessage('before');

		await c.stopEdge(1, 'SIGKILL');
		await c.startEdge(1);
		/* The first WebSocket connections of the new process: the numbers
		 * alice's and bob's connections had in the old one. */
		const mallory = await user(`mallory-${rand(3)}`);
		const trudy = await user(`trudy-${rand(3)}`);

		for (const [victim, other] of [[alice, mallory], [bob, trudy]]) {
			const body = `for ${victim.user} only ${rand(4)}`;
			const r = await send(caller, victim, body);
			assert.deepEqual(delivered([mallory, trudy], body), [],
				`${victim.user}'s MESSAGE reached a user who connected after the restart ` +
				`(answered ${r.status} ${r.reason})`);
			assert.ok([430, 480].includes(r.status),
				`MESSAGE to ${victim.aor} after the restart got ${r.status} ${r.reason}, expected 430 or 480`);
			/* Its binding is gone: the registrar knows the AOR, nothing reaches it. */
			const again = await send(caller, victim, `${body} again`);
			assert.equal(again.status, 480, `second MESSAGE to ${victim.aor} got ${again.status} ${again.reason}`);
			/* The newcomers themselves are reachable. */
			assert.equal((await send(caller, other, 'hello newcomer')).status, 200);
			await other.waitMessage('hello newcomer');
		}
		assert.equal(mallory.messages.length + trudy.messages.length, 2,
			`newcomers got ${JSON.stringify([...mallory.messages, ...trudy.messages])}`);

		/* alice comes back (the browser reconnects and registers): hers again. */
		const alice2 = await user(alice.user);
		assert.equal((await send(caller, alice2, 'welcome back')).status, 200);
		await alice2.waitMessage('welcome back');
		assert.deepEqual(delivered([mallory, trudy], 'welcome back'), []);
	});

	wsTest('after SIGKILL and restart, a flow token of the dead edge routes to nobody else', async () => {
		await freshEdge();
		const callee = await user(`callee-${rand(3)}`);
		const caller = await user(`caller-${rand(3)}`, 2);
		const call = await caller.invite(callee.aor);
		const callId = call.request.callId;

		await c.stopEdge(1, 'SIGKILL');
		await c.startEdge(1);
		const mallory = await user(`mallory-${rand(3)}`);
		const trudy = await user(`trudy-${rand(3)}`);

		/* The BYE's Route carries the callee's flow token (edge 1, its
		 * connection in the dead process). */
		let status;
		const done = (r) => { status = r.message.statusCode; };
		await call.bye({ requestDelegate: { onAccept: done, onReject: done } });
		await waitUntil(() => status !== undefined, 8000, 'the BYE\'s final response');
		assert.deepEqual(delivered([mallory, trudy], callId), [],
			`the BYE of a dialog with a user of the dead edge reached a newcomer (answered ${status})`);
		assert.equal(status, 430, `BYE down a flow of the dead edge got ${status}`);
	});

	/* Rewrites every V3 binding value of aor in Redis as the V2 value
	 * of before incarnations: the 4 incarnation bytes at offset 36
	 * go (location/loc_codec.c).  Lua strings are binary-safe. */
	const TO_V2 = `local n = 0
		local all = redis.call('HGETALL', KEYS[1])
		for i = 1, #all, 2 do
			local v = all[i + 1]
			if string.sub(v, 1, 2) == 'L\\3' then
				redis.call('HSET', KEYS[1], all[i], 'L\\2' .. string.sub(v, 3, 36) .. string.sub(v, 41))
				n = n + 1
			end
		end
		return n`;

	wsTest('bindings stored before incarnations: UDP ones work, flows fail with 430 until the client registers again', async () => {
		const ws = await user(`legacy-ws-${rand(3)}`);
		const phone = await c.ua('legacy-udp');
		const reg = new Registration(phone, c.edge(2), `legacy-udp-${rand(3)}`, 'ws.test');
		await reg.register(300);
		const converted = [];
		await c.restartCores({
			wipeShm: true,
			whileStopped: async () => {
				for (const aor of [`${ws.user}@ws.test`, `${reg.user}@ws.test`])
					converted.push(await c.redisCmd('EVAL', TO_V2, 1, `${c.prefix}:aor:${aor}`));
			},
		});
		assert.deepEqual(converted, [1, 1], 'one V3 binding per AOR rewritten as V2');

		const caller = await c.ua('caller');
		const r = await message(caller, c.edge(2), reg.user, 'ws.test', { body: 'to the phone' });
		assert.equal(r.status, 200, `MESSAGE to a UDP binding stored as V2 got ${r.status} ${r.reason}`);
		await phone.waitRequest((m) => m.method === 'MESSAGE' && m.body.toString() === 'to the phone',
			5000, 'MESSAGE to the UDP phone');
		/* The same serial is open on the same edge, yet a binding without
		 * an incarnation reaches nobody. */
		const lost = await send(caller, ws, 'to the old flow');
		assert.equal(lost.status, 430, `MESSAGE to a flow stored as V2 got ${lost.status} ${lost.reason}`);
		assert.deepEqual(delivered([ws], 'to the old flow'), []);
		assert.equal((await send(caller, ws, 'again')).status, 480);
		/* The client's next REGISTER (a refresh on the same connection). */
		await ws.register(300);
		assert.equal((await send(caller, ws, 'registered again')).status, 200);
		await ws.waitMessage('registered again');
	});

	/* Over a connection nothing is retransmitted: a core's answer that
	 * cannot reach the restarted edge yet is an answer lost for good. */
	wsTest('a WebSocket user who registers the moment a restarted edge listens gets its 200', async () => {
		for (let round = 0; round < 5; round++) {
			await c.stopEdge(1, 'SIGKILL');
			await c.startEdge(1, { wait: false });
			const u = await WsUA.open({ url: c.wsUrl(1) });
			try {
				const name = `quick-${round}-${rand(3)}`;
				const r = await u.send({
					method: 'REGISTER', ruri: 'sip:a.test', from: `sip:${name}@a.test`,
					to: `sip:${name}@a.test`, user: name, expires: 300,
					contact: `<sip:${name}@${rand(6)}.invalid;transport=ws>`,
				}, 3000).catch((err) => ({ status: 0, reason: err.message }));
				assert.equal(r.status, 200, `round ${round}: REGISTER right after the restart got ` +
					`${r.status} ${r.reason}\n${u.transcript.join('\n')}`);
			} finally {
				u.close();
			}
		}
	});

	/* Killed, not restarted: nobody reports its connections closed, and
	 * the bindings still name them.  No edge can carry a request down
	 * such a flow, so the caller gets 430 at once (RFC 5626), not 408
	 * after timer F (64*T1 = 6.4 s here). */
	wsTest('edge killed and not back: a MESSAGE to its user fails with 430 at once', async () => {
		const caller = await c.ua('caller');
		const fred = await user(`fred-${rand(3)}`);
		assert.equal((await send(caller, fred, 'before')).status, 200);
		await fred.waitMessage('before');
		await c.stopEdge(1, 'SIGKILL');
		try {
			const t0 = Date.now();
			const r = await send(caller, fred, 'anyone?');
			const ms = Date.now() - t0;
			assert.equal(r.status, 430, `MESSAGE to ${fred.aor} after its edge died got ${r.status} ${r.reason} in ${ms} ms`);
			assert.ok(ms < 2000, `430 took ${ms} ms`);
		} finally {
			await c.startEdge(1);
		}
	});

	wsTest('SIGTERM: the edge reports its connections closed, their bindings go at once', async () => {
		const caller = await c.ua('caller');
		const dave = await user(`dave-${rand(3)}`);
		const erin = await user(`erin-${rand(3)}`);
		assert.equal((await send(caller, dave, 'before')).status, 200);
		await dave.waitMessage('before');

		await c.stopEdge(1, 'SIGTERM');
		try {
			for (const u of [dave, erin]) {
				const t0 = Date.now();
				const r = await send(caller, u, 'anyone?');
				const ms = Date.now() - t0;
				assert.equal(r.status, 480,
					`MESSAGE to ${u.aor} after its edge stopped got ${r.status} ${r.reason} in ${ms} ms`);
				assert.ok(ms < 3000, `480 took ${ms} ms`);
			}
		} finally {
			await c.startEdge(1);
		}
		const dave2 = await user(dave.user);
		assert.equal((await send(caller, dave2, 'back')).status, 200);
		await dave2.waitMessage('back');
	});
});
