'use strict';
/*
 * 36 tls reload: SIGHUP makes an edge take a renewed certificate
 * without a restart (what Kamailio's tls.reload does, and what its
 * operators report as unsafe under load).  TLS and WSS clients
 * connected before the reload stay up, register and receive through
 * it; handshakes started all through the reload succeed; new TLS and
 * WSS connections present the new certificate.  A broken pair (a
 * half-copied certificate, a key of another certificate) is refused
 * and the pair in use kept: the listener never loses its key.
 */
const assert = require('node:assert/strict');
const { execFileSync } = require('node:child_process');
const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const tls = require('node:tls');
const { describe } = require('node:test');
const { rand, waitUntil, HOST } = require('./lib/cluster');
const { streamCluster, StreamUA, WsUA } = require('./lib/ws');

/* The edge reads the pair from these two paths; each "certificate" is
 * made aside and copied over them the way an operator's renewal does
 * (a rename, so no reader sees half a file unless we want it to). */
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smi-reload-'));
process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
const CERT = path.join(dir, 'edge.pem');
const KEY = path.join(dir, 'edge.key');

function makePair(name) {
	const key = path.join(dir, `${name}.key`);
	const cert = path.join(dir, `${name}.pem`);
	execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt',
		'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert,
		'-days', '2', '-subj', `/CN=${name}`, '-addext', 'subjectAltName=IP:127.0.0.1'],
	{ stdio: 'ignore' });
	const pem = fs.readFileSync(cert);
	return { key: fs.readFileSync(key), cert: pem, fp: new crypto.X509Certificate(pem).fingerprint256 };
}

function install(file, data) {
	const tmp = `${file}.tmp`;
	fs.writeFileSync(tmp, data);
	fs.renameSync(tmp, file);
}

const A = makePair('cert-a');
const B = makePair('cert-b');
const C = makePair('cert-c');
install(CERT, A.cert);
install(KEY, A.key);

/* The fingerprint of the certificate a new TLS handshake on port sees. */
function peerFp(port) {
	return new Promise((res, rej) => {
		const s = tls.connect({ host: HOST, port, rejectUnauthorized: false }, () => {
			const fp = s.getPeerCertificate().fingerprint256;
			s.destroy();
			res(fp);
		});
		s.once('error', rej);
		s.setTimeout(3000, () => { s.destroy(); rej(new Error(`TLS handshake on ${port} timed out`)); });
	});
}

