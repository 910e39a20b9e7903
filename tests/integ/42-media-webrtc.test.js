'use strict';
/*
 * 42 media webrtc: WebRTC browsers (SIP.js 0.21 in Node over WS/WSS)
 * calling SIP phones (sipp over UDP), phones calling browsers, and
 * browsers calling browsers, through a cluster that anchors every SDP
 * on a real rtpengine (cluster({ media })), checked on the SDP each
 * party receives, on rtpengine's own view of the call (ng query), on
 * rtpengine's ICE checks reaching the browser's host candidate where it
 * is the browser's ICE peer (ICE=force), and on the session being gone
 * from rtpengine after a BYE from either side.  The flags under test are DESIGN.md's media table:
 *
 *   browser -> phone: the phone gets RTP/AVP on 127.0.0.1 in the
 *     relay's port range, without a=ice-*, a=candidate, a=fingerprint,
 *     a=setup or a=rtcp-mux (rtcp-mux-demux); the browser's answer is
 *     UDP/TLS/RTP/SAVPF with rtpengine's ICE candidates, DTLS
 *     fingerprint and a=setup for the answerer's role, and a=rtcp-mux;
 *   phone -> browser: the browser's offer is UDP/TLS/RTP/SAVPF with
 *     ICE candidates, a fingerprint, a=setup:actpass and a=rtcp-mux
 *     (rtcp-mux-offer: Chromium refuses an offer without it); the
 *     phone's answer is plain RTP/AVP;
 *   browser -> browser (ICE=force-relay DTLS=passive): each side keeps
 *     UDP/TLS/RTP/SAVPF and gets rtpengine's relay candidates on
 *     127.0.0.1 next to the peer's own, the peer's DTLS fingerprint and
 *     a=setup roles that still fit together (rtpengine passes DTLS
 *     through between two WebRTC legs, so its passive preference never
 *     shows: the offer keeps actpass, the answer active).
 *
 * Node has no RTCPeerConnection: every SIP.js user agent gets a
 * session description handler (sessionDescriptionHandlerFactory in its
 * UserAgentOptions) that writes Chromium-like SDP (UDP/TLS/RTP/SAVPF,
 * ICE ufrag/pwd, a sha-256 fingerprint, a=setup:actpass in offers and
 * active in answers, a=rtcp-mux, 127.0.0.1 host candidates on real UDP
 * sockets, opus/PCMU/PCMA audio and optionally VP8 video, a=mid, no
 * BUNDLE group), refuses what Chromium would refuse in a remote
 * description, and records every SDP it sent and received.
 */
const assert = require('node:assert/strict');
const crypto = require('node:crypto');
const dgram = require('node:dgram');
const { describe } = require('node:test');
const { rand, waitUntil, HOST } = require('./lib/cluster');
const { startSipp, startUas, assertOk } = require('./lib/sipp');
const { streamCluster, SipJsUA } = require('./lib/ws');
const SIP = require('sip.js');

const SAVPF = 'UDP/TLS/RTP/SAVPF';
const FP_RE = /^sha-256 ([0-9A-F]{2}:){31}[0-9A-F]{2}$/;

/* ---- SDP ---- */

/*
 * {raw, session: [{k, v}], media: [{type, port, proto, fmts, lines}]}
 * with attr(sec, name) -> values of a=name[:value] in a section (media
 * falling back to session level for ice/fingerprint/setup/c).
 */
function parseSdp(raw) {
	const sdp = { raw, session: [], media: [] };
	let cur = null;
	for (const line of String(raw).split(/\r?\n/)) {
		const m = /^([a-z])=(.*)$/.exec(line.trim());
		if (!m) continue;
		if (m[1] === 'm') {
			const [type, port, proto, ...fmts] = m[2].split(/\s+/);
			cur = { type, port: Number(port), proto, fmts, lines: [] };
			sdp.media.push(cur);
			continue;
		}
		(cur ? cur.lines : sdp.session).push({ k: m[1], v: m[2] });
	}
	return sdp;
}

function attrsIn(lines, name) {
	const out = [];
	for (const l of lines) {
		if (l.k !== 'a') continue;
		const i = l.v.indexOf(':');
		const n = i < 0 ? l.v : l.v.slice(0, i);
		if (n === name) out.push(i < 0 ? '' : l.v.slice(i + 1));
	}
	return out;
}

/* Values of a=name in media section m, else at session level. */
function attr(sdp, m, name) {
	const own = attrsIn(m.lines, name);
	return own.length ? own : attrsIn(sdp.session, name);
}

function connOf(sdp, m) {
	const c = m.lines.find((l) => l.k === 'c') || sdp.session.find((l) => l.k === 'c');
	return c ? c.v : undefined;
}

/* {foundation, component, proto, prio, addr, port, typ} of an a=candidate value. */
function candidate(v) {
	const p = v.split(/\s+/);
	return {
		foundation: p[0], component: Number(p[1]), proto: p[2].toLowerCase(), prio: Number(p[3]),
		addr: p[4], port: Number(p[5]), typ: p[7],
	};
}

