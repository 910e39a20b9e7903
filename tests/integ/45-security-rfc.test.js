'use strict';
/*
 * 45 security rfc: regressions of a review's findings (commit "core:
 * signed flow tokens, no relay on preloaded foreign Routes ...").  Each
 * test fails against the code before that commit:
 *   - flow tokens in our Record-Route are signed: an attacker on UDP
 *     who guesses "sm-f<edge>-<incarnation>.<serial>-<transport>" (the
 *     edge's real incarnation, every serial; with or without a made-up
 *     or another connection's mac; the form of before incarnations)
 *     reaches no TCP or WebSocket client, while real in-dialog requests
 *     still go down the flow;
 *   - a preloaded Route that is not ours on an initial request is
 *     dropped (no UDP datagram to it, no TCP connection to it), the
 *     request is routed as if it had none;
 *   - our own Route on an initial request (we are the outbound proxy)
 *     is consumed: REGISTER gets 200, MESSAGE/INVITE are delivered;
 *   - a Contact naming the cluster's Redis or an edge's own listener is
 *     never a next hop (Redis keeps its keys after a FLUSHALL body, a
 *     Contact at the edge makes no loop), the sender gets an error;
 *   - a 2xx after the caller's CANCEL still reaches the caller (RFC
 *     3261 16.7 step 5);
 *   - a callee that rings and then ignores our CANCEL ends the call
 *     64*T1 after the CANCEL (RFC 3261 9.1), not at timer C;
 *   - junk q values get 400 (and CSeq at or above 2^31, which the edge
 *     already refused before that commit: a guard, not a regression);
 *   - SDP in a MESSAGE is not a media offer (no rtpengine session).
 */
const assert = require('node:assert/strict');
const net = require('node:net');
const { describe } = require('node:test');
const { cluster, rand, waitUntil, HOST } = require('./lib/cluster');
const { buildRequest, buildResponse, newBranch, parseNameAddr } = require('./lib/sip');
const { Registration, barrier } = require('./lib/flows');
const { closingListener, acceptBarrier } = require('./lib/wait');
const { streamCluster, StreamUA, SipJsUA, SDP } = require('./lib/ws');

/* The flow token in a list of Record-Route values: {user, edge, inc
 * (the edge process's incarnation, hex), conn (the serial), transport, mac}. */
function flowToken(rrs) {
	for (const rr of rrs) {
		const m = /sip:(sm-f(\d+)-([0-9a-f]{8})\.(\d+)-(\d+)(?:-([0-9a-f]+))?)@/i.exec(rr);
		if (m) {
			return { user: m[1], edge: Number(m[2]), inc: m[3], conn: Number(m[4]), transport: Number(m[5]),
				mac: m[6], rr };
		}
	}
	return null;
}

function tagOf(v) {
	const m = /;\s*tag=([^;>\s]+)/i.exec(v || '');
	return m ? m[1] : undefined;
}

function uriOf(v) {
	return parseNameAddr(v).uri;
}

/* Sends CANCEL for an INVITE sent with ua.request(); the INVITE's
 * transaction keeps its branch, so the CANCEL's answer ends up in
 * ua.stray.  Resolves with that answer. */
async function cancel(ua, tx, ms = 5000) {
	const o = tx.opts;
	ua.sendRaw(tx.dest, buildRequest({ ...o, method: 'CANCEL', cseqMethod: 'CANCEL', body: undefined,
		contact: undefined, headers: [] }));
	await waitUntil(() => ua.stray.some((r) => r.branch === tx.branch && r.cseq && r.cseq.method === 'CANCEL'),
		ms, 'an answer to the CANCEL');
	return ua.stray.find((r) => r.branch === tx.branch && r.cseq && r.cseq.method === 'CANCEL');
}

/* ACK for a 2xx of an INVITE sent with ua.request(), along its route set. */
function ack2xx(ua, tx, ok) {
	const o = tx.opts;
	const routes = ok.list('record-route').reverse().map((r) => ['Route', r]);
	ua.request(tx.dest, {
		method: 'ACK', ruri: uriOf(ok.get('contact')), from: o.from, fromTag: o.fromTag, to: o.to,
		toTag: tagOf(ok.get('to')), callId: o.callId, cseq: o.cseq, headers: routes, retransmit: false,
	});
	return routes;
}

