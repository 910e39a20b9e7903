'use strict';
/*
 * procnet.js - which process holds which socket, read from the kernel
 * (/proc/net/{tcp,udp} and /proc/<pid>/fd), for tests of several
 * edges sharing ports (SO_REUSEPORT): the listening sockets an edge
 * holds, and the edge holding the server end of a client's connection.
 * IPv4 only, this network namespace.
 */
const fs = require('node:fs');

/* "0100007F:1F90" -> "127.0.0.1:8080" */
function hexAddr(s) {
	const [a, p] = s.split(':');
	const n = parseInt(a, 16);
	return `${n & 255}.${(n >>> 8) & 255}.${(n >>> 16) & 255}.${n >>> 24}:${parseInt(p, 16)}`;
}

/* The sockets of one protocol ('tcp', 'udp'): [{local, remote, listen, inode}]. */
function sockets(proto) {
	return fs.readFileSync(`/proc/net/${proto}`, 'latin1').split('\n').slice(1)
		.map((l) => l.trim().split(/\s+/)).filter((f) => f.length >= 10)
		.map((f) => ({ local: hexAddr(f[1]), remote: hexAddr(f[2]), listen: f[3] === '0A', inode: f[9] }));
}

/* The socket inodes process pid holds open (empty once it is gone). */
function inodesOf(pid) {
	const out = new Set();
	let fds = [];
	try { fds = fs.readdirSync(`/proc/${pid}/fd`); } catch { return out; }
	for (const fd of fds) {
		try {
			const m = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
			if (m) out.add(m[1]);
		} catch { /* closed meanwhile */ }
	}
	return out;
}

/* The ports pid listens on (TCP) or is bound to (UDP): ["tcp 5060", "udp 5060", ...], sorted. */
function listening(pid) {
	const mine = inodesOf(pid);
	const out = [];
	for (const proto of ['udp', 'tcp']) {
		for (const s of sockets(proto)) {
			if (!mine.has(s.inode) || (proto === 'tcp' && !s.listen)) continue;
			out.push(`${proto} ${s.local.split(':')[1]}`);
		}
	}
	return out.sort();
}

/*
 * Of procs ({key: pid}), the key whose process holds the server end of
 * the TCP connection from `from` ("ip:port") to `to` ("ip:port"); null
 * when none does.
 */
function holder(procs, to, from) {
	const s = sockets('tcp').find((x) => x.local === to && x.remote === from && !x.listen);
	if (!s) return null;
	for (const [key, pid] of Object.entries(procs))
		if (inodesOf(pid).has(s.inode)) return key;
	return null;
}

module.exports = { sockets, inodesOf, listening, holder };
