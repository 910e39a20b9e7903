/*
 * KwikyKonf - multi-party browser video chat over sipmesh.  There is no
 * conference server: the SIP proxy only registers and forks, every page
 * holds one SIP.js session (one RTCPeerConnection, media relayed by
 * rtpengine) to every other page of its room: a full mesh.
 *
 * ---- The protocol between pages ----------------------------------
 *
 * Addresses (D = the SIP domain: <meta name="sip-domain">, ?domain=,
 * else the page's host name; R = the room name, [a-z0-9_-], 1 to 32):
 *   private   sip:guest.R.<id>@D   one per tab; <id> is 10 random
 *                                  [a-z0-9] characters the edge picks
 *                                  (below), also the participant's id
 *   lobby     sip:conf.R@D         every participant of room R
 *   room      sip:conf.R@D         (open room: the lobby itself)
 *             sip:conf.R.<tag>@D   (room with a pass phrase)
 * Each tab runs two SIP.js user agents on two WebSockets to the edge
 * that served the page (ws:// for http:, wss:// for https:, same
 * host:port): the private agent registers the private address, sends
 * every request and takes every call; the conference agent registers
 * the lobby (and the room address of a protected room) and receives
 * what is sent to the room.  Sending and receiving the join on two
 * agents is what keeps a newcomer from tripping over its own MESSAGE
 * (the 2015 original answered itself 482); the conference agent
 * simply recognises its own id and ignores it.
 *
 * Credentials: pages have no accounts.  Before it connects, a tab asks
 * the edge it is about to use (the http(s) form of its WebSocket
 * address) for a guest of its room:
 *   GET /kk/guest?room=R  ->  200 {user, username, password, expires, ttl}
 * (Cache-Control: no-store; 400 for a bad room, 429 with Retry-After
 * when too many guests came from one address).  user is the private
 * address's user part, "guest.R.<id>"; username ("<expires>:<user>")
 * and password are the digest credentials of both agents (SIP.js
 * authorizationUsername/authorizationPassword), valid until expires
 * (seconds since the epoch; [edge] guest_ttl_s later, 12 h by default)
 * for the private address and the room's addresses conf.R and
 * conf.R.<tag> only: a guest can neither register another guest's
 * address nor another room's.  The password is a MAC of the username
 * under the cluster's key, so any core checks it and nothing is stored.
 * With [registrar] auth = no the cores never challenge and the
 * credentials go unused; the page fetches them all the same.  A tab
 * that stays longer than the ttl is refused when it next refreshes its
 * registrations: the others can no longer reach it, it has to join
 * again (which fetches new credentials).
 *
 * Messages are MESSAGE requests with a JSON body (application/json),
 * {kk: 1, t: <type>, ...}:
 *   probe    to the lobby, before joining.  Every participant answers
 *            200 with "X-KK-Room: open" or "X-KK-Room: locked"; 404/480
 *            (nobody registered) means the room is empty.
 *   knock    to the room address of a protected room: 200 means
 *            somebody is registered there, so the pass phrase is right;
 *            404/480 after the lobby said "locked" means it is wrong.
 *   join     {id, uri, name, ts, proof} to the room address, once the
 *            conference agent is registered there.  ts is the joiner's
 *            clock (ms) when it started joining; (ts, id) orders any
 *            two participants: the smaller one is "older".
 *   present  {id, uri, name, ts, proof} to a private address.
 *
 * Who calls whom: exactly one INVITE per pair, the older calls.
 *   On a join from P (not ourselves): if we are older than P we INVITE
 *   P's private address, else we send P a present.  On a present from
 *   P: if we are older and have no session with P, INVITE P.
 *   Every participant registers the room address before it sends its
 *   join, so of two participants at least one receives the other's
 *   join (the later REGISTER is stored before the later join is
 *   forked), whatever their timing: either the older one receives
 *   the younger's join and calls, or the younger receives the older's
 *   join and sends a present, which makes the older call.  Only the
 *   older ever calls, so two people joining at the same moment get
 *   one session, not two.  An INVITE from a participant we already
 *   have a live session with is refused with 486 (belt and braces).
 * INVITEs between participants carry
 *   X-KK: id=<id>;ts=<ts>;name=<uri-encoded>;proof=<hex>
 * naming the caller; an INVITE without X-KK is a plain SIP phone (or
 * anything else) calling: it is answered and gets a tile of its own,
 * whether it called the room address (the proxy forks it to everyone,
 * the oldest participant answers at once, the others only if no
 * CANCEL came within 4 s) or a private address directly.
 *
 * Pass phrase: PBKDF2-SHA-256(phrase, salt "kwikykonf|R", 200000
 * rounds) gives 40 bytes: the first 8 (hex) are <tag> in the room
 * address, the other 32 an HMAC-SHA-256 key.  In a protected room join
 * and present carry proof = HMAC(key, "<t>|<id>|<uri>|<ts>") and
 * INVITEs proof = HMAC(key, "call|<caller id>|<callee id>"); anything
 * without a valid proof is ignored (MESSAGE) or refused with 403
 * (INVITE).  Without the phrase one can neither find the room address
 * (so never learns the participants' random private addresses) nor
 * forge a join; the lobby only tells that the room is locked.  Any
 * guest of the room may register the room address (the core cannot
 * know the phrase), so this protects against people without the
 * phrase, not against the server's operator.
 *
 * Leaving: BYE on every session, un-REGISTER both agents, close the
 * WebSockets (Leave button, and on pagehide for a closed tab).
 * A participant that vanishes without leaving (tab crashed, network
 * lost) is found by any of:
 *   - the peer connection: connectionState "failed", or "disconnected"
 *     for more than 5 s (ICE consent or DTLS dead; with rtpengine in
 *     the middle this is our own side of the relay);
 *   - media: no inbound RTP packet for 6 s after media flowed (a
 *     crashed peer's relay leg goes silent; muted/camera-off tracks
 *     still send), or none at all 15 s after the call was answered;
 *   - SIP: an in-dialog INFO every 5 s; a 404/408/410/430/477/480/481
 *     or 5xx answer (the edge dropped the dead WebSocket's flow, or the
 *     request timed out) ends the session.
 * Then the session is ended (BYE, best effort) and its tile removed.
 *
 * Media: SIP.js's default session description handler with one local
 * camera/microphone stream, cloned per session (a session's close
 * stops its own tracks).  bundlePolicy "balanced" (rtpengine 10.5 has
 * no BUNDLE), rtcp-mux required, no ICE servers: nothing is fetched
 * from anywhere but the page's own server.  The proxy chooses the
 * rtpengine flags (browser/phone) per side.
 *
 * The "Call" box dials any SIP address (a phone); such calls, like
 * those from phones, are outside the mesh and get a hang-up button.
 *
 * Test hooks: window.kk.state(), window.kk.stats(), window.kk.dial(),
 * window.kk.log, window.kk.counters.
 */
