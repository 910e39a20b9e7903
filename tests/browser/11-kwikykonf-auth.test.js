'use strict';
/*
 * 11 kwikykonf auth: KwikyKonf with digest authentication on
 * ([registrar] auth = yes) and no accounts at all: each page gets guest
 * credentials from the edge that served it (GET /kk/guest) and both of
 * its agents answer the cores' challenges with them.
 *
 *   - 1:1 video call: both pages join, the cores challenged them, every
 *     credential they sent is a guest's speaking for itself or its room,
 *     and the guest the edge picked is the page's address; audio and
 *     video flow;
 *   - a protected room: no phrase and a wrong phrase are refused with a
 *     clear message, the right one joins and media flows (the room
 *     address conf.<room>.<tag> is the guests' to register);
 *   - a page whose credentials the edge refuses (the source is over
 *     its burst) says so and stays at the form.
 */
const http = require('node:http');
const { describe } = require('node:test');
const {
	kkCluster, chromiumPool, state, assertMediaFlows, check, waitUntil, waitMesh, protectedRoom,
} = require('./lib/browser');

describe('11 kwikykonf auth', () => {
	const c = kkCluster({ name: '11-kwikykonf-auth', registrar: { auth: 'yes' } });
	const b = chromiumPool(c);

	const bt = b.test;

	/*
	 * Checks from w's WebSocket frames that the cores challenged it and
	 * it answered as its guest: each out-of-dialog REGISTER and MESSAGE
	 * it sent first got 401/407, then went again with credentials whose
	 * username ends in its own guest user, and was accepted.
	 */
	async function assertAuthenticated(w) {
		const s = await state(w);
		const user = /^sip:([^@]+)@/.exec(s.uri)[1];
		check(/^guest\.[a-z0-9_-]+\.[a-z0-9]{10}$/.test(user), `${w.name}'s address ${s.uri} is not a guest's`);
		check(user.endsWith(`.${s.id}`), `${w.name}'s id ${s.id} is not its guest id (${user})`);
		const out = w.sip.filter((f) => f.dir === 'out' && ['REGISTER', 'MESSAGE'].includes(f.method) &&
			!/^To:.*;tag=/im.test(f.text));
		const challenged = w.sip.filter((f) => f.dir === 'in' && (f.status === 401 || f.status === 407));
		check(challenged.length > 0, `${w.name} was never challenged: is auth on?`);
		const creds = out.filter((f) => /^(?:Proxy-)?Authorization:\s*Digest /im.test(f.text));
		check(creds.length > 0, `${w.name} never sent credentials`);
		/* Each join fetched its own guest (a refused attempt's is gone
		 * with it): every request speaks for the guest it authenticates
		 * as, or for that guest's room; the last join's guest is this
		 * page's address. */
		for (const f of creds) {
			const m = /username="(\d+):(guest\.([a-z0-9_-]+)\.[a-z0-9]+)"/i.exec(f.text);
			const from = /^(?:From|f):[^<\n]*<sip:([^@>]+)@/im.exec(f.text);
			check(m && from, `${w.name} sent credentials that are not a guest's: ${f.text.split('\n').slice(0, 3).join(' | ')}`);
			check(from[1] === m[2] || from[1] === `conf.${m[3]}` || from[1].startsWith(`conf.${m[3]}.`),
				`${w.name} authenticated as ${m[2]} for ${from[1]}`);
		}
		check(creds.some((f) => f.text.includes(`:${user}"`)), `${w.name} never authenticated as its own guest ${user}`);
		const regsOk = w.sip.filter((f) => f.dir === 'in' && f.status === 200 && / REGISTER$/.test(f.cseq || ''));
		check(regsOk.length >= 2, `${w.name}: ${regsOk.length} REGISTERs accepted (private and room agents)`);
	}

	bt('1:1 video call with auth on: guests are challenged, authenticate, and talk', async () => {
		const alice = await b.open({ name: 'Alice', room: 'authone' });
		const bob = await b.open({ name: 'Bob', room: 'authone' });
		await waitMesh([alice, bob]);
		await assertMediaFlows(alice);
		await assertMediaFlows(bob);
		for (const w of [alice, bob]) await assertAuthenticated(w);
		const [sa, sb] = await Promise.all([state(alice), state(bob)]);
		check(sa.uri !== sb.uri, 'both pages got the same guest address');
	});

	bt('a protected room with auth on: no phrase and a wrong phrase are refused, the right one joins', async () => {
		const { owner, guest } = await protectedRoom(b, 'authlocked');
		await assertMediaFlows(owner);
		for (const w of [owner, guest]) await assertAuthenticated(w);
	});


	/* Last: it spends this address's burst of guest credentials. */
	bt('a page refused guest credentials (too many from its address) says so and stays at the form', async () => {
		const get = () => new Promise((res, rej) => {
			http.get({ host: '127.0.0.1', port: c.ports.ws, path: '/kk/guest?room=burst', agent: false }, (r) => {
				r.resume();
				r.on('end', () => res(r.statusCode));
			}).on('error', rej);
		});
		const w = await b.open({ name: 'Late', room: 'burst', join: false });
		let code = 0;
		for (let i = 0; i < 40 && code !== 429; i++) code = await get();
		check(code === 429, `the edge never refused: ${code}`);
		/* One more credential every 2 s: keep taking it, so that a
		 * slow join (a sanitizer build) still meets the refusal. */
		let hammering = true;
		const hammer = (async () => {
			while (hammering) {
				await get().catch(() => {});
				await new Promise((res) => setTimeout(res, 20));
			}
		})();
		try {
			await w.join();
			await waitUntil(async () => /Too many people joined from your address/.test(await w.page.textContent('#status')),
				10000, 'the "too many" message');
		} finally {
			hammering = false;
			await hammer;
		}
		check((await state(w)).phase === 'idle', 'the page did not go back to the form');
		check(!w.sip.some((f) => f.dir === 'out'), 'the page sent SIP without credentials');
	});
});
