'use strict';
/*
 * digest.js - the client side of SIP digest authentication (RFC 3261
 * 22, RFC 7616, RFC 8760) computed here with node:crypto, so the tests
 * check the cluster's challenges against an independent implementation:
 * parsing WWW-Authenticate / Proxy-Authenticate, the qop=auth response
 * for MD5 and SHA-256, and a helper that answers a challenge the way a
 * UA does (same Call-ID, CSeq + 1).  sipmesh-ctl writes the accounts.
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { execFile } = require('node:child_process');
const path = require('node:path');

const HASH = { MD5: 'md5', 'SHA-256': 'sha256' };

function h(alg, s) {
	return crypto.createHash(HASH[alg]).update(s, 'latin1').digest('hex');
}

/* Parses 'Digest k=v, k="v"' into {scheme, realm, nonce, algorithm, qop, stale, ...}. */
function parseChallenge(v) {
	const m = /^\s*(\S+)\s+(.*)$/.exec(v);
	assert.ok(m, `not a challenge: ${v}`);
	const out = { scheme: m[1] };
	const re = /([A-Za-z0-9_-]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^,\s]+))/g;
	let p;
	while ((p = re.exec(m[2])) !== null) out[p[1].toLowerCase()] = p[2] !== undefined ? p[2] : p[3];
	return out;
}

/* The challenges of a 401/407 in order, parsed. */
function challenges(res) {
	const name = res.status === 407 ? 'proxy-authenticate' : 'www-authenticate';
	return res.all(name).map(parseChallenge);
}

/*
 * The Authorization value answering challenge ch ({realm, nonce,
 * algorithm}) for method and uri with user/pass.  o: {nc (1), cnonce,
 * response (to send a wrong one), ha1 (instead of the password)}.
 */
function authorization(ch, method, uri, user, pass, o = {}) {
	const alg = ch.algorithm || 'MD5';
	const nc = (o.nc || 1).toString(16).padStart(8, '0');
	const cnonce = o.cnonce || crypto.randomBytes(8).toString('hex');
	const ha1 = o.ha1 || h(alg, `${user}:${ch.realm}:${pass}`);
	const ha2 = h(alg, `${method}:${uri}`);
	const response = o.response || h(alg, `${ha1}:${ch.nonce}:${nc}:${cnonce}:auth:${ha2}`);
	return `Digest username="${user}", realm="${ch.realm}", nonce="${ch.nonce}", uri="${uri}", ` +
		`response="${response}", algorithm=${alg}, cnonce="${cnonce}", nc=${nc}, qop=auth`;
}

/*
 * Sends a request with send(extraHeaders, cseqBump) -> Promise<response>;
 * on 401/407 answers the challenge of algorithm alg (SHA-256 or MD5)
 * once with user/pass.  Returns {res (the final response), first (the
 * challenge response), auth (the header value sent)}.
 */
async function withAuth(send, method, uri, user, pass, alg = 'SHA-256') {
	const first = await send([], 0);
	if (first.status !== 401 && first.status !== 407) return { res: first, first };
	const ch = challenges(first).find((c) => (c.algorithm || 'MD5') === alg);
	assert.ok(ch, `no ${alg} challenge in ${first.status}: ${JSON.stringify(challenges(first))}`);
	const name = first.status === 401 ? 'Authorization' : 'Proxy-Authorization';
	const auth = authorization(ch, method, uri, user, pass);
	const res = await send([[name, auth]], 1);
	return { res, first, auth, ch, name };
}

/* Creates or replaces user@domain with sipmesh-ctl (password on stdin). */
function addUser(c, user, domain, pass) {
	const bin = path.join(process.env.SIPMESH_BIN, 'sipmesh-ctl');
	return new Promise((resolve, reject) => {
		const p = execFile(bin, ['-c', c.confPath, 'user', 'add', `${user}@${domain}`],
			{ timeout: 10000 }, (err, stdout, stderr) => {
				if (err) reject(new Error(`sipmesh-ctl user add ${user}@${domain}: ${err.message}\n${stderr}`));
				else resolve(stdout);
			});
		p.stdin.end(`${pass}\n`);
	});
}

module.exports = { parseChallenge, challenges, authorization, withAuth, addUser, h };
