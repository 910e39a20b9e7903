'use strict';
/*
 * ports.js - loopback ports for test processes that run side by side.
 *
 * Asking the kernel for a free port (bind to 0, close, hand it out) is
 * a race once several test files run at once: between the probe and
 * the edge's or sipp's bind, any other process's bind(0) may get the
 * same port (seen: sipp failing with EADDRINUSE on its media port).
 * So ports come from below the ephemeral range, where no bind(0) ever
 * lands, in blocks of UNIT ports that a process claims with a lock file
 * (created with O_EXCL, holding its pid) in LOCK_DIR: a block is one
 * process's alone.  Within its blocks a process hands out each port
 * once, after checking that UDP and TCP are free on it.  rtpengine media
 * ranges are claimed the same way (several blocks in a row).  A lock
 * whose pid is dead is stale and taken over; a process removes its
 * locks when it exits.  Blocks some other program uses (a bound UDP
 * port, a running rtpengine's --port-min..max) are skipped.
 *
 * Cost: a claim reads /proc/net/udp and every process's cmdline once
 * per block tried; a port is one UDP and one TCP bind.
 */
const dgram = require('node:dgram');
const fs = require('node:fs');
const net = require('node:net');
const os = require('node:os');
const path = require('node:path');

const HOST = '127.0.0.1';
const UNIT = 100;
const LOCK_DIR = path.join(os.tmpdir(), 'sipmesh-test-ports');

const held = new Set();		/* first ports of the blocks we hold */
const handedOut = new Set();
let pool = null;		/* {next, max}: the block freePort takes from */

process.on('exit', () => {
	for (const u of held) {
		try { fs.unlinkSync(lockPath(u)); } catch { /* gone */ }
	}
});

function lockPath(u) {
	return path.join(LOCK_DIR, String(u));
}

/* Ports lo..hi that blocks may use: 10000 up to the ephemeral range. */
function span() {
	let ephemeralLo = 32768;
	try {
		ephemeralLo = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'latin1')
			.trim().split(/\s+/)[0]) || 32768;
	} catch { /* default */ }
	return { lo: 10000, hi: Math.min(ephemeralLo, 32768) - 1 };
}

function bindUdp(port) {
	return new Promise((resolve) => {
		const s = dgram.createSocket('udp4');
		s.once('error', () => { s.close(); resolve(null); });
		s.bind(port, HOST, () => resolve(s));
	});
}

function bindTcp(port) {
	return new Promise((resolve) => {
		const s = net.createServer();
		s.once('error', () => resolve(null));
		s.listen(port, HOST, () => resolve(s));
	});
}

/* Whether something has bound UDP port on 127.0.0.1. */
async function udpPortBusy(port) {
	const s = await bindUdp(port);
	if (!s) return true;
	await new Promise((r) => s.close(r));
	return false;
}

/* Whether any UDP socket on this host is bound in lo..hi (read-only). */
function udpRangeBusy(lo, hi) {
	for (const f of ['/proc/net/udp', '/proc/net/udp6']) {
		let text = '';
		try { text = fs.readFileSync(f, 'latin1'); } catch { continue; }
		for (const l of text.split('\n').slice(1)) {
			const local = l.trim().split(/\s+/)[1];
			if (!local) continue;
			const port = parseInt(local.split(':').pop(), 16);
			if (port >= lo && port <= hi) return true;
		}
	}
	return false;
}

/*
 * The media port ranges of the rtpengines running on this host (any
 * owner: other test runs, make bench), from their command lines.
 * rtpengine binds its ports only when calls come, so /proc/net/udp
 * does not show them.
 */