import { Inviter, Messager, Registerer, RegistererState, SessionState, UserAgent, Web } from 'sip.js';

const params = new URLSearchParams(location.search);
const $ = (id) => document.getElementById(id);

function metaDomain() {
	const m = document.querySelector('meta[name="sip-domain"]');
	return m && m.content ? m.content.trim() : '';
}

/* ?video=WxH@fps, e.g. 320x240@15 (default 640x480@24). */
function videoConstraints(s) {
	const m = /^(\d+)x(\d+)(?:@(\d+))?$/.exec(s || '');
	const [w, h, fps] = m ? [Number(m[1]), Number(m[2]), Number(m[3] || 24)] : [640, 480, 24];
	return { width: { ideal: w }, height: { ideal: h }, frameRate: { ideal: fps, max: fps } };
}

const cfg = {
	domain: params.get('domain') || metaDomain() || location.hostname,
	server: params.get('server') || `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}`,
	video: videoConstraints(params.get('video')),
	expires: 300,
	msgTimeoutMs: 8000,
	pingMs: 5000,
	stallMs: 6000,
	phoneStallMs: 30000,
	noMediaMs: 15000,
	disconnectedMs: 5000,
	reconnectMs: 3000,
	roomRingMs: 4000,
	debug: params.get('debug') === '1',	/* SIP trace and notes on the console */
};

/* ---- small helpers ---- */

const hex = (buf) => Array.from(new Uint8Array(buf), (b) => b.toString(16).padStart(2, '0')).join('');

function within(p, ms, what) {
	let t;
	return Promise.race([
		Promise.resolve(p).finally(() => clearTimeout(t)),
		new Promise((_, rej) => { t = setTimeout(() => rej(new Error(`${what}: no answer within ${ms / 1000} s`)), ms); }),
	]);
}

/* (ts, id) order: true when a is older than b. */
function older(aTs, aId, bTs, bId) {
	return aTs < bTs || (aTs === bTs && aId < bId);
}

async function deriveRoomKey(room, phrase) {
	const enc = new TextEncoder();
	const base = await crypto.subtle.importKey('raw', enc.encode(phrase), 'PBKDF2', false, ['deriveBits']);
	const bits = new Uint8Array(await crypto.subtle.deriveBits({
		name: 'PBKDF2', hash: 'SHA-256', salt: enc.encode(`kwikykonf|${room}`), iterations: 200000,
	}, base, 320));
	const key = await crypto.subtle.importKey('raw', bits.slice(8, 40), { name: 'HMAC', hash: 'SHA-256' },
		false, ['sign']);
	return { tag: hex(bits.slice(0, 8)), key };
}

async function proofOf(text) {
	if (!me || !me.key) return '';
	return hex(await crypto.subtle.sign('HMAC', me.key, new TextEncoder().encode(text)));
}

async function proofOk(text, proof) {
	if (!me || !me.key) return true;	/* open room */
	return typeof proof === 'string' && proof.length === 64 && proof === await proofOf(text);
}