/* PT -> "name/clock[/ch]" of a media section (static PTs 0 and 8 too). */
function rtpmaps(m) {
	const out = { 0: 'PCMU/8000', 8: 'PCMA/8000' };
	for (const v of attrsIn(m.lines, 'rtpmap')) {
		const i = v.indexOf(' ');
		out[v.slice(0, i)] = v.slice(i + 1);
	}
	return out;
}

/* ---- a Chromium-like WebRTC endpoint without media engine ---- */

const CODECS = {
	audio: [
		{ pt: 111, name: 'opus/48000/2', fb: ['transport-cc'], fmtp: 'minptime=10;useinbandfec=1' },
		{ pt: 0, name: 'PCMU/8000' },
		{ pt: 8, name: 'PCMA/8000' },
		{ pt: 126, name: 'telephone-event/8000' },
	],
	video: [
		{ pt: 96, name: 'VP8/90000', fb: ['goog-remb', 'transport-cc', 'ccm fir', 'nack', 'nack pli'] },
		{ pt: 97, name: 'rtx/90000', fmtp: 'apt=96' },
	],
};
const ICE_CHARS = 'abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789+/';
const iceStr = (n) => Array.from(crypto.randomBytes(n), (b) => ICE_CHARS[b % ICE_CHARS.length]).join('');
const fingerprint = () => Array.from(crypto.randomBytes(32),
	(b) => b.toString(16).toUpperCase().padStart(2, '0')).join(':');

/* The lines of one Chromium-style m= section (non-trickle: candidates in). */
function mediaSection({ kind, mid, codecs, port, ice, fp, setup, ssrc, stream }) {
	const l = [`m=${kind} ${port} ${SAVPF} ${codecs.map((c) => c.pt).join(' ')}`,
		`c=IN IP4 ${HOST}`, `a=rtcp:${port} IN IP4 ${HOST}`,
		`a=candidate:${crypto.randomInt(1e9)} 1 udp 2122260223 ${HOST} ${port} typ host generation 0 network-id 1`,
		`a=ice-ufrag:${ice.ufrag}`, `a=ice-pwd:${ice.pwd}`, 'a=ice-options:trickle',
		`a=fingerprint:sha-256 ${fp}`, `a=setup:${setup}`, `a=mid:${mid}`];
	if (kind === 'audio') l.push('a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level');
	l.push('a=sendrecv', `a=msid:${stream} ${stream}-${kind}`, 'a=rtcp-mux');
	if (kind === 'video') l.push('a=rtcp-rsize');
	for (const c of codecs) {
		l.push(`a=rtpmap:${c.pt} ${c.name}`);
		for (const f of c.fb || []) l.push(`a=rtcp-fb:${c.pt} ${f}`);
		if (c.fmtp) l.push(`a=fmtp:${c.pt} ${c.fmtp}`);
	}
	l.push(`a=ssrc:${ssrc} cname:${stream}`, `a=ssrc:${ssrc} msid:${stream} ${stream}-${kind}`);
	return l;
}

/*
 * What Chromium's setRemoteDescription refuses (rtcpMuxPolicy
 * 'require', no SDES, DTLS mandatory), as its error texts; [] if none.
 */
function chromiumRefuses(raw, type) {
	const sdp = parseSdp(raw);
	const errs = [];
	if (!sdp.media.length) errs.push('no m= section');
	if (attrsIn(sdp.session, 'group').some((g) => /^BUNDLE/.test(g)) && !sdp.media.every((m) => attr(sdp, m, 'mid').length))
		errs.push('A BUNDLE group contains a MID that matches no m= section');
	sdp.media.forEach((m, i) => {
		if (m.port === 0) return;	/* rejected section */
		const what = `m-section ${i} (${m.type})`;
		if (!/^UDP\/TLS\/RTP\/SAVPF?$/.test(m.proto)) errs.push(`${what}: unsupported profile ${m.proto}`);
		if (!attr(sdp, m, 'fingerprint').length) errs.push(`${what}: Called with SDP without DTLS fingerprint`);
		if (!attr(sdp, m, 'ice-ufrag').length || !attr(sdp, m, 'ice-pwd').length)
			errs.push(`${what}: ICE ufrag/pwd missing`);
		if (!attrsIn(m.lines, 'rtcp-mux').length) errs.push(`${what}: RTCP-MUX is not enabled when it is required`);
		const setup = attr(sdp, m, 'setup')[0];
		if (type === 'answer' && !['active', 'passive'].includes(setup))
			errs.push(`${what}: answer with a=setup:${setup} (must be active or passive)`);
		if (type === 'offer' && setup !== undefined && !['actpass', 'active', 'passive'].includes(setup))
			errs.push(`${what}: offer with a=setup:${setup}`);
	});
	return errs;
}