function rtpengineRanges() {
	const out = [];
	let pids = [];
	try { pids = fs.readdirSync('/proc').filter((d) => /^\d+$/.test(d)); } catch { return out; }
	for (const pid of pids) {
		let argv;
		try { argv = fs.readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0'); } catch { continue; }
		if (!/(^|\/)rtpengine$/.test(argv[0] || '')) continue;
		const opt = (name) => {
			for (let i = 0; i < argv.length; i++) {
				if (argv[i].startsWith(`--${name}=`)) return Number(argv[i].slice(name.length + 3));
				if (argv[i] === `--${name}`) return Number(argv[i + 1]);
			}
			return undefined;
		};
		out.push({ min: opt('port-min') || 30000, max: opt('port-max') || 40000 });
	}
	return out;
}

/* Whether the process that wrote lock file f still runs. */
function holderAlive(f) {
	let pid;
	try { pid = Number(fs.readFileSync(f, 'latin1')); } catch { return false; }
	/* Empty: its owner is between creating and writing it. */
	if (!pid) return true;
	try {
		process.kill(pid, 0);
		return true;
	} catch (e) {
		return e.code === 'EPERM';
	}
}

/* Takes the lock of the block at u; false if another live process holds it. */
function lockBlock(u) {
	for (let k = 0; k < 2; k++) {
		try {
			fs.writeFileSync(lockPath(u), String(process.pid), { flag: 'wx' });
			held.add(u);
			return true;
		} catch (e) {
			if (e.code !== 'EEXIST') throw e;
		}
		if (holderAlive(lockPath(u))) return false;
		try { fs.unlinkSync(lockPath(u)); } catch { /* someone else took it over */ }
	}
	return false;
}

function unlockBlock(u) {
	held.delete(u);
	try { fs.unlinkSync(lockPath(u)); } catch { /* gone */ }
}

/*
 * Claims n blocks in a row that no other process holds or uses;
 * returns the first port.  The search starts at a place that depends
 * on the pid, so that processes starting together rarely try the same
 * blocks.
 */
function claimBlocks(n) {
	fs.mkdirSync(LOCK_DIR, { recursive: true, mode: 0o1777 });
	const { lo, hi } = span();
	const slots = Math.floor((hi - lo + 1) / UNIT);
	const others = rtpengineRanges();
	const start = (process.pid * 7) % slots;
	for (let k = 0; k < slots; k++) {
		const first = (start + k) % slots;
		if (first + n > slots) continue;
		const min = lo + first * UNIT, max = min + n * UNIT - 1;
		if (others.some((r) => r.min <= max && r.max >= min)) continue;
		if (udpRangeBusy(min, max)) continue;
		const got = [];
		for (let j = 0; j < n; j++) {
			const u = min + j * UNIT;
			if (held.has(u) || !lockBlock(u)) break;
			got.push(u);
		}
		if (got.length === n) return min;
		for (const u of got) unlockBlock(u);
	}
	throw new Error(`ports: no ${n} free blocks of ${UNIT} ports in ${lo}-${hi} (locks in ${LOCK_DIR})`);
}

/*
 * A loopback port free for UDP and TCP right now (the edge may listen
 * on both), never handed out twice, from a block this process holds.
 * pair: port+2 free too (sipp's media echo sockets).
 */
async function freePort({ pair = false } = {}) {
	for (let i = 0; i < 1000; i++) {
		if (!pool || pool.next + (pair ? 2 : 0) > pool.max) {
			const min = claimBlocks(1);
			pool = { next: min, max: min + UNIT - 1 };
		}
		const port = pool.next++;
		if (handedOut.has(port) || (pair && handedOut.has(port + 2))) continue;
		const socks = [await bindUdp(port), await bindTcp(port)];
		if (pair) socks.push(await bindUdp(port + 2));
		const ok = socks.every(Boolean);
		for (const s of socks) if (s) s.close();
		if (ok) {
			handedOut.add(port);
			if (pair) handedOut.add(port + 2);
			return port;
		}
	}
	throw new Error('freePort: no free loopback port found');
}

/*
 * count disjoint ranges of size ports each (rtpengine media ports),
 * each in blocks this process holds.
 */
function freePortRanges(count, size) {
	const out = [];
	for (let i = 0; i < count; i++) {
		const min = claimBlocks(Math.ceil(size / UNIT));
		out.push({ min, max: min + size - 1 });
	}
	return out;
}

module.exports = { freePort, freePortRanges, udpPortBusy, HOST };