/* ---- state ---- */

let phase = 'idle';		/* idle | joining | joined | leaving */
let me = null;			/* {name, room, id, ts, uri, lobbyAor, roomAor, locked, key} */
let priv = null;		/* {ua, registerers} : the private agent */
let conf = null;		/* the conference agent */
let localStream = null;
let muted = false;
let cameraOff = false;
const peers = new Map();	/* key (participant id or call:<Call-ID>) -> peer */
const counters = { invitesOut: {}, invitesIn: {}, refused: 0, joinsSeen: 0, ownJoins: 0 };
const log = [];

function status(text, level = 'info') {
	log.push({ t: Date.now(), level, text });
	if (log.length > 500) log.splice(0, 100);
	const box = $('status');
	box.replaceChildren();
	if (!text) return;
	const d = document.createElement('span');
	d.className = `msg ${level}`;
	d.textContent = text;
	box.append(d);
}

function note(text) {
	log.push({ t: Date.now(), level: 'debug', text });
	if (cfg.debug) console.log(`kk: ${text}`);
}

/* ---- SIP plumbing ---- */

function mediaStreamFactory() {
	/* Each session gets its own clone: closing a session stops its tracks. */
	return Promise.resolve(localStream ? localStream.clone() : new MediaStream());
}

function mediaOptions() {
	return { constraints: { audio: true, video: !!(localStream && localStream.getVideoTracks().length) } };
}

function makeUA(aor, label, delegate) {
	const ua = new UserAgent({
		uri: UserAgent.makeURI(aor),
		displayName: me.name,
		/* Both agents are the same guest (the private address and the
		 * room's addresses, see the protocol). */
		authorizationUsername: me.cred.username,
		authorizationPassword: me.cred.password,
		transportOptions: { server: cfg.server, connectionTimeout: 5, traceSip: cfg.debug },
		sessionDescriptionHandlerFactory: Web.defaultSessionDescriptionHandlerFactory(mediaStreamFactory),
		sessionDescriptionHandlerFactoryOptions: {
			iceGatheringTimeout: 2000,
			peerConnectionConfiguration: { iceServers: [], bundlePolicy: 'balanced', rtcpMuxPolicy: 'require' },
		},
		userAgentString: 'KwikyKonf/1 (SIP.js 0.21)',
		noAnswerTimeout: 30,
		logBuiltinEnabled: false,
		logLevel: cfg.debug ? 'log' : 'warn',
		logConnector: (level, category, l, content) => note(`${label} ${level} ${category}: ${content}`),
		delegate: {
			...delegate,
			onDisconnect: (err) => { if (err) lostServer(label); },
		},
	});
	return { ua, label, registerers: [] };
}

/*
 * Guest credentials for room from the edge behind cfg.server (see the
 * protocol above): {user, username, password, expires, ttl}.
 */
async function guestCredentials(room) {
	const url = new URL(`/kk/guest?room=${encodeURIComponent(room)}`, cfg.server.replace(/^ws/, 'http'));
	let r;
	try {
		r = await within(fetch(url, { cache: 'no-store', credentials: 'omit' }), 7000, url.href);
	} catch (e) {
		throw new Error(`Cannot reach the sipmesh server at ${cfg.server} (${e.message || e}). Is it running?`);
	}
	const body = await r.json().catch(() => null);
	if (r.status === 429)
		throw new Error(`Too many people joined from your address; try again in ${r.headers.get('Retry-After') || 'a few'} s.`);
	if (!r.ok || !body || typeof body.user !== 'string' || !body.user.startsWith(`guest.${room}.`) ||
	    !/^[a-z0-9]{4,32}$/.test(body.user.slice(room.length + 7)) ||
	    typeof body.username !== 'string' || typeof body.password !== 'string')
		throw new Error(`The sipmesh server refused guest credentials for room ${room} (${r.status}${body && body.error ? `: ${body.error}` : ''}).`);
	return body;
}

async function startUA(agent) {
	try {
		await within(agent.ua.start(), 7000, `WebSocket to ${cfg.server}`);
	} catch (e) {
		throw new Error(`Cannot reach the sipmesh server at ${cfg.server} (${e.message || e}). Is it running?`);
	}
}

/* REGISTERs aor (default: the agent's own) and waits for the 200. */
async function register(agent, aor) {
	const opts = { expires: cfg.expires };
	if (aor) {
		const u = UserAgent.makeURI(aor);
		opts.params = { toUri: u, fromUri: u };
	}
	const r = new Registerer(agent.ua, opts);
	agent.registerers.push(r);
	let rejected = null;
	const ok = new Promise((res, rej) => {
		r.stateChange.addListener((s) => {
			if (s === RegistererState.Registered) res();
			if (s === RegistererState.Terminated) rej(new Error('registration terminated'));
		});
	});
	await r.register({ requestDelegate: { onReject: (resp) => { rejected = resp.message; } } });
	const failed = new Promise((_, rej) => {
		const iv = setInterval(() => {
			if (rejected) {
				clearInterval(iv);
				rej(new Error(`REGISTER ${aor || agent.label} refused: ${rejected.statusCode} ${rejected.reasonPhrase}`));
			}
		}, 50);
		ok.finally(() => clearInterval(iv)).catch(() => {});
	});
	await within(Promise.race([ok, failed]), 8000, `REGISTER ${aor || agent.label}`);
}