/*
 * One session's "RTCPeerConnection": offers and answers Chromium-like
 * SDP, records both directions ({type, sdp}), binds a real UDP socket
 * per m= section for its host candidate and records the STUN binding
 * requests that reach it (rtpengine's ICE checks).
 */
class FakeWebRtc {
	constructor(owner, session, opts) {
		this.owner = owner;
		this.session = session;
		this.video = !!opts.video;
		this.local = [];
		this.remote = [];
		this.errors = [];
		this.stun = [];		/* {port, from, username} */
		this.socks = [];
		this.offering = false;
		this.remoteOffer = null;
		this.ice = { ufrag: iceStr(4), pwd: iceStr(24) };
		this.fp = fingerprint();
		this.stream = iceStr(16).replace(/[+/]/g, 'x');
		this.sessId = `${crypto.randomInt(1e9)}${crypto.randomInt(1e9)}`;
		this.version = 1;
		owner.sdhs.push(this);
	}

	async _socket() {
		const s = dgram.createSocket('udp4');
		await new Promise((res, rej) => { s.once('error', rej); s.bind(0, HOST, res); });
		s.on('error', () => {});
		const port = s.address().port;
		s.on('message', (b, from) => {
			/* STUN: magic cookie at 4; USERNAME (0x0006) among the attributes. */
			if (b.length < 20 || b.readUInt32BE(4) !== 0x2112A442) return;
			let username;
			for (let i = 20; i + 4 <= b.length;) {
				const t = b.readUInt16BE(i), n = b.readUInt16BE(i + 2);
				if (t === 0x0006) username = b.toString('latin1', i + 4, i + 4 + n);
				i += 4 + n + ((4 - (n % 4)) % 4);
			}
			this.stun.push({ port, type: b.readUInt16BE(0), from: from.port, username });
		});
		this.socks.push(s);
		return port;
	}

	_head() {
		return ['v=0', `o=- ${this.sessId} ${this.version++} IN IP4 ${HOST}`, 's=-', 't=0 0',
			'a=extmap-allow-mixed', 'a=msid-semantic: WMS'];
	}

	async _offer() {
		const kinds = this.video ? ['audio', 'video'] : ['audio'];
		const l = this._head();
		for (const [i, kind] of kinds.entries()) {
			l.push(...mediaSection({
				kind, mid: String(i), codecs: CODECS[kind], port: await this._socket(), ice: this.ice,
				fp: this.fp, setup: 'actpass', ssrc: crypto.randomInt(1, 2 ** 31), stream: this.stream,
			}));
		}
		return l.join('\r\n') + '\r\n';
	}

	async _answer(raw) {
		const offer = parseSdp(raw);
		const l = this._head();
		for (const [i, m] of offer.media.entries()) {
			const maps = rtpmaps(m);
			const ours = CODECS[m.type] || [];
			const codecs = [];
			for (const pt of m.fmts) {
				const name = maps[pt];
				const c = name && ours.find((x) => x.name.toLowerCase() === name.toLowerCase());
				if (!c) continue;
				const fmtp = attrsIn(m.lines, 'fmtp').find((v) => v.startsWith(`${pt} `));
				codecs.push({ ...c, pt: Number(pt), fmtp: fmtp ? fmtp.slice(pt.length + 1) : c.fmtp });
			}
			const mid = attr(offer, m, 'mid')[0] || String(i);
			if (m.port === 0 || !codecs.length) {
				l.push(`m=${m.type} 0 ${SAVPF} ${m.fmts[0]}`, `c=IN IP4 0.0.0.0`, `a=mid:${mid}`);
				continue;
			}
			l.push(...mediaSection({
				kind: m.type, mid, codecs, port: await this._socket(), ice: this.ice,
				fp: this.fp, setup: 'active', ssrc: crypto.randomInt(1, 2 ** 31), stream: this.stream,
			}));
		}
		return l.join('\r\n') + '\r\n';
	}

	async getDescription() {
		let sdp, type;
		if (this.remoteOffer !== null) {
			type = 'answer';
			sdp = await this._answer(this.remoteOffer);
			this.remoteOffer = null;
		} else {
			type = 'offer';
			sdp = await this._offer();
			this.offering = true;
		}
		this.local.push({ type, sdp });
		return { body: sdp, contentType: 'application/sdp' };
	}

	setDescription(sdp) {
		const type = this.offering ? 'answer' : 'offer';
		this.remote.push({ type, sdp });
		const errs = chromiumRefuses(sdp, type);
		if (errs.length) {
			const e = `Failed to set remote ${type} sdp: ${errs.join('; ')}`;
			this.errors.push(e);
			return Promise.reject(new Error(e));
		}
		if (type === 'answer') this.offering = false; else this.remoteOffer = sdp;
		return Promise.resolve();
	}

	hasDescription(contentType) {
		return contentType === 'application/sdp';
	}

	rollbackDescription() {
		this.offering = false;
		this.remoteOffer = null;
		return Promise.resolve();
	}

	sendDtmf() {
		return false;
	}

