'use strict';
/*
 * 12 kwikykonf edge restart: a 3-party KwikyKonf room whose edge (the
 * one process every page's WebSockets go through) is killed with
 * SIGKILL and started again 1 s later, as systemd would.  Without a
 * reload, every page reconnects, registers again, and the room re-forms:
 * every page has a connected session to every other, with audio and
 * video flowing on each.
 */
const { describe } = require('node:test');
const {
	kkCluster, chromiumPool, state, lastStatus, assertMediaFlows, check, waitUntil, waitMesh,
} = require('./lib/browser');

describe('12 kwikykonf edge restart', () => {
	const c = kkCluster({ name: '12-kwikykonf-edge-restart' });
	const b = chromiumPool(c);

	b.test('3-party room: kill -9 of the edge, restarted 1 s later; the room re-forms with video, no reload', async () => {
		const room = `restart${Date.now() % 100000}`;
		const ws = [];
		for (const name of ['Ann', 'Ben', 'Cid']) ws.push(await b.open({ name, room }));
		await waitMesh(ws);
		for (const w of ws) await w.page.evaluate(() => { window.kkNoReload = 1; });
		const before = await Promise.all(ws.map((w) => state(w)));
		await c.stopEdge(1, 'SIGKILL');
		await new Promise((r) => setTimeout(r, 1000));
		await c.startEdge(1);
		await Promise.all(ws.map((w) => waitUntil(async () => (await lastStatus(w)).some((l) => /Reconnected/.test(l)),
			30000, `${w.name} to reconnect`, 200)));
		await waitMesh(ws, 60000);
		for (const w of ws) {
			check(await w.page.evaluate(() => window.kkNoReload === 1), `${w.name} reloaded`);
			await assertMediaFlows(w);
		}
		const after = await Promise.all(ws.map((w) => state(w)));
		for (let i = 0; i < ws.length; i++)
			check(after[i].id === before[i].id, `${ws[i].name} joined as somebody else`);
	}, 150000);
});