/* Sends a KwikyKonf MESSAGE; resolves with {code, header(name)}. */
function sendMessage(target, body) {
	const m = new Messager(priv.ua, UserAgent.makeURI(target), JSON.stringify({ kk: 1, ...body }), 'application/json');
	return within(new Promise((res, rej) => {
		const done = (r) => res({ code: r.message.statusCode, header: (n) => r.message.getHeader(n) });
		m.message({ requestDelegate: { onAccept: done, onReject: done } }).catch(rej);
	}), cfg.msgTimeoutMs, `MESSAGE to ${target}`);
}

function parseBody(req) {
	try {
		const b = JSON.parse(req.body);
		return b && b.kk === 1 && typeof b.t === 'string' ? b : null;
	} catch {
		return null;
	}
}

function validPeerInfo(b) {
	return b && typeof b.id === 'string' && /^[a-z0-9]{4,32}$/.test(b.id) &&
		typeof b.uri === 'string' && /^sip:guest\.[^@\s]+@[^\s]+$/.test(b.uri) &&
		Number.isFinite(Number(b.ts));
}

const peerName = (b) => String(b.name || 'guest').slice(0, 40);

/* ---- the conference agent: what is sent to the room ---- */

function onRoomMessage(m) {
	const b = parseBody(m.request);
	const toUser = m.request.to.uri.user;
	if (!b || !me) {
		m.reject({ statusCode: 415 });
		return;
	}
	switch (b.t) {
	case 'probe':
		m.accept({ statusCode: 200, extraHeaders: [`X-KK-Room: ${me.locked ? 'locked' : 'open'}`] });
		return;
	case 'knock':
		m.accept();
		return;
	case 'join':
		m.accept();
		if (b.id === me.id) {
			counters.ownJoins++;	/* our own join, forked back to us */
			return;
		}
		/* In a protected room joins count only on the room address. */
		if (toUser !== UserAgent.makeURI(me.roomAor).user) return;
		onJoinOrPresent(b);
		return;
	default:
		m.accept();
	}
}

/* ---- the private agent: messages and calls for this tab ---- */

function onPrivateMessage(m) {
	const b = parseBody(m.request);
	m.accept();
	if (b && b.t === 'present' && me && b.id !== me.id) onJoinOrPresent(b);
}

async function onJoinOrPresent(b) {
	if (phase !== 'joining' && phase !== 'joined') return;
	if (!validPeerInfo(b)) return;
	if (!await proofOk(`${b.t}|${b.id}|${b.uri}|${b.ts}`, b.proof)) {
		note(`ignored a ${b.t} from ${b.id} without a valid proof`);
		return;
	}
	if (b.t === 'join') counters.joinsSeen++;
	const weCall = older(me.ts, me.id, Number(b.ts), b.id);
	const proof = weCall ? await proofOf(`call|${me.id}|${b.id}`) : '';
	/* No await between this check and call()'s addPeer(). */
	const p = peers.get(b.id);
	if (p && !p.ended) return;	/* already in a session (or calling) */
	if (phase !== 'joining' && phase !== 'joined') return;
	if (weCall) {
		call(b, proof);
	} else if (b.t === 'join') {
		const proof = await proofOf(`present|${me.id}|${me.uri}|${me.ts}`);
		sendMessage(b.uri, { t: 'present', id: me.id, uri: me.uri, name: me.name, ts: me.ts, proof })
			.catch((e) => note(`present to ${b.uri}: ${e.message}`));
	}
}

function parseKK(h) {
	const o = {};
	for (const part of h.split(';')) {
		const i = part.indexOf('=');
		if (i > 0) o[part.slice(0, i).trim()] = part.slice(i + 1).trim();
	}
	try { o.name = decodeURIComponent(o.name || ''); } catch { o.name = ''; }
	return o.id && /^[a-z0-9]{4,32}$/.test(o.id) ? o : null;
}

