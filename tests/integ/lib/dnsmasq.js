'use strict';
/*
 * dnsmasq.js - a real dnsmasq (Debian's dnsmasq-base) serving the
 * records a test gives on a loopback port, UDP and TCP, every query
 * logged; names under .test without a record get NXDOMAIN
 * (local=/test/).  The same options as tests/unit/dns_test.h.
 */
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Proc, freePort, HOST } = require('./cluster');
const { waitUntil } = require('./wait');

const BIN = process.env.SIPMESH_DNSMASQ ||
	(fs.existsSync('/usr/sbin/dnsmasq') ? '/usr/sbin/dnsmasq' : 'dnsmasq');

class Dnsmasq {
	/* port: given beforehand (the clusters' [federation] dns_servers
	 * name it before the records are known), else a free one.  host:
	 * the listening address (default HOST); a resolver that takes no
	 * port (glibc's, Kamailio's) needs port 53 on an address of its own. */
	constructor(port, host = HOST) {
		this.port = port;
		this.host = host;
		this.proc = null;
	}

	get addr() {
		return `${this.host}:${this.port}`;
	}

	/* Starts dnsmasq with lines ("srv-host=...", "host-record=...") and
	 * waits until it says it started. */
	async start(lines) {
		if (!this.port) this.port = await freePort();
		this.dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smdns-'));
		const conf = path.join(this.dir, 'dnsmasq.conf');
		fs.writeFileSync(conf, [
			`port=${this.port}`, `listen-address=${this.host}`, 'bind-interfaces',
			'no-resolv', 'no-hosts', 'local=/test/', 'local-ttl=60',
			'log-queries', 'log-facility=-', ...lines, '',
		].join('\n'));
		this.proc = new Proc('dnsmasq', BIN, ['--keep-in-foreground', '--pid-file=', '--user=root', `--conf-file=${conf}`]);
		await waitUntil(() => this.proc.lines.some((l) => /started/.test(l.s)) || !this.proc.alive, 5000,
			`dnsmasq on ${this.addr} to start`);
		if (!this.proc.alive) throw new Error(`dnsmasq exited: ${this.proc.tail(0, 20)}`);
		return this;
	}

	/* Queries of type (SRV, A, NAPTR) for name logged so far. */
	queries(type, name) {
		const want = `query[${type}] ${name} from`;
		return this.proc.lines.filter((l) => l.s.includes(want)).length;
	}

	async stop() {
		if (this.proc && this.proc.alive) await this.proc.stop(2000);
		if (this.dir) fs.rmSync(this.dir, { recursive: true, force: true });
	}
}

module.exports = { Dnsmasq };