	close() {
		for (const s of this.socks.splice(0)) {
			try { s.close(); } catch { /* closed */ }
		}
	}

	/* The SDP exchange as text, for failure reports. */
	transcript() {
		return [...this.local.map((x) => `-- sent ${x.type}:\n${x.sdp}`),
			...this.remote.map((x) => `-- received ${x.type}:\n${x.sdp}`),
			...this.errors.map((e) => `-- ${e}`),
			`-- STUN requests received: ${JSON.stringify(this.stun)}`].join('\n');
	}
}

/*
 * A SipJsUA (tests/integ/lib/ws.js: registers, answers INVITEs with
 * 180 then 200, records BYEs) whose UserAgentOptions name FakeWebRtc
 * as session description handler factory instead of the fixed-SDP stub.
 */
class WebRtcUA extends SipJsUA {
	static async open(o) {
		const u = new WebRtcUA(o);
		await u.start();
		await u.register(o.expires || 300);
		return u;
	}

	constructor(o) {
		super(o);
		this.sdhs = [];
		/* ua.configuration is the UserAgent's options object: the
		 * factory is read from it for every new session. */
		this.ua.configuration.sessionDescriptionHandlerFactory =
			(session) => new FakeWebRtc(this, session, { video: o.video });
	}

	sdhOf(session) {
		const h = this.sdhs.find((x) => x.session === session);
		assert.ok(h, `${this.user}: no session description handler for the session`);
		return h;
	}
}

/* ---- sipp message logs ---- */

function msgOf(r, dir, re) {
	const m = r.parsed.find((x) => x.dir === dir && re.test(x.text));
	assert.ok(m, `no ${dir} message matching ${re} in the sipp log`);
	return m.text;
}

function bodyOf(text) {
	const i = text.search(/\r?\n\r?\n/);
	assert.ok(i >= 0, `no body in:\n${text}`);
	return text.slice(i).replace(/^\s+/, '');
}

function tagIn(text, hdr) {
	const h = new RegExp(`^${hdr}:[ \\t]*(.*)$`, 'mi').exec(text);
	const m = h && /;\s*tag=([^;>\s]+)/i.exec(h[1]);
	return m ? m[1] : undefined;
}

/* A fresh Call-ID for a one-call sipp run: [args, callId]. */
function cidArgs(what) {
	const p = `${what}-${rand(4)}`;
	return [['-cid_str', `${p}-%u@%s`], `${p}-1@${HOST}`];
}

/* ---- assertions on what each side receives ---- */

const inRange = (engine, p) => p >= engine.min && p <= engine.max;

/*
 * SDP as a WebRTC browser must get it from the relay: every accepted
 * m= section UDP/TLS/RTP/SAVPF, ICE ufrag/pwd, a well-formed sha-256
 * fingerprint, a=setup in `setups`, a=rtcp-mux, candidates only on
 * 127.0.0.1, at least one of them rtpengine's (type `relayTyp`, port
 * in the engine's range).  force (ICE=force): c= and m= point at
 * rtpengine too.  Returns the parsed SDP.
 */
function assertWebRtc(raw, what, { engine, setups, relayTyp, force, sections }) {
	const sdp = parseSdp(raw);
	const ctx = `\n${what}:\n${raw}`;
	assert.equal(sdp.media.length, sections, `${what}: ${sdp.media.length} m= sections, expected ${sections}${ctx}`);
	assert.ok(!attrsIn(sdp.session, 'group').some((g) => /^BUNDLE/.test(g)), `${what}: BUNDLE group${ctx}`);
	for (const m of sdp.media) {
		const w = `${what}, m=${m.type}`;
		assert.ok(m.port > 0, `${w}: rejected (port 0)${ctx}`);
		assert.equal(m.proto, SAVPF, `${w}: profile${ctx}`);
		assert.equal(attr(sdp, m, 'ice-ufrag').length, 1, `${w}: a=ice-ufrag${ctx}`);
		assert.equal(attr(sdp, m, 'ice-pwd').length, 1, `${w}: a=ice-pwd${ctx}`);
		const fps = attr(sdp, m, 'fingerprint');
		assert.equal(fps.length, 1, `${w}: a=fingerprint${ctx}`);
		assert.match(fps[0], FP_RE, `${w}: fingerprint${ctx}`);
		const setup = attr(sdp, m, 'setup');
		assert.equal(setup.length, 1, `${w}: one a=setup${ctx}`);
		assert.ok(setups.includes(setup[0]), `${w}: a=setup:${setup[0]}, expected ${setups.join(' or ')}${ctx}`);
		assert.ok(attrsIn(m.lines, 'rtcp-mux').length >= 1, `${w}: no a=rtcp-mux${ctx}`);
		const cands = attrsIn(m.lines, 'candidate').map(candidate);
		assert.ok(cands.length > 0, `${w}: no a=candidate${ctx}`);
		for (const c of cands) {
			assert.equal(c.addr, HOST, `${w}: candidate on ${c.addr}${ctx}`);
			assert.equal(c.proto, 'udp', `${w}: candidate protocol ${c.proto}${ctx}`);
		}
		const relay = cands.filter((c) => c.typ === relayTyp && inRange(engine, c.port));
		assert.ok(relay.some((c) => c.component === 1),
			`${w}: no ${relayTyp} candidate (component 1) in ${engine.name}'s range ${engine.min}-${engine.max}${ctx}`);
		if (force) {
			assert.equal(connOf(sdp, m), `IN IP4 ${HOST}`, `${w}: c=${ctx}`);
			assert.ok(inRange(engine, m.port), `${w}: m= port ${m.port} outside ${engine.name}'s range${ctx}`);
			assert.ok(relay.some((c) => c.port === m.port), `${w}: no candidate on the m= port ${m.port}${ctx}`);
		}
	}
	return sdp;
}