async function onInvite(inv, fromRoom) {
	const req = inv.request;
	const kk = req.getHeader('X-KK');
	if (phase !== 'joining' && phase !== 'joined') {
		inv.reject({ statusCode: 480 });
		return;
	}
	if (kk) {
		const info = parseKK(kk);
		if (!info || fromRoom || !await proofOk(`call|${info.id}|${me.id}`, info.proof)) {
			counters.refused++;
			inv.reject({ statusCode: 403 });
			return;
		}
		const old = peers.get(info.id);
		if (old && !old.ended) {
			counters.refused++;
			inv.reject({ statusCode: 486 });
			return;
		}
		counters.invitesIn[info.id] = (counters.invitesIn[info.id] || 0) + 1;
		const p = addPeer({ key: info.id, id: info.id, name: info.name || 'guest', ts: Number(info.ts), dir: 'in', session: inv });
		inv.accept({ sessionDescriptionHandlerOptions: mediaOptions() })
			.catch((e) => endPeer(p, `answer failed: ${e.message}`));
		return;
	}
	/* A plain SIP phone (or any caller without X-KK). */
	const from = req.from;
	const name = (from.displayName || from.uri.user || 'phone').slice(0, 40);
	const p = addPeer({ key: `call:${req.callId}`, id: null, name: `${name} (phone)`, phone: true, dir: 'in', session: inv });
	inv.progress().catch(() => {});
	const answer = () => {
		if (p.ended || inv.state !== SessionState.Initial) return;
		inv.accept({ sessionDescriptionHandlerOptions: mediaOptions() })
			.catch((e) => endPeer(p, `answer failed: ${e.message}`));
	};
	/*
	 * A call to the room address rings every participant at once.  The
	 * oldest one answers at once and the proxy cancels the others;
	 * they answer after cfg.roomRingMs only if that did not happen (the
	 * oldest is gone), so a phone gets one answer, not one per page.
	 */
	const oldest = [...peers.values()].every((q) => q.phone || q.state !== 'connected' ||
		!Number.isFinite(q.ts) || older(me.ts, me.id, q.ts, q.id));
	if (!fromRoom || oldest) answer();
	else setTimeout(answer, cfg.roomRingMs);
}

function call(b, proof) {
	counters.invitesOut[b.id] = (counters.invitesOut[b.id] || 0) + 1;
	const hdr = `X-KK: id=${me.id};ts=${me.ts};name=${encodeURIComponent(me.name)}` + (proof ? `;proof=${proof}` : '');
	const inv = new Inviter(priv.ua, UserAgent.makeURI(b.uri), {
		extraHeaders: [hdr],
		sessionDescriptionHandlerOptions: mediaOptions(),
	});
	const p = addPeer({ key: b.id, id: b.id, name: peerName(b), ts: Number(b.ts), dir: 'out', session: inv });
	inv.invite({
		requestDelegate: { onReject: (r) => endPeer(p, `call refused: ${r.message.statusCode}`) },
	}).catch((e) => endPeer(p, `call failed: ${e.message}`));
}

/* Calls any SIP address (a phone, a SIP client): a tile of its own. */
function dial(target) {
	if (phase !== 'joined') return null;
	let t = String(target || '').trim();
	if (!t) return null;
	if (!/^sips?:/i.test(t)) t = `sip:${t}`;
	if (!t.includes('@')) t += `@${cfg.domain}`;
	const uri = UserAgent.makeURI(t);
	if (!uri) {
		status(`"${target}" is not a SIP address.`, 'error');
		return null;
	}
	const inv = new Inviter(priv.ua, uri, { sessionDescriptionHandlerOptions: mediaOptions() });
	const p = addPeer({ key: `call:${inv.request.callId}`, id: null, name: t.replace(/^sips?:/i, ''), phone: true, dir: 'out', session: inv });
	inv.invite({
		requestDelegate: {
			onReject: (r) => {
				status(`${t}: ${r.message.statusCode} ${r.message.reasonPhrase}`, 'error');
				endPeer(p, `call refused: ${r.message.statusCode}`);
			},
		},
	}).catch((e) => endPeer(p, `call failed: ${e.message}`));
	return p.key;
}

/* ---- peers and their tiles ---- */

function addPeer(o) {
	const p = { ...o, ended: false, state: 'connecting', startedAt: Date.now() };
	peers.set(p.key, p);
	const tile = document.createElement('div');
	tile.className = `tile remote${p.phone ? ' phone' : ''}`;
	tile.dataset.peer = p.key;
	tile.dataset.state = 'connecting';
	const video = document.createElement('video');
	video.autoplay = true;
	video.playsInline = true;
	const label = document.createElement('div');
	label.className = 'label';
	const who = document.createElement('span');
	who.className = 'who';
	who.textContent = p.name;
	const st = document.createElement('span');
	st.className = 'state';
	st.textContent = 'connecting...';
	label.append(who, st);
	tile.append(video, label);
	if (p.phone) {
		/* Phones are not part of the mesh: they can be hung up one by one. */
		const bye = document.createElement('button');
		bye.type = 'button';
		bye.className = 'hangup';
		bye.title = 'Hang up';
		bye.textContent = '\u00d7';
		bye.addEventListener('click', () => endPeer(p, 'hung up'));
		tile.append(bye);
	}
	$('tiles').append(tile);
	p.tile = tile;
	p.video = video;
	p.stateEl = st;

	const s = p.session;
	s.delegate = {
		onBye: (bye) => { p.byeReason = 'left'; bye.accept().catch(() => {}); },
		onInfo: (info) => { info.accept().catch(() => {}); },
	};
	s.stateChange.addListener((ns) => {
		if (ns === SessionState.Established) established(p);
		else if (ns === SessionState.Terminated) endPeer(p, p.byeReason || 'ended');
	});
	updateCount();
	return p;
}

