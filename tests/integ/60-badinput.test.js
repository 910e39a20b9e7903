'use strict';
/*
 * 60 bad input: malformed datagrams of every kind must leave every
 * process running and every binding in place.  After each batch the
 * test probes with OPTIONS under several Call-IDs (so both cores are
 * reached; the edge handles datagrams from one socket in order, so the
 * bad ones were handled first) and checks no process exited; at the
 * end a binding made before the abuse is still there and a REGISTER
 * still gets 200.  Where the transport allows an answer (a request with
 * a usable Via), a few cases must get a clear 400.
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const { describe } = require('node:test');
const { cluster, rand } = require('./lib/cluster');
const { Registration, message } = require('./lib/flows');
const { newBranch } = require('./lib/sip');

/* UDP payload limit over IPv4: 65535 - 20 (IP) - 8 (UDP). */
const UDP_MAX = 65507;

describe('60 bad input', () => {
	const c = cluster({ name: '60-badinput', edges: 1, cores: 2 });
	let keeper;		/* a binding made before the abuse */

	async function probe(ua) {
		const e = c.edge();
		const rs = await Promise.all(Array.from({ length: 6 }, () => ua.send(e, {
			method: 'OPTIONS', ruri: `sip:${e.addr}`, from: 'sip:probe@a.test', to: `sip:${e.addr}`,
		}, 4000)));
		assert.deepEqual(rs.map((r) => r.status).filter((s) => s !== 200), [], 'OPTIONS probes after bad input');
		c.assertAlive();
	}

	/* A well-formed request head from ua, as text, for mangling. */
	function head(ua, method = 'MESSAGE', extra = '') {
		return `${method} sip:victim@a.test SIP/2.0\r\n` +
			`Via: SIP/2.0/UDP ${ua.addr};branch=${newBranch()};rport\r\n` +
			'Max-Forwards: 70\r\nFrom: <sip:bad@a.test>;tag=1\r\nTo: <sip:victim@a.test>\r\n' +
			`Call-ID: ${rand(8)}@bad\r\nCSeq: 1 ${method}\r\n${extra}`;
	}

	/* Sends each datagram, then probes. */
	async function blast(name, datagrams) {
		const ua = await c.ua(name);
		for (const d of datagrams)
			await ua.sendRaw(c.edge(), Buffer.isBuffer(d) ? d : Buffer.from(d, 'latin1'));
		await probe(ua);
		return ua;
	}

	c.test('a binding registered before the abuse', async () => {
		const ua = await c.ua('keeper', { keep: true });
		keeper = new Registration(ua, c.edge(), `keeper-${rand(3)}`);
		await keeper.register(3600);
	});

	c.test('garbage: random bytes, empty datagram, CRLFs, a lone start line, binary zeros', async () => {
		await blast('garbage', [
			crypto.randomBytes(1000), Buffer.alloc(0), '\r\n\r\n', '\r\n', 'x',
			'INVITE sip:victim@a.test SIP/2.0', 'SIP/2.0 200 OK', Buffer.alloc(4096),
			'GET / HTTP/1.1\r\nHost: x\r\n\r\n', '\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03',
			crypto.randomBytes(60000),
		]);
	});

	c.test('truncated headers: a datagram cut in the middle of a header, no blank line', async () => {
		const ua = await c.ua('trunc-src');
		const full = head(ua) + 'Content-Type: text/plain\r\nContent-Length: 5\r\n\r\nhello';
		const cuts = [10, 40, 60, 80, 100, 120, 140, full.indexOf('\r\n\r\n'), full.indexOf('\r\n\r\n') + 2];
		await blast('trunc', cuts.map((n) => full.slice(0, n)));
	});

	c.test('malformed headers: no colon, empty names, bad Via, absurd URIs, 1200 Vias, a 60 kB header', async () => {
		const ua = await c.ua('mal-src');
		await blast('malformed', [
			head(ua) + 'ThisIsNotAHeader\r\nContent-Length: 0\r\n\r\n',
			head(ua) + ': novalue\r\nContent-Length: 0\r\n\r\n',
			'MESSAGE sip:victim@a.test SIP/2.0\r\nVia: SIP/2.0/UDP [::1:;branch=\r\nCall-ID: a\r\nCSeq: 1 MESSAGE\r\nFrom: <sip:a@a>;tag=1\r\nTo: <sip:b@a>\r\nContent-Length: 0\r\n\r\n',
			'MESSAGE sip:victim@a.test SIP/2.0\r\nVia: garbage\r\nCall-ID: a\r\nCSeq: 1 MESSAGE\r\nFrom: <sip:a@a>;tag=1\r\nTo: <sip:b@a>\r\nContent-Length: 0\r\n\r\n',
			head(ua).replace('sip:victim@a.test', 'sip:@:99999999') + 'Content-Length: 0\r\n\r\n',
			head(ua).replace('sip:victim@a.test', 'sip:' + 'a'.repeat(5000) + '@' + 'b'.repeat(5000)) + 'Content-Length: 0\r\n\r\n',
			head(ua).replace('sip:victim@a.test', '<<<>>>') + 'Content-Length: 0\r\n\r\n',
			head(ua).replace('SIP/2.0\r\n', 'SIP/3.0\r\n') + 'Content-Length: 0\r\n\r\n',
			head(ua, 'FOO') + 'Content-Length: 0\r\n\r\n',
			head(ua) + 'Via: SIP/2.0/UDP 127.0.0.1:1;branch=z9hG4bKx\r\n'.repeat(1200) + 'Content-Length: 0\r\n\r\n',
			head(ua) + `X-Long: ${'y'.repeat(60000)}\r\nContent-Length: 0\r\n\r\n`,
			head(ua) + 'From: <sip:second@a.test>;tag=2\r\nCall-ID: second\r\nContent-Length: 0\r\n\r\n',
			head(ua) + 'Content-Length: 0\r\nContent-Length: 10\r\n\r\n0123456789',
			head(ua) + 'Contact: ' + '<sip:x@127.0.0.1:1>,'.repeat(1000) + '<sip:y@127.0.0.1:1>\r\nContent-Length: 0\r\n\r\n',
			head(ua) + 'Max-Forwards: 99999999999999999999\r\nContent-Length: 0\r\n\r\n',
			'  \r\n' + head(ua) + 'Content-Length: 0\r\n\r\n',
		]);
	});

	c.test('bad Content-Length: huge, negative, overflowing, not a number', async () => {
		const ua = await c.ua('cl-src');
		await blast('cl', [
			head(ua) + 'Content-Length: 99999999\r\n\r\nshort',
			head(ua) + 'Content-Length: -5\r\n\r\nshort',
			head(ua) + 'Content-Length: 18446744073709551621\r\n\r\nshort',
			head(ua) + 'Content-Length: 2147483648\r\n\r\nshort',
			head(ua) + 'Content-Length: five\r\n\r\nshort',
			head(ua) + 'Content-Length: 5 5\r\n\r\nshort',
		]);
	});

	c.test('a request whose Content-Length is larger than the datagram gets 400 (RFC 3261 18.3)', async () => {
		const ua = await c.ua('cl400');
		const r = await ua.send(c.edge(), {
			method: 'MESSAGE', ruri: 'sip:victim@a.test', to: 'sip:victim@a.test', from: 'sip:cl400@a.test',
			body: 'short', replace: { 'content-length': '99999999' },
		}, 3000);
		assert.equal(r.status, 400, `Content-Length 99999999 with a 5-byte body got ${r.status} ${r.reason}`);
	});

	c.test('a request only a full parse refuses gets 400 "Unparsable message" from its core, not silence', async () => {
		/* The edge's scan passes it (every header is there); libosip2,
		 * which runs in the cores only, refuses the unclosed From and
		 * the core hands it back to the edge for the 400. */
		const ua = await c.ua('osip400');
		for (const from of ['<sip:osip400@a.test;tag=1', '"unclosed <sip:osip400@a.test>;tag=1']) {
			const r = await ua.send(c.edge(), {
				method: 'MESSAGE', ruri: 'sip:victim@a.test', to: 'sip:victim@a.test', from: 'sip:osip400@a.test',
				body: 'x', replace: { from },
			}, 3000);
			assert.equal(r.status, 400, `From: ${from} got ${r.status} ${r.reason}`);
			assert.match(r.get('warning') || '', /Unparsable message/);
		}
	});

	c.test('NUL bytes in the start line, in header names and values, and in the body', async () => {
		const ua = await c.ua('nul-src');
		const h = head(ua);
		await blast('nul', [
			'MESSAGE sip:vic\0tim@a.test SIP/2.0\r\n' + h.slice(h.indexOf('\r\n') + 2) + 'Content-Length: 0\r\n\r\n',
			h.replace('Call-ID:', 'Call\0-ID:') + 'Content-Length: 0\r\n\r\n',
			h.replace(/Call-ID: ([^\r]*)/, 'Call-ID: $1\0tail') + 'Content-Length: 0\r\n\r\n',
			h.replace('From: <sip:bad@a.test>', 'From: "\0\0\0" <sip:bad@a.test>') + 'Content-Length: 0\r\n\r\n',
			h + 'Content-Type: text/plain\r\nContent-Length: 6\r\n\r\nab\0\0cd',
			'\0' + h + 'Content-Length: 0\r\n\r\n',
		]);
	});

	c.test('non-UTF-8 bytes in the method, URI, display name, header values and body', async () => {
		const ua = await c.ua('utf-src');
		const bin = (s) => Buffer.from(s, 'latin1');
		const h = head(ua);
		await blast('utf', [
			Buffer.concat([bin('ME\xffSAGE'), bin(h.slice(7)), bin('Content-Length: 0\r\n\r\n')]),
			bin(h.replace('sip:victim@a.test SIP', 'sip:vi\xc0\xafctim@a.test SIP') + 'Content-Length: 0\r\n\r\n'),
			bin(h.replace('From: <sip:bad@a.test>', 'From: "\xfe\xff\xed\xa0\x80" <sip:bad@a.test>') + 'Content-Length: 0\r\n\r\n'),
			bin(h + 'Subject: \xf8\x88\x80\x80\x80\r\nContent-Length: 4\r\n\r\n\xff\xfe\xfd\xfc'),
			bin(h.replace(/To: <sip:victim@a.test>/, 'To: <sip:\xe9l\xe8ve@a.test>') + 'Content-Length: 0\r\n\r\n'),
		]);
	});

	c.test(`the largest UDP datagram (${UDP_MAX} bytes), and 70,000 bytes (which UDP cannot carry)`, async () => {
		const ua = await c.ua('big');
		const h = head(ua) + 'Content-Type: text/plain\r\n';
		const fill = (total) => {
			const probeLen = Buffer.byteLength(h + 'Content-Length: 00000\r\n\r\n');
			const n = total - probeLen;
			return h + `Content-Length: ${String(n).padStart(5, '0')}\r\n\r\n` + 'z'.repeat(n);
		};
		const big = Buffer.from(fill(UDP_MAX), 'latin1');
		assert.equal(big.length, UDP_MAX);
		await ua.sendRaw(c.edge(), big);
		await ua.sendRaw(c.edge(), crypto.randomBytes(UDP_MAX));
		/* Over IPv4 the kernel refuses a 70,000-byte datagram (EMSGSIZE):
		 * it can never reach the edge, so say so rather than pretend. */
		const huge = Buffer.from(fill(70000), 'latin1');
		await assert.rejects(ua.sendRaw(c.edge(), huge), /EMSGSIZE|too long/i,
			'a 70,000-byte UDP datagram should be refused by the kernel');
		await probe(ua);
	});

	c.test('a 65 kB MESSAGE that still fits in a datagram with the proxy\'s Via is delivered: 200', async () => {
		const u = `bigrcpt-${rand(3)}`;
		const callee = await c.ua('bigrcpt');
		await new Registration(callee, c.edge(), u).register(600);
		const sender = await c.ua('bigsender');
		const r = await message(sender, c.edge(), u, 'a.test', { body: 'q'.repeat(UDP_MAX - 600), timeout: 8000 });
		assert.equal(r.status, 200, `a ${r.tx.raw.length}-byte MESSAGE got ${r.status} ${r.reason}`);
		await probe(sender);
	});

	/*
	 * RFC 3261 18.1.1: a request too big for UDP goes over TCP; this
	 * callee has no TCP, a transport error counts as a 503 from the
	 * branch (16.9), and a proxy turns a best response of 503 into 500
	 * (16.7 step 6).  The edge hands the datagram it could not send
	 * back to the core, which fails the branch at once.
	 */
	c.test('a MESSAGE that fits as sent but not with the proxy\'s Via, to a UDP-only callee: 500', async () => {
		const u = `bigrcpt-${rand(3)}`;
		const callee = await c.ua('bigrcpt');
		await new Registration(callee, c.edge(), u).register(600);
		const sender = await c.ua('bigsender');
		/* The size of the request but for its body, then a body that
		 * makes it exactly the largest datagram. */
		const small = await message(sender, c.edge(), u, 'a.test', { body: 'q'.repeat(10000), callId: `${rand(8)}@integ` });
		const head = small.tx.raw.length - 10000;
		const r = await message(sender, c.edge(), u, 'a.test', {
			body: 'q'.repeat(UDP_MAX - head), callId: `${rand(8)}@integ`, timeout: 8000,
		});
		assert.equal(r.tx.raw.length, UDP_MAX);
		assert.equal(r.status, 500, `a ${UDP_MAX}-byte MESSAGE got ${r.status} ${r.reason}`);
		await probe(sender);
	});

	c.test('stray responses: unknown branch, a branch naming core 99, core 1 with no such transaction, overflowing core id', async () => {
		const ua = await c.ua('stray');
		const resp = (branch) => `SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP 127.0.0.1:9;branch=${branch}\r\n` +
			`From: <sip:a@a.test>;tag=1\r\nTo: <sip:b@a.test>;tag=2\r\nCall-ID: ${rand(6)}\r\nCSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n`;
		await blast('stray', [
			resp('z9hG4bKnotours'), resp('z9hG4bKsm99.0000000000000001'), resp('z9hG4bKsm1.00000000deadbeef'),
			resp('z9hG4bKsm2.'), resp('z9hG4bKsm0.1'), resp('z9hG4bKsm99999999999999999999.1'),
			resp('z9hG4bKsm-1.1'), resp(''),
			'SIP/2.0 999 Whatever\r\nContent-Length: 0\r\n\r\n',
			'SIP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n',
		]);
	});

	c.test('ACK and CANCEL matching no transaction', async () => {
		const ua = await c.ua('orphan');
		await blast('orphan-blast', [
			head(ua, 'ACK') + 'Content-Length: 0\r\n\r\n',
			head(ua, 'CANCEL') + 'Content-Length: 0\r\n\r\n',
		]);
		const r = await ua.send(c.edge(), { method: 'CANCEL', ruri: 'sip:victim@a.test', to: 'sip:victim@a.test', from: 'sip:o@a.test' }, 3000);
		assert.equal(r.status, 481, `a CANCEL matching no transaction got ${r.status} ${r.reason}`);
	});

	c.test('a flood of 2,000 malformed datagrams in a burst', async () => {
		const ua = await c.ua('flood');
		const h = head(ua);
		const sends = [];
		for (let i = 0; i < 2000; i++) {
			const kind = i % 4;
			const d = kind === 0 ? crypto.randomBytes(200 + (i % 700))
				: kind === 1 ? Buffer.from(h.slice(0, i % h.length), 'latin1')
					: kind === 2 ? Buffer.from(h + `Content-Length: ${i * 1000}\r\n\r\n`, 'latin1')
						: Buffer.from(h.replace('CSeq: 1', `CSeq: ${i}x`) + 'Content-Length: 0\r\n\r\n', 'latin1');
			sends.push(ua.sendRaw(c.edge(), d));
		}
		await Promise.all(sends);
		await probe(ua);
	});

	c.test('after all that: every process runs, the earlier binding is intact, REGISTER gets 200', async () => {
		c.assertAlive();
		assert.ok(keeper, 'the keeper binding was made');
		const q = new Registration(await c.ua('final-q'), c.edge(), keeper.user);
		const b = await q.query();
		assert.equal(b.length, 1, `the binding of ${keeper.user} made before the abuse: ${JSON.stringify(b)}`);
		const fresh = new Registration(await c.ua('final'), c.edge(), `final-${rand(3)}`);
		await fresh.register(600);
		const m = await message(await c.ua('final-sender'), c.edge(), keeper.user);
		assert.equal(m.status, 200, 'a MESSAGE to the old binding is still delivered');
		c.assertAlive();
	});
});