/*
 * SDP as a SIP phone must get it: one RTP/AVP audio section on
 * 127.0.0.1 at a port in the engine's range (not the browser's own
 * otherPorts), nothing of WebRTC left, no a=rtcp-mux.
 */
function assertPlain(raw, what, { engine, otherPorts }) {
	const sdp = parseSdp(raw);
	const ctx = `\n${what}:\n${raw}`;
	assert.equal(sdp.media.length, 1, `${what}: ${sdp.media.length} m= sections${ctx}`);
	const m = sdp.media[0];
	assert.equal(m.type, 'audio', `${what}: m=${m.type}${ctx}`);
	assert.equal(m.proto, 'RTP/AVP', `${what}: profile${ctx}`);
	assert.equal(connOf(sdp, m), `IN IP4 ${HOST}`, `${what}: c=${ctx}`);
	assert.ok(inRange(engine, m.port), `${what}: m=audio ${m.port} outside ${engine.name}'s range ${engine.min}-${engine.max}${ctx}`);
	assert.ok(!otherPorts.includes(m.port), `${what}: m=audio ${m.port} is the browser's own port: not anchored${ctx}`);
	assert.doesNotMatch(raw, /^a=(ice-ufrag|ice-pwd|ice-options|candidate|end-of-candidates|fingerprint|setup|crypto|rtcp-mux)\b/m,
		`${what}: WebRTC attributes left${ctx}`);
	return sdp;
}

/* The ports of the host candidates an SDP the browser sent offered. */
function ownPorts(raw) {
	const sdp = parseSdp(raw);
	return sdp.media.flatMap((m) => [m.port, ...attrsIn(m.lines, 'candidate').map((v) => candidate(v).port)]);
}

/* Asserts that rtpengine ran ICE towards the browser's candidate: a
 * STUN Binding request (0x0001) with USERNAME "<browser ufrag>:<the
 * ufrag of the SDP the browser got>" from one of that SDP's candidates. */
async function assertIceChecks(h, sdp, what) {
	const m = sdp.media[0];
	const theirs = attr(sdp, m, 'ice-ufrag')[0];
	const from = attrsIn(m.lines, 'candidate').map((v) => candidate(v).port);
	const want = `${h.ice.ufrag}:${theirs}`;
	await waitUntil(() => h.stun.some((x) => x.type === 1 && x.username === want && from.includes(x.from)), 3000,
		`${what}: a STUN check from rtpengine (USERNAME ${want}, from port ${from}) on the browser's candidate`)
		.catch((err) => {
			err.message += `\nSTUN received: ${JSON.stringify(h.stun)}`;
			throw err;
		});
}

/* ---- rtpengine's view ---- */

/* [{tag, medias: [{type, protocol, flags, ports}]}] of an ng query reply. */
function legs(q) {
	return Object.values(q.tags || {}).map((t) => ({
		tag: t.tag,
		medias: (t.medias || []).map((m) => ({
			type: m.type, protocol: m.protocol, flags: m.flags || [],
			ports: (m.streams || []).map((s) => s['local port']),
		})),
	}));
}

function legOf(q, tag) {
	const l = legs(q).find((x) => x.tag === tag);
	assert.ok(l, `rtpengine has no leg with tag ${tag}: ${JSON.stringify(legs(q))}`);
	return l;
}

