'use strict';
/*
 * kamailio.js - a real Kamailio (Debian's package) as a foreign SIP
 * domain for the federation tests: started in the foreground on a free
 * loopback UDP port with a config from tests/integ/kamailio/, stopped by
 * its pid.  Kamailio resolves through glibc's resolver, which reads
 * nameservers from /etc/resolv.conf and takes no port: it runs in a
 * mount namespace of its own (unshare -m, made private) where
 * /etc/resolv.conf is a bind mount naming the test's dnsmasq, which
 * listens on port 53 of an address of its own under 127/8
 * (dnsAddress()).  Nothing outside that namespace sees the mount.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Proc, freePort, HOST } = require('./cluster');
const { udpBound } = require('./sipp');
const { waitUntil } = require('./wait');
const { PRIVATE_MOUNTS } = require('./netns');

const BIN = process.env.SIPMESH_KAMAILIO ||
	(fs.existsSync('/usr/sbin/kamailio') ? '/usr/sbin/kamailio' : 'kamailio');
const CONF_DIR = path.join(__dirname, '..', 'kamailio');

/* A loopback address for a port-53 dnsmasq, distinct per test process
 * so that test files running side by side do not share it. */
function dnsAddress() {
	const n = process.pid % 65000;
	return `127.82.${(n >> 8) & 255}.${(n & 255) || 1}`;
}

class Kamailio {
	/* conf: a file name in tests/integ/kamailio/; dns: the resolver's
	 * address (port 53). */
	constructor(conf, dns) {
		this.conf = path.join(CONF_DIR, conf);
		this.dns = dns;
		this.proc = null;
	}

	edge() {
		return { host: HOST, port: this.port, addr: `${HOST}:${this.port}` };
	}

	async start() {
		this.port = await freePort();
		this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smkam-'));
		const resolv = path.join(this.dir, 'resolv.conf');
		fs.writeFileSync(resolv, `nameserver ${this.dns}\noptions timeout:1 attempts:1\n`);
		const cmd = [BIN, '-f', this.conf, '-DD', '-E', '-m', '64', '-M', '8', '-n', '1',
			'-Y', this.dir, '-l', `udp:${HOST}:${this.port}`].join(' ');
		this.proc = new Proc(`kamailio ${path.basename(this.conf)} on ${HOST}:${this.port}`, 'unshare',
			['-m', '--propagation', 'unchanged', 'sh', '-c',
				`${PRIVATE_MOUNTS}mount --bind ${resolv} /etc/resolv.conf && exec ${cmd}`]);
		await waitUntil(() => udpBound(this.port) || !this.proc.alive, 10000, `${this.proc.name} to listen`);
		if (!this.proc.alive) throw new Error(`${this.proc.name} exited: ${this.proc.status}\n${this.proc.tail(0, 40)}`);
		return this;
	}

	/* Log lines since t (ms epoch). */
	tail(since = 0, n = 80) {
		return this.proc ? this.proc.tail(since, n) : '(not started)';
	}

	/* SIGTERM by pid; returns a problem string or null. */
	async stop() {
		const p = this.proc ? await this.proc.stop(5000) : null;
		if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
		return p;
	}
}

module.exports = { Kamailio, dnsAddress };