describe('36 tls reload', () => {
	const c = streamCluster({
		name: '36-tls-reload', edges: 1, cores: 1,
		edge: { tls_cert: CERT, tls_key: KEY },
	});
	const tlsPort = () => c.tlsDest().port;
	const wssPort = () => c.ports[1].wss;
	const edgeProc = () => c.edges[0].proc;

	/* SIGHUP, then the edge's summary line of that reload. */
	async function reload() {
		const p = edgeProc();
		const since = Date.now();
		process.kill(p.pid, 'SIGHUP');
		let line = null;
		await waitUntil(() => {
			line = p.lines.filter((x) => x.t >= since && /certificates reloaded/.test(x.s)).pop();
			return line;
		}, 5000, 'the edge\'s reload line');
		return line.s;
	}

	/* u's SIP transcript goes in the report of a failed test. */
	function watch(u, label) {
		c.addEvidence(`${u.transport} client ${label}`, { toString: () => u.transcript.join('\n') });
		return u;
	}

	async function register(u, user) {
		const r = await u.send({
			method: 'REGISTER', ruri: 'sip:a.test', from: `sip:${user}@a.test`, to: `sip:${user}@a.test`,
			user, expires: 300,
		});
		assert.equal(r.status, 200, `REGISTER ${user} over ${u.transport}`);
	}

	/* A MESSAGE from sender to user, answered 200 by rcpt. */
	async function message(sender, rcpt, user, body) {
		const out = sender.send({
			method: 'MESSAGE', ruri: `sip:${user}@a.test`, from: `sip:sender@a.test`,
			to: `sip:${user}@a.test`, body,
		});
		const m = await rcpt.waitRequest((x) => x.method === 'MESSAGE' && x.body.toString() === body, 5000,
			`MESSAGE to ${user}`);
		rcpt.reply(m, 200, 'OK');
		assert.equal((await out).status, 200, `MESSAGE to ${user}`);
	}

	c.test('clients stay up through a reload; handshakes during it all succeed; new ones see the new certificate', async () => {
		const users = { tls: `tls-${rand(4)}`, wss: `wss-${rand(4)}` };
		const t = watch(await StreamUA.open({ ...c.tlsDest(), secure: true }), 'before (TLS)');
		const w = watch(await WsUA.open({ url: c.wsUrl(1, true) }), 'before (WSS)');
		try {
			await register(t, users.tls);
			await register(w, users.wss);
			assert.equal(await peerFp(tlsPort()), A.fp, 'TLS presents the first certificate');
			assert.equal(await peerFp(wssPort()), A.fp, 'WSS presents the first certificate');

			/* Six handshakes at a time on both ports while the pair
			 * changes under them: none may fail. */
			let churn = true;
			const seen = { ok: 0, failed: [] };
			const loop = Promise.all([0, 1, 2, 3, 4, 5].map(async (k) => {
				for (let i = k; churn; i++) {
					const port = i % 2 ? wssPort() : tlsPort();
					try {
						await peerFp(port);
						seen.ok++;
					} catch (e) {
						seen.failed.push(`${port}: ${e.message}`);
					}
				}
			}));
			await new Promise((r) => setTimeout(r, 200));
			install(CERT, B.cert);
			install(KEY, B.key);
			assert.match(await reload(), /reloaded on 2 of 2 secure transports/);
			await new Promise((r) => setTimeout(r, 300));
			churn = false;
			await loop;
			assert.deepEqual(seen.failed, [], 'no handshake failed during the reload');
			assert.ok(seen.ok >= 10, `handshakes went on during the reload (${seen.ok})`);

			assert.equal(await peerFp(tlsPort()), B.fp, 'new TLS connections present the new certificate');
			assert.equal(await peerFp(wssPort()), B.fp, 'new WSS connections present the new certificate');

			/* The connections made before: still open, still
			 * registering, still reached. */
			assert.equal(t.closed, false, 'the TLS client is still connected');
			assert.equal(w.closed, false, 'the WSS client is still connected');
			await register(t, users.tls);
			await register(w, users.wss);
			const s = watch(await StreamUA.open({ ...c.tlsDest(), secure: true }), 'sender');
			try {
				await message(s, t, users.tls, 'to the TLS client after the reload');
				await message(s, w, users.wss, 'to the WSS client after the reload');
			} finally {
				s.close();
			}
			/* A WSS client made after the reload works end to end. */
			const w2 = await WsUA.open({ url: c.wsUrl(1, true) });
			try {
				await register(w2, `wss2-${rand(4)}`);
			} finally {
				w2.close();
			}
		} finally {
			t.close();
			w.close();
		}
	});

	c.test('a half-copied certificate or a key of another certificate is refused; the pair in use stays', async () => {
		const before = await peerFp(tlsPort());
		/* Half a PEM file, as a copy caught in the middle leaves it. */
		const cur = fs.readFileSync(CERT);
		install(CERT, cur.subarray(0, cur.length >> 1));
		assert.match(await reload(), /reloaded on 0 of 2 secure transports/);
		assert.ok(edgeProc().lines.some((x) => /keeps its certificate/.test(x.s)), 'the refusal is logged');
		assert.equal(await peerFp(tlsPort()), before, 'TLS keeps the pair in use');
		assert.equal(await peerFp(wssPort()), before, 'WSS keeps the pair in use');
		const w = await WsUA.open({ url: c.wsUrl(1, true) });
		try {
			await register(w, `kept-${rand(4)}`);
		} finally {
			w.close();
		}

		/* A whole certificate with the key of another one. */
		install(CERT, C.cert);
		assert.match(await reload(), /reloaded on 0 of 2 secure transports/);
		assert.equal(await peerFp(tlsPort()), before, 'TLS refuses a certificate without its key');
		assert.equal(await peerFp(wssPort()), before, 'WSS refuses a certificate without its key');

		/* The right key arrives: now it is taken. */
		install(KEY, C.key);
		assert.match(await reload(), /reloaded on 2 of 2 secure transports/);
		assert.equal(await peerFp(tlsPort()), C.fp);
		assert.equal(await peerFp(wssPort()), C.fp);
		assert.equal(edgeProc().code, undefined, 'the edge is still running');
		assert.equal(edgeProc().signal, undefined);
	});
});