describe('42 media webrtc', () => {
	const c = streamCluster({
		name: '42-media-webrtc', edges: 1, cores: 2, proxy: { t1_ms: 100, t2_ms: 400 },
		media: { rtpengines: 1, rtpctls: 1 },
	});
	const open = [];

	async function browser(name, o = {}) {
		const u = await WebRtcUA.open({
			user: `${name}-${rand(3)}`, domain: 'a.test', server: c.wsUrl(1, !!o.secure), ...o,
		});
		open.push(u);
		return u;
	}

	/* c.test with the SDP exchanges in the failure report and the UAs stopped afterwards. */
	function webrtcTest(name, fn) {
		c.test(name, async (t) => {
			try {
				await fn(t);
			} finally {
				for (const u of open) {
					for (const h of u.sdhs)
						c.addEvidence(`SDP of SIP.js ${u.user}`, h.transcript());
					c.addEvidence(`SIP.js ${u.user} log`, u.log.join('\n'));
				}
				for (const u of open.splice(0)) {
					await u.stop();
					for (const h of u.sdhs) h.close();
				}
			}
		});
	}

	/* Waits for a SIP.js session's state, naming the SDP errors if it ends instead. */
	async function waitState(u, s, state, what) {
		await u.waitFor(() => s.state === state || s.state === SIP.SessionState.Terminated, 10000, what);
		const errs = u.sdhs.flatMap((h) => h.errors);
		assert.equal(s.state, state, `${u.user}: ${what}: session ${s.state}${errs.length ? `; ${errs.join('; ')}` : ''}`);
	}

	webrtcTest('rtpengine accepts the Chromium-like SDP under every WebRTC row of the flag table (direct ng)', async () => {
		const [e] = c.rtpengines;
		const owner = { sdhs: [] };
		const a = new FakeWebRtc(owner, null, { video: true });
		const b = new FakeWebRtc(owner, null, { video: true });
		const phone = `v=0\r\no=phone 1 1 IN IP4 ${HOST}\r\ns=phone\r\nc=IN IP4 ${HOST}\r\nt=0 0\r\n` +
			'm=audio 16000 RTP/AVP 8 0\r\na=rtpmap:8 PCMA/8000\r\na=rtpmap:0 PCMU/8000\r\na=sendrecv\r\n';
		const avp = { 'transport-protocol': 'RTP/AVP', ICE: 'remove', replace: ['session-connection', 'origin'] };
		const rows = [
			{ name: 'browser -> browser', offer: { ICE: 'force-relay', DTLS: 'passive' }, answer: { ICE: 'force-relay', DTLS: 'passive' }, video: true },
			{ name: 'browser -> phone', offer: { ...avp, 'rtcp-mux': ['demux'] }, answer: { 'transport-protocol': SAVPF, ICE: 'force' }, phoneAnswers: true },
			{ name: 'phone -> browser', offer: { 'transport-protocol': SAVPF, ICE: 'force', 'rtcp-mux': ['offer'] }, answer: avp, phoneOffers: true },
		];
		try {
			for (const r of rows) {
				a.video = b.video = !!r.video;
				const cid = `direct-${rand(6)}`;
				const base = { 'call-id': cid, 'from-tag': 'caller', 'via-branch': `z9hG4bK${rand(8)}` };
				const offerIn = r.phoneOffers ? phone : (await a.getDescription()).body;
				const o = await c.ng(e, { command: 'offer', ...base, sdp: offerIn, ...r.offer });
				assert.equal(o.result, 'ok', `${r.name}: offer refused: ${o['error-reason']}\n${offerIn}`);
				let answerIn;
				if (r.phoneAnswers) {
					answerIn = phone.replace('8 0', '8');
				} else {
					await b.setDescription(o.sdp);
					answerIn = (await b.getDescription()).body;
				}
				const an = await c.ng(e, { command: 'answer', ...base, 'to-tag': 'callee', sdp: answerIn, ...r.answer });
				assert.equal(an.result, 'ok', `${r.name}: answer refused: ${an['error-reason']}\n${answerIn}`);
				if (!r.phoneOffers) {
					await a.setDescription(an.sdp);	/* Chromium-acceptable answer */
				}
				assert.equal((await c.ng(e, { command: 'delete', 'call-id': cid })).result, 'ok');
			}
		} finally {
			a.close();
			b.close();
		}
	});

	/*
	 * browser -> phone: the SIP.js caller's INVITE reaches the sipp
	 * callee as plain RTP; the 200 reaches the browser as WebRTC.
	 */
	async function browserCallsPhone(t, { phoneHangsUp }) {
		const a = await browser('web');
		const user = `phone-${rand(3)}`;
		const phone = await startUas(c, {
			user, scenario: phoneHangsUp ? 'webrtc_uas_bye.xml' : 'media_uas_answer.xml', keys: { sm_name: 'phone' },
		});
		const s = await a.invite(`sip:${user}@a.test`);
		const cid = s.request.callId;
		const { engine, reply } = await c.engineHolder(cid);
		const h = a.sdhOf(s);
		assert.equal(h.local.length, 1, 'one offer sent');
		assert.equal(h.remote.length, 1, 'one answer received');
		const offerSent = h.local[0].sdp;
		/* What the browser got back: rtpengine's ICE (host candidates of
		 * ICE=force) and DTLS, answering the browser's actpass. */
		const ans = assertWebRtc(h.remote[0].sdp, "the browser's answer (200 from the phone)", {
			engine, setups: ['active', 'passive'], relayTyp: 'host', force: true, sections: 1,
		});
		assert.notEqual(attr(ans, ans.media[0], 'fingerprint')[0], `sha-256 ${h.fp}`,
			"the browser's own fingerprint came back: rtpengine must terminate DTLS towards a phone");
		await assertIceChecks(h, ans, 'browser->phone');
		if (!phoneHangsUp) {
			await a.bye(s);
		} else {
			await a.waitFor(() => a.byes.includes(cid), 5000, 'BYE from the phone');
		}
		const rp = await phone.wait(15000);
		assertOk(rp, `phone (${phoneHangsUp ? 'webrtc_uas_bye.xml' : 'media_uas_answer.xml'})`);
		const inv = msgOf(rp, 'received', /^INVITE /);
		assertPlain(bodyOf(inv), "the phone's INVITE", { engine, otherPorts: ownPorts(offerSent) });
		assert.match(bodyOf(inv), /^a=rtcp:\d+/m, "the phone's offer names a separate RTCP port (rtcp-mux-demux)");
		const phoneTag = tagIn(msgOf(rp, 'sent', /^SIP\/2\.0 200/), 'To');
		/* rtpengine: the phone's leg plain RTP, the browser's WebRTC with ICE and DTLS-SRTP. */
		const pl = legOf(reply, phoneTag);
		const bl = legOf(reply, s.request.fromTag);
		assert.equal(pl.medias[0].protocol, 'RTP/AVP', `phone leg: ${JSON.stringify(pl)}`);
		assert.equal(bl.medias[0].protocol, SAVPF, `browser leg: ${JSON.stringify(bl)}`);
		assert.ok(bl.medias[0].flags.includes('ICE'), `browser leg has ICE: ${JSON.stringify(bl)}`);
		await c.assertEngineGone(cid, phoneHangsUp ? "the phone's BYE" : "the browser's BYE");
		t.diagnostic(`browser->phone on ${engine.name}: browser offer ports ${ownPorts(offerSent)}, ` +
			`relay to phone ${parseSdp(bodyOf(inv)).media[0].port}, relay to browser ${ans.media[0].port}; ` +
			`rtpengine ICE checks to the browser's candidate: ${h.stun.length}`);
	}

	webrtcTest('SIP.js calls a sipp phone: RTP/AVP without ICE/DTLS/rtcp-mux to the phone, SAVPF with ICE and DTLS back; the browser hangs up and the session is gone', async (t) => {
		await browserCallsPhone(t, { phoneHangsUp: false });
	});

	webrtcTest('SIP.js calls a sipp phone, the phone hangs up: the session is gone from rtpengine', async (t) => {
		await browserCallsPhone(t, { phoneHangsUp: true });
	});

	/*
	 * phone -> browser: the sipp caller's plain offer reaches SIP.js as
	 * WebRTC with rtcp-mux; the browser's answer reaches the phone plain.
	 */
	async function phoneCallsBrowser(t, { browserHangsUp }) {
		const b = await browser('web');
		const [args, cid] = cidArgs(browserHangsUp ? 'p2b-wbye' : 'p2b-pbye');
		const scenario = browserHangsUp ? 'uac_call_bye.xml' : 'webrtc_uac_call.xml';
		const phone = await startSipp(c, {
			scenario, dest: c.edge(1), service: b.user, keys: { sm_domain: 'a.test' }, args,
		});
		await b.waitFor(() => b.invites.length === 1, 10000, 'INVITE from the phone');
		const s = b.invites[0];
		await waitState(b, s, SIP.SessionState.Established, 'call from the phone established');
		assert.equal(s.request.callId, cid);
		const { engine, reply } = await c.engineHolder(cid);
		const h = b.sdhOf(s);
		assert.equal(h.remote.length, 1, 'one offer received');
		assert.equal(h.local.length, 1, 'one answer sent');
		const off = assertWebRtc(h.remote[0].sdp, "the browser's INVITE (offer from the phone)", {
			engine, setups: ['actpass'], relayTyp: 'host', force: true, sections: 1,
		});
		const m = off.media[0];
		assert.ok(attrsIn(m.lines, 'rtcp-mux').length, 'a=rtcp-mux in the offer (rtcp-mux-offer)');
		assert.match(h.local[0].sdp, /^a=setup:active/m, 'the browser answered as DTLS client');
		await assertIceChecks(h, off, 'phone->browser');
		if (browserHangsUp) await b.bye(s);
		const rp = await phone.wait(15000);
		assertOk(rp, `phone (${scenario})`);
		if (!browserHangsUp) await b.waitFor(() => b.byes.includes(cid), 5000, 'BYE from the phone');
		const ok = msgOf(rp, 'received', /^SIP\/2\.0 200[^]*CSeq:\s*1 INVITE/i);
		assertPlain(bodyOf(ok), "the phone's 200 (the browser's answer)", { engine, otherPorts: ownPorts(h.local[0].sdp) });
		const phoneTag = tagIn(msgOf(rp, 'sent', /^INVITE /), 'From');
		const pl = legOf(reply, phoneTag);
		const bl = legs(reply).find((x) => x.tag !== phoneTag);
		assert.equal(pl.medias[0].protocol, 'RTP/AVP', `phone leg: ${JSON.stringify(pl)}`);
		assert.ok(bl && bl.medias[0].protocol === SAVPF && bl.medias[0].flags.includes('ICE'),
			`browser leg: ${JSON.stringify(bl)}`);
		await c.assertEngineGone(cid, browserHangsUp ? "the browser's BYE" : "the phone's BYE");
		t.diagnostic(`phone->browser on ${engine.name}: relay to browser ${m.port} (candidates ` +
			`${attrsIn(m.lines, 'candidate').map((v) => `${candidate(v).port}/${candidate(v).component}`)}), ` +
			`relay to phone ${parseSdp(bodyOf(ok)).media[0].port}; rtpengine ICE checks to the browser: ${h.stun.length}`);
	}

	webrtcTest('a sipp phone calls SIP.js: the browser gets SAVPF with ICE, DTLS, actpass and rtcp-mux, the phone RTP/AVP; the phone hangs up and the session is gone', async (t) => {
		await phoneCallsBrowser(t, { browserHangsUp: false });
	});

	webrtcTest('a sipp phone calls SIP.js, the browser hangs up: the session is gone from rtpengine', async (t) => {
		await phoneCallsBrowser(t, { browserHangsUp: true });
	});

	/*
	 * browser -> browser (audio + VP8 video): ICE=force-relay DTLS=passive
	 * both ways.  Each browser gets the other's SDP with rtpengine's
	 * relay candidates added, the other's fingerprint (DTLS end to end)
	 * and setup roles that fit: actpass offered, active answered.
	 */
	async function browserCallsBrowser(t, { calleeHangsUp }) {
		const a = await browser('alice', { video: true });
		const b = await browser('bob', { video: true, secure: true });
		const s = await a.invite(b.aor);
		const cid = s.request.callId;
		await b.waitFor(() => b.invites.length === 1, 5000, 'INVITE');
		const sb = b.invites[0];
		await waitState(b, sb, SIP.SessionState.Established, 'call established');
		const { engine, reply } = await c.engineHolder(cid);
		const ha = a.sdhOf(s), hb = b.sdhOf(sb);
		const offer = assertWebRtc(hb.remote[0].sdp, "bob's INVITE (alice's offer)", {
			engine, setups: ['actpass'], relayTyp: 'relay', force: false, sections: 2,
		});
		const answer = assertWebRtc(ha.remote[0].sdp, "alice's 200 (bob's answer)", {
			engine, setups: ['active'], relayTyp: 'relay', force: false, sections: 2,
		});
		/* DTLS=passive between two WebRTC legs: rtpengine passes DTLS
		 * through, so each side sees the other's certificate. */
		for (const [sdp, peer, what] of [[offer, ha, "alice's offer"], [answer, hb, "bob's answer"]]) {
			for (const m of sdp.media)
				assert.equal(attr(sdp, m, 'fingerprint')[0], `sha-256 ${peer.fp}`, `${what} as received, m=${m.type}: fingerprint`);
			assert.deepEqual(sdp.media.map((m) => m.type), ['audio', 'video']);
			assert.deepEqual(sdp.media.map((m) => attr(sdp, m, 'mid')[0]), ['0', '1'], `${what}: a=mid kept`);
		}
		assert.ok(offer.media[1].fmts.includes('96') && /VP8/.test(offer.raw), 'VP8 offered');
		for (const l of legs(reply))
			for (const m of l.medias)
				assert.equal(m.protocol, SAVPF, `leg ${l.tag} ${m.type}: ${JSON.stringify(m)}`);
		if (calleeHangsUp) {
			await b.bye(sb);
			await a.waitFor(() => a.byes.includes(cid), 5000, 'BYE from bob');
		} else {
			await a.bye(s);
			await b.waitFor(() => b.byes.includes(cid), 5000, 'BYE from alice');
		}
		await c.assertEngineGone(cid, calleeHangsUp ? "the callee's BYE" : "the caller's BYE");
		const relays = (sdp) => sdp.media.map((m) => attrsIn(m.lines, 'candidate').map(candidate)
			.filter((x) => x.typ === 'relay').map((x) => `${m.type}:${x.port}/${x.component}`).join(',')).join(' ');
		t.diagnostic(`browser<->browser on ${engine.name}: relay candidates to bob ${relays(offer)}; to alice ${relays(answer)}; ` +
			`c=/m= to bob ${connOf(offer, offer.media[0])} ${offer.media[0].port} (alice's own host candidate ${ownPorts(ha.local[0].sdp)[0]})`);
	}

	webrtcTest('SIP.js calls SIP.js (WS to WSS, audio + video): both keep SAVPF, get relay candidates on 127.0.0.1, the peer\'s fingerprint and fitting a=setup; the caller hangs up and the session is gone', async (t) => {
		await browserCallsBrowser(t, { calleeHangsUp: false });
	});

	webrtcTest('SIP.js calls SIP.js, the callee hangs up: the session is gone from rtpengine', async (t) => {
		await browserCallsBrowser(t, { calleeHangsUp: true });
	});
});