function established(p) {
	if (p.ended) return;
	p.state = 'connected';
	p.establishedAt = Date.now();
	p.tile.dataset.state = 'connected';
	p.stateEl.textContent = '';
	const sdh = p.session.sessionDescriptionHandler;
	if (sdh) {
		p.pc = sdh.peerConnection;
		p.video.srcObject = sdh.remoteMediaStream;
		p.video.play().catch(() => {});
	}
	p.lastPackets = 0;
	p.lastChange = Date.now();
	p.monitor = setInterval(() => watch(p), 1000);
	if (!p.phone) p.ping = setInterval(() => ping(p), cfg.pingMs);
	updateCount();
	status(`${p.name} joined`);
}

async function inbound(pc) {
	const out = { audio: { bytes: 0, packets: 0 }, video: { bytes: 0, packets: 0, framesDecoded: 0 } };
	const report = await pc.getStats();
	report.forEach((r) => {
		if (r.type !== 'inbound-rtp') return;
		const k = r.kind || r.mediaType;
		if (!out[k]) return;
		out[k].bytes += r.bytesReceived || 0;
		out[k].packets += r.packetsReceived || 0;
		if (k === 'video') out[k].framesDecoded += r.framesDecoded || 0;
	});
	return out;
}

/* Once a second: is the peer still there? */
async function watch(p) {
	if (p.ended || !p.pc) return;
	const now = Date.now();
	const cs = p.pc.connectionState;
	if (cs === 'failed') {
		endPeer(p, 'connection failed (ICE/DTLS)');
		return;
	}
	if (cs === 'disconnected' || p.pc.iceConnectionState === 'disconnected') {
		p.discoSince = p.discoSince || now;
		if (now - p.discoSince > cfg.disconnectedMs) {
			endPeer(p, 'connection lost (ICE)');
			return;
		}
	} else {
		p.discoSince = 0;
	}
	let st;
	try { st = await inbound(p.pc); } catch { return; }
	const packets = st.audio.packets + st.video.packets;
	if (packets > p.lastPackets) {
		p.lastPackets = packets;
		p.lastChange = now;
		p.mediaStarted = true;
	} else if (p.mediaStarted && now - p.lastChange > (p.phone ? cfg.phoneStallMs : cfg.stallMs)) {
		endPeer(p, 'no media from the peer');
	} else if (!p.mediaStarted && now - p.establishedAt > cfg.noMediaMs) {
		endPeer(p, 'media never started');
	}
}

const DEAD = new Set([404, 408, 410, 430, 477, 480, 481]);

function ping(p) {
	if (p.ended || p.session.state !== SessionState.Established || p.pinging) return;
	p.pinging = true;
	p.session.info({
		requestOptions: { body: { contentDisposition: 'render', contentType: 'application/kwikykonf-ping', content: 'ping' } },
		requestDelegate: {
			onAccept: () => { p.pinging = false; },
			onReject: (r) => {
				p.pinging = false;
				const c = r.message.statusCode;
				if (DEAD.has(c) || c >= 500) endPeer(p, `peer unreachable (${c})`);
			},
		},
	}).catch(() => { p.pinging = false; });
}

function endPeer(p, reason) {
	if (p.ended) return;
	p.ended = true;
	p.endReason = reason;
	clearInterval(p.monitor);
	clearInterval(p.ping);
	if (peers.get(p.key) === p) peers.delete(p.key);
	p.tile.remove();
	try { p.session.dispose().catch(() => {}); } catch { /* already gone */ }
	updateCount();
	if (phase === 'joined' && p.state === 'connected') status(`${p.name} left (${reason})`);
	note(`session with ${p.key} ended: ${reason}`);
}

function updateCount() {
	const n = [...peers.values()].filter((p) => p.state === 'connected').length;
	$('room-count').textContent = `${n + 1} here`;
}

/* ---- join / leave ---- */

async function localMedia() {
	if (!window.isSecureContext || !navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
		throw new Error('The camera needs a secure page: open this page over https:// (or from http://localhost / 127.0.0.1).');
	}
	try {
		return await navigator.mediaDevices.getUserMedia({ audio: true, video: cfg.video });
	} catch (e) {
		try {
			const s = await navigator.mediaDevices.getUserMedia({ audio: true });
			me.warning = `Camera unavailable (${e.name}): joining with audio only.`;
			return s;
		} catch {
			throw new Error(`Camera and microphone unavailable (${e.name}: ${e.message}). ` +
				'Allow them for this page, or plug one in, then join again.');
		}
	}
}

