'use strict';
/*
 * flows.js - small SIP exchanges the tests repeat: REGISTER with a
 * stable Call-ID and growing CSeq (as a real UA does), reading the
 * bindings of a 200, MESSAGE from one UA to an AOR, and the SIP
 * barriers that let a test check that something did NOT happen
 * (wait.js says why).
 */
const assert = require('node:assert/strict');
const { rand } = require('./sip');
const { waitUntil } = require('./wait');

/* One UA's registration of one AOR: same Call-ID, CSeq + 1 each time. */
class Registration {
	/*
	 * ua: SipUA; edge: {host, port}; user, domain: the AOR.
	 * The default contact is the UA's own address.
	 */
	constructor(ua, edge, user, domain = 'a.test') {
		this.ua = ua;
		this.edge = edge;
		this.user = user;
		this.domain = domain;
		this.aor = `sip:${user}@${domain}`;
		this.callId = `reg-${rand(8)}@integ`;
		this.cseq = 0;
		this.fromTag = rand(4);
	}

	get contact() { return this.ua.contactUri(this.user); }

	/*
	 * Sends one REGISTER.  o: {contacts: raw Contact values (default
	 * [<own contact>]; [] for none, i.e. a query), expires (Expires
	 * header; undefined: none), headers, cseq, callId, branch (a
	 * retransmission's: that of the request it repeats)}.
	 * Resolves with the final response.
	 */
	send(o = {}) {
		this.cseq = o.cseq !== undefined ? o.cseq : this.cseq + 1;
		return this.ua.send(this.edge, {
			method: 'REGISTER', ruri: `sip:${this.domain}`, aor: this.aor,
			from: this.aor, to: this.aor, fromTag: this.fromTag,
			callId: o.callId || this.callId, cseq: this.cseq,
			contact: o.contacts !== undefined ? o.contacts : [`<${this.contact}>`],
			expires: o.expires, headers: o.headers, branch: o.branch,
		}, o.timeout || 5000);
	}

	/* REGISTER for `expires` seconds; asserts 200; returns the response. */
	async register(expires = 300, o = {}) {
		const r = await this.send({ expires, ...o });
		assert.equal(r.status, 200, `REGISTER ${this.aor} (Expires ${expires}) got ${r.status} ${r.reason}`);
		return r;
	}

	/* Un-REGISTERs this contact (Expires: 0); asserts 200. */
	async unregister() {
		return this.register(0);
	}

	/* A REGISTER without Contact: resolves with the bindings listed. */
	async query() {
		const r = await this.send({ contacts: [] });
		assert.equal(r.status, 200, `query REGISTER for ${this.aor} got ${r.status} ${r.reason}`);
		return bindings(r);
	}
}

/* Normalises a contact URI for comparison: scheme/host lower case. */
function normUri(u) {
	return u.trim().replace(/^sips?:/i, (s) => s.toLowerCase())
		.replace(/@([^;:>]+)/, (m, h) => `@${h.toLowerCase()}`);
}

/*
 * The bindings a REGISTER's 200 lists: [{uri, expires}], expires from
 * the contact's expires parameter, else the Expires header.
 */
function bindings(res) {
	const hdr = res.get('expires');
	return res.contacts().map((c) => ({
		uri: normUri(c.uri),
		expires: c.expires !== null ? c.expires : (hdr !== undefined ? Number(hdr) : null),
		params: c.params,
	}));
}

/* The binding for uri in res's list, or undefined. */
function binding(res, uri) {
	return bindings(res).find((b) => b.uri === normUri(uri));
}

/* Asserts res lists exactly these contact URIs (any order). */
function assertContacts(res, uris, what = '') {
	const got = bindings(res).map((b) => b.uri).sort();
	const want = uris.map(normUri).sort();
	assert.deepEqual(got, want, `${what}: the 200 lists [${got.join(', ')}], expected [${want.join(', ')}]` +
		`\n(Contact headers: ${JSON.stringify(res.all('contact'))})`);
}

/* Asserts lo <= expires <= hi for the binding of uri in res. */
function assertExpires(res, uri, lo, hi, what = '') {
	const b = binding(res, uri);
	assert.ok(b, `${what}: ${uri} is not in the 200's Contact list ${JSON.stringify(res.all('contact'))}`);
	assert.ok(b.expires !== null && Number.isFinite(b.expires),
		`${what}: ${uri} listed without expires (Contact ${JSON.stringify(res.all('contact'))})`);
	assert.ok(b.expires >= lo && b.expires <= hi,
		`${what}: ${uri} expires=${b.expires}, expected ${lo}..${hi}`);
}

