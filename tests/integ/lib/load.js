'use strict';
/*
 * load.js - what the fault tests (70, 71, 72) share: a steady REGISTER +
 * MESSAGE load through an edge, registering many AORs, checking that
 * each is reachable and has its binding in the cluster's Redis, and
 * the "fault: ..." diagnostic line with the figures.
 */
const { rand, waitUntil, redisCommand } = require('./cluster');
const { Registration, message } = require('./flows');

/* Resolves after ms: the length of a fault, not a wait for an event. */
const hold = (ms) => new Promise((r) => setTimeout(r, ms));

/*
 * A steady load through edge: every 10 ms one REGISTER refresh (round
 * robin over regs, so one AOR never has two in flight) or one MESSAGE
 * to a random AOR of regs, at most 16 in flight.  stop() resolves with
 * {sent, failed, failures}.
 */
function startLoad(sender, edge, regs) {
	const st = { sent: 0, failed: 0, failures: [], inflight: 0, i: 0 };
	let busy = new Set();
	const one = async () => {
		const reg = regs[st.i++ % regs.length];
		const isReg = st.i % 2 === 0 && !busy.has(reg);
		st.sent++;
		st.inflight++;
		try {
			let r;
			if (isReg) {
				busy.add(reg);
				r = await reg.send({ expires: 600 }).finally(() => busy.delete(reg));
			} else {
				const to = regs[Math.floor(Math.random() * regs.length)];
				r = await message(sender, edge, to.user);
			}
			if (r.status !== 200) {
				st.failed++;
				st.failures.push(`${isReg ? 'REGISTER' : 'MESSAGE'} ${r.status} ${r.reason}`);
			}
		} catch (e) {
			st.failed++;
			st.failures.push(`${isReg ? 'REGISTER' : 'MESSAGE'}: ${e.message.split('\n')[0]}`);
		} finally {
			st.inflight--;
		}
	};
	/* unref: a test that fails before stop() must not keep node alive */
	const timer = setInterval(() => { if (st.inflight < 16) one(); }, 10).unref();
	let result;
	const load = {
		st,
		async stop() {
			clearInterval(timer);
			if (!result) {
				await waitUntil(() => st.inflight === 0, 10000, 'the load to drain');
				busy = new Set();
				result = { sent: st.sent, failed: st.failed, failures: st.failures.slice(0, 10) };
			}
			return result;
		},
	};
	loads.push(load);
	return load;
}

/* Loads still running when a test ends (it failed): stopLoads() in
 * its afterEach stops them. */
const loads = [];

async function stopLoads() {
	for (const l of loads.splice(0)) await l.stop().catch(() => {});
}

/* The Redis hash field of a plain contact (loc_binding_field). */
const field = (reg) => `c:${reg.contact}`;
const key = (c, reg) => `${c.prefix}:aor:${reg.user}@${reg.domain}`;

/* The names of c's running Redis shards whose Redis holds reg's binding
 * (asked directly, each one). */
async function holders(c, reg) {
	const names = [];
	for (const s of c.shards()) {
		if (s.proc === null) continue;	/* stopped by the test */
		if (Number(await redisCommand(s.port, 'HEXISTS', key(c, reg), field(reg))) === 1)
			names.push(s.name);
	}
	return names;
}

/* How many of regs have their binding in Redis. */
async function inRedis(c, regs) {
	let n = 0;
	for (const reg of regs)
		n += Number(await c.redisCmd('HEXISTS', key(c, reg), field(reg))) === 1;
	return n;
}

/* Registers n fresh AORs of one UA through edge. */
async function registerMany(c, ua, edge, prefix, n) {
	const regs = [];
	for (let i = 0; i < n; i++) {
		const reg = new Registration(ua, edge, `${prefix}${i}-${rand(3)}`);
		await reg.register(600);
		regs.push(reg);
	}
	return regs;
}

/* Every AOR of regs answers a MESSAGE through edge: returns how many do not. */
async function unreachable(sender, edge, regs) {
	let bad = 0;
	for (const reg of regs) {
		const r = await message(sender, edge, reg.user).catch(() => ({ status: 0 }));
		bad += r.status !== 200;
	}
	return bad;
}

function report(t, fault, fig) {
	t.diagnostic(`fault: ${fault} | requests ${fig.sent} | failed ${fig.failed} | ` +
		`bindings lost ${fig.lost} | recovery ${fig.recovery.toFixed(2)} s` +
		(fig.extra ? ` | ${fig.extra}` : ''));
}

module.exports = {
	hold, startLoad, stopLoads, field, key, holders, inRedis, registerMany, unreachable, report,
};