async function join(ev) {
	ev.preventDefault();
	if (phase !== 'idle') return;
	const name = $('name').value.trim().slice(0, 40);
	const room = $('room').value.trim().toLowerCase();
	const phrase = $('phrase').value;
	if (!name || !/^[a-z0-9_-]{1,32}$/.test(room)) {
		status('Pick a name and a room (letters, digits, - and _).', 'error');
		return;
	}
	$('join-form').classList.remove('needs-phrase');
	phase = 'joining';
	setForm(false);
	me = {
		name, room, id: null, uri: null, cred: null, ts: Date.now(), locked: false, key: null,
		lobbyAor: `sip:conf.${room}@${cfg.domain}`,
	};
	me.roomAor = me.lobbyAor;
	try {
		status('Starting the camera...');
		localStream = await localMedia();
		$('local-video').srcObject = localStream;
		applyTrackState();
		let lockedAor = null;
		if (phrase) {
			const k = await deriveRoomKey(room, phrase);
			lockedAor = `sip:conf.${room}.${k.tag}@${cfg.domain}`;
			me.key = k.key;
		}
		status(`Connecting to ${cfg.server}...`);
		me.cred = await guestCredentials(room);
		me.uri = `sip:${me.cred.user}@${cfg.domain}`;
		me.id = me.cred.user.slice(me.cred.user.lastIndexOf('.') + 1);
		priv = makeUA(me.uri, 'private', {
			onMessage: onPrivateMessage,
			onInvite: (inv) => onInvite(inv, false),
		});
		await startUA(priv);
		await register(priv);

		status(`Looking for room ${room}...`);
		const probe = await sendMessage(me.lobbyAor, { t: 'probe' });
		const exists = probe.code >= 200 && probe.code < 300;
		if (!exists && ![404, 408, 410, 430, 480].includes(probe.code))
			throw new Error(`The server answered ${probe.code} when looking for the room.`);
		const locked = exists && /locked/i.test(probe.header('X-KK-Room') || '');
		if (exists && locked && !phrase) {
			$('join-form').classList.add('needs-phrase');
			await quit();
			status(`Room ${room} is protected: enter its pass phrase.`, 'error');
			$('phrase').focus();
			return;
		}
		if (exists && !locked && phrase) {
			await quit();
			status(`Room ${room} is open (it has no pass phrase): leave the pass phrase empty to join it.`, 'error');
			return;
		}
		if (exists && locked) {
			const knock = await sendMessage(lockedAor, { t: 'knock' });
			if (knock.code < 200 || knock.code >= 300) {
				$('join-form').classList.add('needs-phrase');
				await quit();
				status(`Wrong pass phrase for room ${room}.`, 'error');
				return;
			}
		}
		if (phrase) {
			me.locked = true;
			me.roomAor = lockedAor;
		}

		conf = makeUA(me.lobbyAor, 'conference', {
			onMessage: onRoomMessage,
			onInvite: (inv) => onInvite(inv, true),
		});
		await startUA(conf);
		await register(conf);
		if (me.locked) await register(conf, me.roomAor);

		phase = 'joined';
		showRoom(true);
		await sendJoin();
		status(me.warning || `You are in room ${room}${me.locked ? ' (protected)' : ''}.`, me.warning ? 'error' : 'info');
	} catch (e) {
		await quit();
		status(e.message || String(e), 'error');
	}
}

async function sendJoin() {
	const proof = await proofOf(`join|${me.id}|${me.uri}|${me.ts}`);
	const r = await sendMessage(me.roomAor, { t: 'join', id: me.id, uri: me.uri, name: me.name, ts: me.ts, proof });
	note(`join answered ${r.code}`);
}

/* Ends every session, un-registers, disconnects; back to the form. */
async function quit() {
	phase = 'leaving';
	for (const p of [...peers.values()]) endPeer(p, 'we left');
	const agents = [priv, conf].filter(Boolean);
	await Promise.allSettled(agents.flatMap((a) => a.registerers.map((r) =>
		within(r.unregister(), 2000, 'un-REGISTER').catch(() => {}))));
	await Promise.allSettled(agents.map((a) => within(a.ua.stop(), 2000, 'stop').catch(() => {})));
	priv = conf = null;
	clearTimeout(reconnectTimer);
	reconnectTimer = null;
	if (localStream) localStream.getTracks().forEach((t) => t.stop());
	localStream = null;
	$('local-video').srcObject = null;
	showRoom(false);
	setForm(true);
	phase = 'idle';
}

async function leave() {
	if (phase !== 'joined') return;
	await quit();
	status('You left the room.');
}

/* A closed tab: fire the BYEs and un-REGISTERs, no time to wait. */
function pageGone() {
	if (phase !== 'joined' && phase !== 'joining') return;
	phase = 'leaving';
	for (const p of [...peers.values()]) endPeer(p, 'page closed');
	for (const a of [priv, conf].filter(Boolean))
		for (const r of a.registerers) r.unregister().catch(() => {});
}

