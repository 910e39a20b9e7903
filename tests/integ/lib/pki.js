'use strict';
/*
 * pki.js - a test CA made with openssl and the leaf certificates it
 * signs (or that sign themselves), in a temporary folder removed when
 * the test process exits.  EC P-256 keys: each takes milliseconds.
 * Each testCa() is a CA of its own, so a second one plays the CA a
 * peer does not trust.
 */
const { execFileSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

function testCa(subject = 'sipmesh test CA') {
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smi-pki-'));
	process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
	const f = (n) => path.join(dir, n);
	const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes'];
	const run = (args) => execFileSync('openssl', args, { stdio: 'ignore' });
	run(['req', '-x509', ...ec, '-keyout', f('ca.key'), '-out', f('ca.pem'), '-days', '2',
		'-subj', `/CN=${subject}`, '-addext', 'basicConstraints=critical,CA:TRUE',
		'-addext', 'keyUsage=critical,keyCertSign,cRLSign']);
	/*
	 * A leaf named `name` (its files' names) with subject CN cn and
	 * subjectAltName san ("DNS:x,IP:y,URI:sip:z", or null for none),
	 * signed by this CA unless selfSigned.  Returns { key, cert } as
	 * Buffers (Node's tls) and keyPath, certPath (an edge's config).
	 */
	const leaf = (name, cn, san, selfSigned = false) => {
		const key = f(`${name}.key`);
		const cert = f(`${name}.pem`);
		if (selfSigned) {
			run(['req', '-x509', ...ec, '-keyout', key, '-out', cert, '-days', '2',
				'-subj', `/CN=${cn}`, ...(san ? ['-addext', `subjectAltName=${san}`] : [])]);
		} else {
			run(['req', ...ec, '-keyout', key, '-out', f(`${name}.csr`), '-subj', `/CN=${cn}`]);
			fs.writeFileSync(f(`${name}.ext`), san ? `subjectAltName=${san}\n` : '\n');
			run(['x509', '-req', '-in', f(`${name}.csr`), '-CA', f('ca.pem'), '-CAkey', f('ca.key'),
				'-CAcreateserial', '-out', cert, '-days', '2', '-extfile', f(`${name}.ext`)]);
		}
		return { key: fs.readFileSync(key), cert: fs.readFileSync(cert), keyPath: key, certPath: cert };
	};
	return { ca: f('ca.pem'), leaf };
}

module.exports = { testCa };