describe('45 security rfc', () => {
	describe('flows and routes (UDP, TCP, WS)', () => {
		const c = streamCluster({ name: '45-security-rfc', edges: 1, cores: 2, proxy: { t1_ms: 100, t2_ms: 400 } });
		const streams = [];
		const sipjs = [];

		function sTest(name, fn) {
			c.test(name, async (t) => {
				try {
					await fn(t);
				} finally {
					for (const u of streams.splice(0)) u.close();
					for (const u of sipjs.splice(0)) await u.stop();
				}
			});
		}

		async function tcpClient(label) {
			const u = await StreamUA.open(c.tcpDest());
			streams.push(u);
			c.addEvidence(`TCP client ${label}`, { toString: () => u.transcript.join('\n') });
			return u;
		}

		/*
		 * A MESSAGE from a UDP UA to user, registered over the TCP
		 * connection u: resolves once it came down u and was answered
		 * (TCP keeps order: whatever the edge wrote to u before is in).
		 */
		async function streamBarrier(u, user) {
			const sender = await c.ua('barrier');
			const body = `barrier-${rand(4)}`;
			const tx = sender.request(c.edge(), {
				method: 'MESSAGE', ruri: `sip:${user}@a.test`, from: 'sip:barrier@a.test', to: `sip:${user}@a.test`,
				body, contentType: 'text/plain',
			});
			const m = await u.waitRequest((x) => x.method === 'MESSAGE' && x.body.toString() === body,
				5000, `barrier MESSAGE to ${user}`);
			u.write(buildResponse(m, 200, 'OK'));
			assert.equal((await tx.finalResponse(5000)).status, 200);
		}

		async function tcpRegister(u, user) {
			const r = await u.send({
				method: 'REGISTER', ruri: 'sip:a.test', from: `sip:${user}@a.test`, to: `sip:${user}@a.test`,
				user, expires: 300,
			});
			assert.equal(r.status, 200, `REGISTER over TCP got ${r.status} ${r.reason}`);
		}

		/* A UDP UA with a binding for user@a.test. */
		async function udpUser(label, user = `${label}-${rand(3)}`) {
			const ua = await c.ua(label);
			await new Registration(ua, c.edge(), user).register(300);
			return { ua, user, aor: `sip:${user}@a.test` };
		}

		/*
		 * Forged in-dialog and initial MESSAGEs from a UDP attacker with
		 * Route <sip:<user>@<host:port>;transport=..;lr> for every user;
		 * asserts that the proxy answers each of them itself with an
		 * error within 4 s (one it had forwarded to a client, who never
		 * answers, would end in 408 after 64*T1 = 6.4 s).  Once every
		 * answer is in, the proxy has decided about every forged request:
		 * a barrier down a flow after that arrives after anything it
		 * sent down that flow.  Returns the marker in their bodies.
		 */
		async function forge(users, hostport, tp) {
			const att = await c.ua('attacker');
			const marker = `forged-${rand(6)}`;
			const all = [];
			for (const u of users)
				for (const inDialog of [true, false])
					all.push({ u, inDialog });
			for (let i = 0; i < all.length; i += 40) {
				const batch = all.slice(i, i + 40);
				const txs = batch.map(({ u, inDialog }) => att.request(c.edge(), {
					method: 'MESSAGE', ruri: 'sip:anyone@a.test', from: 'sip:ceo@a.test', to: 'sip:victim@a.test',
					toTag: inDialog ? rand(4) : undefined, body: `${marker} ${u}`, contentType: 'text/plain',
					headers: [['Route', `<sip:${u}@${hostport}${tp ? `;transport=${tp}` : ''};lr>`]],
				}));
				const rs = await Promise.all(txs.map((tx) => tx.finalResponse(4000)));
				const ok = batch.filter((_, k) => rs[k].status < 300)
					.map(({ u, inDialog }) => `${u}${inDialog ? ' in dialog' : ''}`);
				assert.deepEqual(ok, [], 'forged requests with these flow tokens got 2xx answers');
			}
			return marker;
		}

		/*
		 * Whether u is the real, signed token of a dialog (which only
		 * its parties know).  An unsigned token is never "real": it is
		 * exactly what anyone can guess.
		 */
		function isReal(u, tok) {
			return !!tok.mac && u === tok.user;
		}

		/* Every flow-token user an attacker might try for serials 1..n
		 * of incarnation inc (the edge's own: anyone in a dialog with a
		 * flow sees it): bare, with a made-up mac, with the mac of
		 * another flow, and the form of before incarnations. */
		function guesses(n, t, inc, realMac) {
			const out = [];
			for (let k = 1; k <= n; k++) {
				out.push(`sm-f1-${inc}.${k}-${t}`, `sm-f1-${inc}.${k}-${t}-${rand(8)}`, `sm-f1-${k}-${t}`);
				if (realMac) out.push(`sm-f1-${inc}.${k}-${t}-${realMac}`);
			}
			return out;
		}

		sTest('forged flow tokens reach no TCP client; a real dialog still goes down its connection', async () => {
			/* A TCP victim with a real dialog, and forged tokens for every conn id up to 40 and past its own. */
			const victim = await tcpClient('victim');
			const vuser = `victim-${rand(3)}`;
			await tcpRegister(victim, vuser);
			/* A second TCP client: nothing may reach it either. */
			const own = await tcpClient('bystander');
			const ownUser = `own-${rand(3)}`;
			await tcpRegister(own, ownUser);

			/* A real call UDP -> TCP victim: the victim's token comes in the INVITE's Record-Route. */
			const caller = await c.ua('caller');
			const callTx = caller.request(c.edge(), {
				method: 'INVITE', ruri: `sip:${vuser}@a.test`, from: 'sip:caller@a.test', to: `sip:${vuser}@a.test`,
				contact: [`<${caller.contactUri('caller')}>`], body: SDP('caller'), contentType: 'application/sdp',
			});
			const inv = await victim.waitRequest((m) => m.method === 'INVITE', 5000, 'INVITE');
			const vtok = flowToken(inv.list('record-route'));
			assert.ok(vtok, `a flow token in the Record-Route ${JSON.stringify(inv.list('record-route'))}`);
			assert.equal(vtok.transport, 2, 'the token names TCP');
			victim.reply(inv, 180, 'Ringing');
			victim.reply(inv, 200, 'OK', { body: SDP('victim') });
			const ok = await callTx.waitFor((r) => r.status === 200, 5000, '200');
			const routes = ack2xx(caller, callTx, ok);
			await victim.waitRequest((m) => m.method === 'ACK', 5000, 'ACK');

			const hostport = `${HOST}:${c.edge().port}`;
			const n = Math.max(40, vtok.conn + 5);
			const marker = await forge(guesses(n, 2, vtok.inc, vtok.mac).filter((u) => !isReal(u, vtok)), hostport, 'tcp');
			/* The same guesses without ;transport (t7.py's form). */
			const marker2 = await forge(guesses(n, 2, vtok.inc).filter((u) => !isReal(u, vtok)), hostport, null);

			/* The real route set still works: BYE reaches the victim, then a barrier MESSAGE. */
			const byeTx = caller.request(c.edge(), {
				method: 'BYE', ruri: uriOf(ok.get('contact')), from: 'sip:caller@a.test', fromTag: callTx.opts.fromTag,
				to: `sip:${vuser}@a.test`, toTag: tagOf(ok.get('to')), callId: callTx.opts.callId, cseq: 2,
				headers: routes,
			});
			const bye = await victim.waitRequest((m) => m.method === 'BYE', 5000, 'BYE along the real route set');
			victim.write(buildResponse(bye, 200, 'OK'));
			assert.equal((await byeTx.finalResponse(5000)).status, 200);
			/* Every forged request was answered: a barrier down each
			 * connection now comes after anything forged down it. */
			await streamBarrier(victim, vuser);
			await streamBarrier(own, ownUser);
			const leaked = [...victim.requests, ...own.requests]
				.filter((m) => m.body && (m.body.includes(marker) || m.body.includes(marker2)));
			assert.deepEqual(leaked.map((m) => `${m.method} ${m.body.toString()}`), [],
				`forged Routes (conn 1..${n}, real conn ${vtok.conn}) delivered requests down a TCP flow`);
		});

		sTest('forged flow tokens reach no WebSocket client; SIP.js still gets the callee\'s BYE', async () => {
			const ws = await SipJsUA.open({ user: `wsv-${rand(3)}`, server: c.wsUrl(1) });
			sipjs.push(ws);
			c.addEvidence(`SIP.js ${ws.user} log`, { toString: () => ws.log.join('\n') });
			const frames = [];
			ws.socket.on('message', (d) => frames.push(String(d)));

			/* SIP.js calls a raw UDP UA, which answers by hand. */
			const callee = await udpUser('callee');
			callee.ua.handler = (req) => (req.method === 'INVITE' ? 180 : 200);
			const calling = ws.invite(callee.aor);
			const inv = await callee.ua.waitRequest((m) => m.method === 'INVITE', 5000, 'INVITE from SIP.js');
			const rrs = inv.list('record-route');
			const tok = flowToken(rrs);
			assert.ok(tok, `a flow token in the Record-Route ${JSON.stringify(rrs)}`);
			assert.equal(tok.transport, 4, 'the token names WS');
			await callee.ua.sendRaw(inv.source, buildResponse(inv, 200, 'OK', {
				toTag: callee.ua.toTag, headers: [['Contact', `<${callee.ua.contactUri(callee.user)}>`]],
				body: SDP('callee'), contentType: 'application/sdp',
			}));
			const session = await calling;
			await callee.ua.waitRequest((m) => m.method === 'ACK', 5000, 'ACK from SIP.js');

			const wsport = c.ports[1].ws;
			const n = Math.max(40, tok.conn + 5);
			const marker = await forge(guesses(n, 4, tok.inc, tok.mac).filter((u) => !isReal(u, tok)), `${HOST}:${wsport}`, 'ws');
			const marker2 = await forge(guesses(n, 4, tok.inc).filter((u) => !isReal(u, tok)), c.edge().addr, null);

			/* The callee's BYE along the real Record-Route reaches SIP.js. */
			const bye = await callee.ua.send(c.edge(), {
				method: 'BYE', ruri: uriOf(inv.get('contact')), from: uriOf(inv.get('to')), fromTag: callee.ua.toTag,
				to: uriOf(inv.get('from')), toTag: tagOf(inv.get('from')), callId: inv.callId, cseq: 1,
				headers: rrs.map((r) => ['Route', r]),
			});
			assert.equal(bye.status, 200, `BYE along the route set got ${bye.status} ${bye.reason}`);
			await ws.waitFor(() => ws.byes.includes(inv.callId), 5000, 'BYE');
			void session;
			/* Every forged request was answered: a barrier MESSAGE down
			 * the WebSocket now comes after anything forged down it. */
			const s = await c.ua('sender');
			const m = await s.send(c.edge(), {
				method: 'MESSAGE', ruri: ws.aor, from: 'sip:sender@a.test', to: ws.aor, body: 'barrier',
				contentType: 'text/plain',
			});
			assert.equal(m.status, 200);
			await ws.waitMessage('barrier');
			const leaked = frames.filter((f) => f.includes(marker) || f.includes(marker2));
			assert.deepEqual(leaked, [], `forged Routes (conn 1..${n}, real conn ${tok.conn}) reached the WebSocket`);
		});

		sTest('a preloaded foreign Route on an initial request is dropped: no datagram, no TCP connection', async () => {
			const listener = await c.ua('evil-next-hop');
			listener.handler = () => 200;
			const tl = await closingListener();
			try {
				const bob = await udpUser('bob');
				const ghost = `ghost-${rand(3)}`;
				const sender = await c.ua('sender');
				/* The UDP listener is also registered: a barrier MESSAGE to
				 * it leaves the edge's socket after anything the edge sent
				 * it before. */
				const evil = `evil-${rand(3)}`;
				await new Registration(listener, c.edge(), evil).register(300);
				const isBarrier = (m) => m.body.toString('latin1').startsWith('barrier');
				const nothingForeign = async (what) => {
					await barrier(sender, listener, c.edge(), evil, `${rand(8)}@integ`, `barrier ${rand(4)}`);
					await acceptBarrier(tl);
					assert.deepEqual(listener.requests.filter((m) => !isBarrier(m)).map((m) => `${m.method} ${m.ruri}`), [],
						`${what}: the foreign Route's UDP listener received requests`);
					assert.deepEqual(tl.others(), [], `${what}: the proxy connected to the foreign TCP listener`);
				};
				const msg = (user, route) => sender.send(c.edge(), {
					method: 'MESSAGE', ruri: `sip:${user}@a.test`, from: 'sip:sender@a.test', to: `sip:${user}@a.test`,
					body: `via ${route}`, contentType: 'text/plain', headers: [['Route', route]],
				}, 3000);
				const cases = [
					[bob.user, `<sip:${listener.addr};lr>`, 200],
					[bob.user, `<sip:${c.edge().addr};lr>, <sip:${listener.addr};lr>`, 200],
					[bob.user, `<sip:${HOST}:${tl.port};transport=tcp;lr>`, 200],
					[ghost, `<sip:${listener.addr};lr>`, 404],
					[ghost, `<sip:${HOST}:${tl.port};transport=tcp;lr>`, 404],
				];
				for (const [user, route, want] of cases) {
					const r = await msg(user, route);
					await nothingForeign(`with Route ${route}`);
					assert.equal(r.status, want, `MESSAGE to ${user} with Route ${route} got ${r.status} ${r.reason}`);
				}
				/* An INVITE too. */
				const i = await sender.send(c.edge(), {
					method: 'INVITE', ruri: bob.aor, from: 'sip:sender@a.test', to: bob.aor,
					contact: [`<${sender.contactUri('sender')}>`], headers: [['Route', `<sip:${listener.addr};lr>`]],
				}, 8000);
				assert.equal(i.status, 200, `INVITE with a foreign Route got ${i.status} ${i.reason}`);
				ack2xx(sender, i.tx, i);
				await bob.ua.waitRequest((m) => m.method === 'ACK' && m.callId === i.tx.req.callId, 3000,
					'the ACK of the 200 along the Record-Route');
				await nothingForeign('with an INVITE');
				assert.equal(bob.ua.distinctRequests((m) => m.method === 'MESSAGE').length, 3,
					'bob got the three MESSAGEs routed as if they had no Route');
			} finally {
				await tl.close();
			}
		});

		sTest('our own Route on an initial request (outbound proxy): REGISTER 200, MESSAGE and INVITE delivered', async () => {
			const route = [['Route', `<sip:${c.edge().addr};lr>`]];
			const ua = await c.ua('obp');
			const user = `obp-${rand(3)}`;
			const reg = new Registration(ua, c.edge(), user);
			const r = await reg.send({ expires: 300, headers: route });
			assert.equal(r.status, 200, `REGISTER with Route to the proxy got ${r.status} ${r.reason}`);
			assert.deepEqual((await reg.query()).map((b) => b.uri), [reg.contact.toLowerCase()],
				'the binding was made');
			const sender = await c.ua('sender');
			const m = await sender.send(c.edge(), {
				method: 'MESSAGE', ruri: reg.aor, from: 'sip:sender@a.test', to: reg.aor, body: 'via obp',
				contentType: 'text/plain', headers: route,
			});
			assert.equal(m.status, 200, `MESSAGE with Route to the proxy got ${m.status} ${m.reason}`);
			const i = await sender.send(c.edge(), {
				method: 'INVITE', ruri: reg.aor, from: 'sip:sender@a.test', to: reg.aor,
				contact: [`<${sender.contactUri('sender')}>`], headers: route,
			}, 8000);
			assert.equal(i.status, 200, `INVITE with Route to the proxy got ${i.status} ${i.reason}`);
			ack2xx(sender, i.tx, i);
			assert.equal(ua.distinctRequests((x) => x.method === 'MESSAGE' || x.method === 'INVITE').length, 2);
		});

		sTest('CSeq at or above 2^31 gets 400; q=nan, q=2, q=inf, q=0.5x in a REGISTER get 400', async () => {
			const bob = await udpUser('cseq');
			const sender = await c.ua('sender');
			for (const [cs, want] of [['2147483648', 400], ['12345678901234567890', 400],
				['99999999999', 400], ['2147483647', 200]]) {
				const r = await sender.send(c.edge(), {
					method: 'MESSAGE', ruri: bob.aor, from: 'sip:sender@a.test', to: bob.aor, body: 'x',
					contentType: 'text/plain', replace: { cseq: `${cs} MESSAGE` },
				}, 3000);
				assert.equal(r.status, want, `MESSAGE with CSeq ${cs} got ${r.status} ${r.reason}`);
			}
			assert.equal(bob.ua.distinctRequests((m) => m.method === 'MESSAGE').length, 1,
				'only the CSeq 2147483647 MESSAGE was delivered');
			const reg = new Registration(await c.ua('qval'), c.edge(), `q-${rand(3)}`);
			for (const q of ['nan', 'NaN', '2', 'inf', '0.5x']) {
				const r = await reg.send({ contacts: [`<${reg.contact}>;q=${q}`], expires: 300 });
				assert.equal(r.status, 400, `REGISTER with q=${q} got ${r.status} ${r.reason}`);
			}
			const ok = await reg.send({ contacts: [`<${reg.contact}>;q=0.5`], expires: 0 });
			assert.equal(ok.status, 200);
			assert.deepEqual(await reg.query(), [], 'no binding from a bad q');
		});
	});

	describe('infrastructure contacts and CANCEL timing', () => {
		const c = cluster({ name: '45-security-rfc-txn', edges: 1, cores: 2, redis: true,
			proxy: { t1_ms: 50, t2_ms: 400, timer_c_s: 180 } });

		c.test('a Contact at the cluster\'s Redis is never a next hop: FLUSHALL in a body flushes nothing', async (t) => {
			const canary = `${c.prefix}canary-${rand(3)}`;
			await c.redisCmd('SET', canary, 'alive');
			const before = await c.redisCmd('DBSIZE');
			/* Connections Redis accepted, counting the one asking. */
			const accepted = async () =>
				Number(/total_connections_received:(\d+)/.exec(await c.redisCmd('INFO', 'stats'))[1]);
			const reg = await c.ua('reg-redis');
			const user = `redis-${rand(3)}`;
			const r = await new Registration(reg, c.edge(), user).send({
				contacts: [`<sip:${user}@${HOST}:${c.redis.port};transport=tcp>`], expires: 300,
			});
			assert.equal(r.status, 200);
			reg.close();	/* whoever registered it is gone */
			const sender = await c.ua('sender');
			const conns0 = await accepted();
			const m = await sender.send(c.edge(), {
				method: 'MESSAGE', ruri: `sip:${user}@a.test`, from: 'sip:sender@a.test', to: `sip:${user}@a.test`,
				body: 'FLUSHALL\r\n', contentType: 'text/plain',
			}, 10000);
			t.diagnostic(`MESSAGE to a Contact at Redis: ${m.status} ${m.reason}`);
			assert.ok(m.status >= 300, `the sender gets an error, got ${m.status} ${m.reason}`);
			/* The proxy has answered, so an edge would have connected by
			 * now; Redis accepts in order, so the count it gives on our
			 * next connection includes that one. */
			const conns1 = await accepted();
			assert.equal(conns1 - conns0, 1, `Redis accepted ${conns1 - conns0 - 1} connection(s) besides ours ` +
				'while the proxy handled a MESSAGE to a Contact at Redis');
			assert.equal(await c.redisCmd('GET', canary), 'alive', 'the canary key survived');
			const after = await c.redisCmd('DBSIZE');
			assert.ok(after >= before, `DBSIZE ${before} -> ${after}`);
		});

		c.test('a Contact at the edge\'s own listener makes no loop; the sender gets an error', async (t) => {
			const edge = c.edge();
			const reg = await c.ua('reg-loop');
			const user = `loop-${rand(3)}`;
			const aor = `sip:${user}@${edge.addr}`;
			const r = await reg.send(edge, {
				method: 'REGISTER', ruri: `sip:${edge.addr}`, aor, from: aor, to: aor,
				contact: [`<${aor}>`], expires: 300,
			});
			assert.equal(r.status, 200, `REGISTER got ${r.status} ${r.reason}`);
			reg.close();
			const sender = await c.ua('sender');
			const before = await c.coreStat('requests');
			const m = await sender.send(edge, {
				method: 'MESSAGE', ruri: aor, from: 'sip:sender@a.test', to: aor, body: 'loop?',
				contentType: 'text/plain', retransmit: false,
			}, 10000);
			const after = await c.coreStat('requests');
			t.diagnostic(`MESSAGE to a Contact at the edge: ${m.status} ${m.reason}; core requests +${after - before}`);
			assert.ok(m.status >= 300, `the sender gets an error, got ${m.status} ${m.reason}`);
			assert.ok(m.status !== 482 && m.status !== 483, `a loop ended in ${m.status} ${m.reason}`);
			assert.ok(after - before <= 2, `the cores handled ${after - before} requests for one MESSAGE`);
		});

		c.test('a 2xx after CANCEL reaches the caller (RFC 3261 16.7 step 5) and the call can be ended', async () => {
			const callee = await c.ua('callee');
			const user = `late-${rand(3)}`;
			await new Registration(callee, c.edge(), user).register(300);
			callee.handler = (req) => (req.method === 'INVITE' ? null : 200);
			const caller = await c.ua('caller');
			const tx = caller.request(c.edge(), {
				method: 'INVITE', ruri: `sip:${user}@a.test`, from: 'sip:caller@a.test', to: `sip:${user}@a.test`,
				contact: [`<${caller.contactUri('caller')}>`],
			});
			const inv = await callee.waitRequest((m) => m.method === 'INVITE', 5000, 'INVITE');
			const cr = await cancel(caller, tx);
			assert.equal(cr.status, 200, 'CANCEL answered 200');
			const f = await tx.waitFor((r) => r.status >= 200, 5000, 'a final response after CANCEL');
			assert.equal(f.status, 487, `INVITE after CANCEL ended ${f.status} ${f.reason}`);
			/* The callee had not seen the CANCEL: it answers. */
			await callee.sendRaw(inv.source, buildResponse(inv, 200, 'OK', {
				toTag: callee.toTag, headers: [['Contact', `<${callee.contactUri(user)}>`]],
			}));
			const ok = await tx.waitFor((r) => r.status === 200, 3000, 'the callee\'s late 200');
			assert.equal(tagOf(ok.get('to')), callee.toTag);
			const routes = ack2xx(caller, tx, ok);
			await callee.waitRequest((m) => m.method === 'ACK', 3000, 'ACK of the late 200');
			const bye = await caller.send(c.edge(), {
				method: 'BYE', ruri: uriOf(ok.get('contact')), from: 'sip:caller@a.test', fromTag: tx.opts.fromTag,
				to: `sip:${user}@a.test`, toTag: callee.toTag, callId: tx.opts.callId, cseq: 2, headers: routes,
			});
			assert.equal(bye.status, 200, `BYE got ${bye.status}`);
		});

		/* RFC 3261 9.1: 64*T1 after the CANCEL the client considers the
		 * INVITE cancelled, so the caller's final response is 487
		 * (Request Terminated), not a timeout's 408. */
		c.test('a ringing callee that ignores CANCEL: the caller gets 487 about 64*T1 after it, not at timer C', async () => {
			const callee = await c.ua('callee');
			const user = `deaf-${rand(3)}`;
			await new Registration(callee, c.edge(), user).register(300);
			callee.handler = (req) => (req.method === 'INVITE' ? 180 : null);
			const caller = await c.ua('caller');
			const tx = caller.request(c.edge(), {
				method: 'INVITE', ruri: `sip:${user}@a.test`, from: 'sip:caller@a.test', to: `sip:${user}@a.test`,
				contact: [`<${caller.contactUri('caller')}>`],
			});
			await tx.waitFor((r) => r.status === 180, 5000, '180');
			const t0 = Date.now();
			const cr = await cancel(caller, tx);
			assert.equal(cr.status, 200, 'CANCEL answered 200');
			await callee.waitRequest((m) => m.method === 'CANCEL', 3000, 'the proxy\'s CANCEL');
			/* 64 * T1 = 3.2 s; timer C is 180 s. */
			const f = await tx.waitFor((r) => r.status >= 200, 3200 + 3000, 'a final response after CANCEL');
			assert.equal(f.status, 487, `final ${f.status} ${f.reason}`);
			assert.ok(Date.now() - t0 < 3200 + 3000, `final after ${Date.now() - t0} ms`);
		});
	});

	describe('media', () => {
		const c = cluster({ name: '45-security-rfc-media', edges: 1, cores: 2, media: { rtpengines: 1, rtpctls: 1 } });

		c.test('SDP in a MESSAGE is no offer: no rtpengine session, the body arrives untouched', async () => {
			const bob = await c.ua('sdpbob');
			const user = `sdp-${rand(3)}`;
			await new Registration(bob, c.edge(), user).register(300);
			const sender = await c.ua('sender');
			const callId = `sdpmsg-${rand(8)}@integ`;
			const body = SDP('sender');
			const m = await sender.send(c.edge(), {
				method: 'MESSAGE', ruri: `sip:${user}@a.test`, from: 'sip:sender@a.test', to: `sip:${user}@a.test`,
				body, contentType: 'application/sdp', callId,
			});
			/* An offer is made before a request is forwarded (its SDP is
			 * rewritten): bob got it, answered, and the 200 is here. */
			assert.equal(m.status, 200);
			assert.deepEqual((await c.engineHolding(callId)).map((x) => x.engine.name), [],
				'rtpengine holds the MESSAGE\'s Call-ID');
			assert.deepEqual(await c.ngList(1), [], 'rtpengine lists no call');
			const got = bob.distinctRequests((r) => r.method === 'MESSAGE');
			assert.equal(got.length, 1);
			assert.equal(got[0].body.toString('latin1'), body, 'the SDP body was not rewritten');
		});

		/* Runs last in this cluster: it kills the rtpengine. */
		c.test('a 2xx whose media answer fails: the caller gets 5xx with a Warning, the proxy ACKs and BYEs the callee', async () => {
			const callee = await c.ua('mcallee');
			const user = `mfail-${rand(3)}`;
			await new Registration(callee, c.edge(), user).register(300);
			callee.handler = (req) => (req.method === 'INVITE' ? null : 200);
			const caller = await c.ua('mcaller');
			const tx = caller.request(c.edge(), {
				method: 'INVITE', ruri: `sip:${user}@a.test`, from: 'sip:caller@a.test', to: `sip:${user}@a.test`,
				contact: [`<${caller.contactUri('caller')}>`], body: SDP('caller'), contentType: 'application/sdp',
			});
			const inv = await callee.waitRequest((m) => m.method === 'INVITE', 5000, 'INVITE (its offer went through)');
			await c.killRtpengine(1);
			await callee.sendRaw(inv.source, buildResponse(inv, 200, 'OK', {
				toTag: callee.toTag, headers: [['Contact', `<${callee.contactUri(user)}>`]],
				body: SDP('callee'), contentType: 'application/sdp',
			}));
			const f = await tx.waitFor((r) => r.status >= 200, 8000, 'a final response');
			assert.ok(f.status >= 500, `the caller got ${f.status} ${f.reason}, not an unanchored call`);
			assert.match(f.get('warning') || '', /sipmesh/, 'a Warning names the cause');
			const ack = await callee.waitRequest((m) => m.method === 'ACK', 3000, 'the proxy\'s ACK of the 200');
			const bye = await callee.waitRequest((m) => m.method === 'BYE', 3000, 'the proxy\'s BYE');
			for (const m of [ack, bye])
				assert.equal(tagOf(m.get('to')), callee.toTag, `${m.method} is in the callee's dialog`);
		});
	});
});