/* ---- losing the server ---- */

let reconnectTimer = null;

function lostServer(label) {
	if (phase !== 'joined' || reconnectTimer) return;
	status(`Lost the connection to the sipmesh server (${cfg.server}, ${label} agent); reconnecting...`, 'error');
	const attempt = async () => {
		reconnectTimer = null;
		if (phase !== 'joined') return;
		try {
			for (const a of [priv, conf]) {
				if (!a.ua.isConnected()) await within(a.ua.reconnect(), 5000, 'reconnect');
			}
			for (const a of [priv, conf])
				for (const r of a.registerers) await r.register();
			await sendJoin();
			status(`Reconnected to ${cfg.server}.`);
		} catch (e) {
			status(`The sipmesh server (${cfg.server}) is unavailable: ${e.message}; trying again...`, 'error');
			reconnectTimer = setTimeout(attempt, cfg.reconnectMs);
		}
	};
	reconnectTimer = setTimeout(attempt, 500);
}

/* ---- controls ---- */

function applyTrackState() {
	const streams = [localStream];
	for (const p of peers.values()) {
		const sdh = p.session.sessionDescriptionHandler;
		if (sdh && sdh.peerConnection)
			for (const s of sdh.peerConnection.getSenders()) if (s.track) streams.push({ getTracks: () => [s.track] });
	}
	for (const s of streams.filter(Boolean)) {
		for (const t of s.getTracks()) {
			if (t.kind === 'audio') t.enabled = !muted;
			if (t.kind === 'video') t.enabled = !cameraOff;
		}
	}
	$('mute').textContent = muted ? 'Unmute' : 'Mute';
	$('mute').setAttribute('aria-pressed', String(muted));
	$('camera').textContent = cameraOff ? 'Camera on' : 'Camera off';
	$('camera').setAttribute('aria-pressed', String(cameraOff));
	$('local-tile').classList.toggle('camera-off', cameraOff);
	$('local-tile').querySelector('.state').textContent = [muted && 'muted', cameraOff && 'camera off'].filter(Boolean).join(', ');
}

function setForm(enabled) {
	for (const el of $('join-form').elements) el.disabled = !enabled;
	$('join-form').hidden = !enabled && phase === 'joined';
}

function showRoom(on) {
	$('room-view').hidden = !on;
	$('join-form').hidden = on;
	if (on) {
		$('room-title').textContent = `Room ${me.room}${me.locked ? ' \u{1F512}' : ''}`;
		$('me-address').textContent = `Your address: ${me.uri} (a SIP phone can call it; calling ${me.lobbyAor} reaches the room)`;
		updateCount();
		history.replaceState(null, '', `#${encodeURIComponent(me.room)}`);
	}
}

function init() {
	$('join-form').addEventListener('submit', join);
	$('leave').addEventListener('click', leave);
	$('dial-form').addEventListener('submit', (ev) => {
		ev.preventDefault();
		if (dial($('dial').value)) $('dial').value = '';
	});
	$('mute').addEventListener('click', () => { muted = !muted; applyTrackState(); });
	$('camera').addEventListener('click', () => { cameraOff = !cameraOff; applyTrackState(); });
	window.addEventListener('pagehide', pageGone);
	window.addEventListener('beforeunload', pageGone);
	const h = decodeURIComponent(location.hash.slice(1));
	if (/^[A-Za-z0-9_-]{1,32}$/.test(h)) $('room').value = h;
	if (params.get('room')) $('room').value = params.get('room');
	if (params.get('name')) $('name').value = params.get('name');
	try {
		const saved = localStorage.getItem('kk-name');
		if (saved && !$('name').value) $('name').value = saved;
		$('name').addEventListener('change', () => localStorage.setItem('kk-name', $('name').value));
	} catch { /* no storage */ }
	if (!window.isSecureContext)
		status('This page is not secure, so the browser will not open the camera: use the https:// address (or http://localhost).', 'error');
}

/* ---- test hooks ---- */

window.kk = {
	log,
	counters,
	state: () => ({
		phase,
		id: me && me.id,
		uri: me && me.uri,
		room: me && me.room,
		roomAor: me && me.roomAor,
		locked: !!(me && me.locked),
		server: cfg.server,
		peers: [...peers.values()].map((p) => ({
			key: p.key, id: p.id, name: p.name, phone: !!p.phone, dir: p.dir, state: p.state,
			connectionState: p.pc ? p.pc.connectionState : null,
		})),
		tiles: [...document.querySelectorAll('#tiles .tile.remote')].map((t) => t.dataset.peer),
	}),
	dial,
	/* Inbound media per connected peer, from RTCPeerConnection.getStats(). */
	stats: async () => {
		const out = {};
		for (const p of peers.values()) {
			if (!p.pc) continue;
			out[p.key] = { connectionState: p.pc.connectionState, ...(await inbound(p.pc)) };
		}
		return out;
	},
};

init();