/* Sends a MESSAGE from ua to sip:user@domain through edge; resolves with the final response. */
function message(ua, edge, user, domain = 'a.test', o = {}) {
	const to = `sip:${user}@${domain}`;
	return ua.send(edge, {
		method: 'MESSAGE', ruri: o.ruri || to, from: o.from || `sip:${ua.label}@${domain}`, to,
		body: o.body === undefined ? `hello ${user} ${rand(4)}` : o.body,
		contentType: 'text/plain', maxForwards: o.maxForwards, headers: o.headers,
		callId: o.callId,
	}, o.timeout || 5000);
}

/* A fresh UA of cluster c registered as label-xxx@domain for 600 s
 * through server (c's edge unless given: another registrar, e.g.
 * Kamailio): {ua, user, aor}. */
async function registeredUser(c, label, domain = 'a.test', server = c.edge()) {
	const ua = await c.ua(label);
	const user = `${label}-${rand(3)}`;
	await new Registration(ua, server, user, domain).register(600);
	return { ua, user, aor: `sip:${user}@${domain}` };
}

/* Sends a MESSAGE from ua through edge to reg's AOR (domain a.test);
 * resolves with its final status once reg's UA got it (or the status
 * if not 200). */
async function deliver(ua, edge, reg) {
	const body = `to ${reg.user} ${rand(6)}`;
	const r = await message(ua, edge, reg.user, 'a.test', { body });
	if (r.status === 200)
		await reg.ua.waitRequest((m) => m.method === 'MESSAGE' &&
			m.body.toString('latin1') === body, 5000, `MESSAGE "${body}"`);
	return r.status;
}

/*
 * Sends an INVITE from ua to sip:user@domain; resolves with the final
 * response (a non-2xx is ACKed by the UA).
 */
function invite(ua, edge, user, domain = 'a.test', o = {}) {
	const to = `sip:${user}@${domain}`;
	return ua.send(edge, {
		method: 'INVITE', ruri: o.ruri || to, from: `sip:${ua.label}@${domain}`, to,
		contact: [`<${ua.contactUri(ua.label)}>`],
		body: 'v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 9 RTP/AVP 0\r\n',
		contentType: 'application/sdp', maxForwards: o.maxForwards, headers: o.headers,
	}, o.timeout || 8000);
}

/*
 * Polls the registrar (a query REGISTER through reg) until pred(the
 * bindings it lists) holds, within ms; resolves with those bindings.
 * The event a test waits on when a binding must go (a closed flow).
 */
async function waitBindings(reg, pred, ms, what) {
	let last = [];
	try {
		await waitUntil(async () => pred(last = await reg.query()), ms, `${reg.aor}: ${what}`, 20);
	} catch (err) {
		err.message += `; the registrar lists [${last.map((b) => b.uri).join(', ')}]`;
		throw err;
	}
	return last;
}

/*
 * A barrier: from (a SipUA) sends a MESSAGE with body `body` and
 * Call-ID callId to sip:user@domain through edge; resolves when to (the
 * SipUA registered as that user) has received it.  The edge sends a
 * request to the core that the Call-ID hashes to, and a response to the
 * core its Via branch names, which for a response to a request of the
 * same Call-ID is that same core; the datagrams from one socket, the
 * edge-core pipes and the core's loop all keep order.  So anything from
 * sent before the barrier with that Call-ID (a response the proxy must
 * absorb, say) has been handled, and anything the proxy sent to `to`
 * because of it has arrived, once the barrier has.
 */
async function barrier(from, to, edge, user, callId, body, domain = 'a.test', ms = 5000) {
	const aor = `sip:${user}@${domain}`;
	const tx = from.request(edge, {
		method: 'MESSAGE', ruri: aor, from: `sip:${from.label}@${domain}`, to: aor, callId,
		cseq: 1000 + Math.floor(Math.random() * 1000), body, contentType: 'text/plain',
	});
	await to.waitRequest((m) => m.method === 'MESSAGE' && m.body.toString('latin1') === body, ms,
		`barrier MESSAGE "${body}" (Call-ID ${callId})`);
	return tx;
}

module.exports = {
	Registration, bindings, binding, assertContacts, assertExpires, normUri, message, deliver, invite,
	waitBindings, barrier, registeredUser,
};
