'use strict';
/*
 * 47 auth open mode: an edge in open mode ([registrar] auth = no) whose
 * listen address is not loopback warns at start that anyone may
 * register any address; on loopback, or with auth on, it says nothing.
 * Nothing is ever bound off loopback here: the non-loopback address is
 * 192.0.2.1 (TEST-NET-1, on no interface), so the edge logs its warning
 * and then fails to bind; the loopback cases use a UDP port this test
 * holds, so they fail to bind too, after the point where the warning
 * would be.
 */
const assert = require('node:assert/strict');
const { describe, it } = require('node:test');
const { spawn } = require('node:child_process');
const dgram = require('node:dgram');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const WARN = /open mode: anyone who reaches it may register any address/;

/* Runs sipmesh-edge 1 with these [edge 1] and [registrar] keys until it
 * exits (it cannot bind); resolves with {code, out}. */
function runEdge(edgeKeys, registrar) {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'sm47o-'));
	const run = path.join(dir, 'run');
	fs.mkdirSync(run, { mode: 0o700 });
	const ini = (name, o) => `[${name}]\n${Object.entries(o).map(([k, v]) => `${k} = ${v}`).join('\n')}\n`;
	const conf = path.join(dir, 'sipmesh.conf');
	fs.writeFileSync(conf, ini('cluster', { run_dir: run, edges: 1, cores: 1 }) +
		ini('log', { level: 'info' }) + ini('registrar', registrar) +
		ini('edge 1', { tcp: '', tls: '', ws: '', wss: '', ...edgeKeys }));
	return new Promise((resolve, reject) => {
		const p = spawn(path.join(process.env.SIPMESH_BIN, 'sipmesh-edge'), ['-c', conf, '-i', '1'],
			{ stdio: ['ignore', 'pipe', 'pipe'] });
		let out = '';
		p.stdout.on('data', (d) => { out += d; });
		p.stderr.on('data', (d) => { out += d; });
		const to = setTimeout(() => { p.kill('SIGKILL'); reject(new Error(`edge did not exit:\n${out}`)); }, 10000);
		p.on('close', (code) => {
			clearTimeout(to);
			fs.rmSync(dir, { recursive: true, force: true });
			resolve({ code, out });
		});
	});
}

/* A UDP port on 127.0.0.1 held by this test while fn runs. */
async function withHeldPort(fn) {
	const s = dgram.createSocket('udp4');
	await new Promise((res) => s.bind(0, '127.0.0.1', res));
	try {
		return await fn(s.address().port);
	} finally {
		s.close();
	}
}

describe('47 auth open mode', () => {
	it('open mode on a non-loopback address: the edge warns at start', async () => {
		const r = await runEdge({ udp: '192.0.2.1:5060' }, { auth: 'no' });
		assert.match(r.out, WARN, r.out);
		assert.match(r.out, /192\.0\.2\.1:5060/);
	});

	it('open mode on loopback: no warning', async () => {
		const r = await withHeldPort((port) => runEdge({ udp: `127.0.0.1:${port}` }, { auth: 'no' }));
		assert.notEqual(r.code, 0, 'the held port made it fail to bind');
		assert.doesNotMatch(r.out, WARN, r.out);
	});

	it('auth on, non-loopback address: no warning', async () => {
		const r = await runEdge({ udp: '192.0.2.1:5060' }, { auth: 'yes' });
		assert.doesNotMatch(r.out, WARN, r.out);
	});
});
