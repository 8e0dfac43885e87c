// bench/gui-grid: the status display with 50 servers × 200 resources (100 hierarchies: a file system
// over a mirror on 3 servers each, 10 000 cells) in Chromium, the cluster coming from a fixture
// through the browser-mode server's API. Measured in the page, from the WebSocket message's arrival
// to the frame after the DOM shows the result:
//   grid-render   first render of the whole display, vs the anchor plain-table: the same 10 000
//                 cells (icon, text, state) written as one HTML table with innerHTML (ratio = ours /
//                 anchor; lower is better; goal ≤ 3)
//   grid-update   one mirror target turning Paused (one status push), vs the anchor
//                 plain-table-redraw: redrawing that plain table whole (ratio = ours / anchor; goal ≤ 1:
//                 an update must cost less than redrawing everything)
// Medians of N rounds.
//
// usage: npm run bench:gui-grid [-- --rounds 5]
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { startBrowserServer } from '../electron/backend/browser-server.js';
import type { ConsoleBackend } from '../electron/backend/console-backend.js';
import type { ClusterView, ConsoleEvent } from '../common/console-api.js';
import { statusTable } from '../common/resource-state.js';
import { launchChromium } from '../test/e2e/browser.js';
import { bigCluster } from '../test/fixtures/cluster-view.js';
import { median, repo } from './lib.js';

const { values } = parseArgs({ options: { rounds: { type: 'string', default: '5' }, servers: { type: 'string', default: '50' }, hierarchies: { type: 'string', default: '100' } } });
const ROUNDS = Number(values.rounds);
const big = bigCluster(Number(values.servers), Number(values.hierarchies));
const empty: ClusterView = { ...big, servers: [], resources: { version: 0, resources: [], flags: [] } };
const CELLS = statusTable(big).rows.length * big.servers.length;

/** The backend the page talks to: the fixture, and events when the bench says so. */
const listeners = new Set<(e: ConsoleEvent) => void>();
let current = empty;
const fixtureBackend = {
  cluster: async () => current,
  output: async () => [],
  onEvent: (l: (e: ConsoleEvent) => void) => {
    listeners.add(l);
    return () => listeners.delete(l);
  },
} as unknown as ConsoleBackend;
const push = (c: ClusterView) => {
  current = c;
  for (const l of listeners) l({ type: 'cluster', cluster: c });
};

/** The cluster with one more target paused (round i pauses a different one). */
function withPaused(i: number): ClusterView {
  const servers = big.servers.map((s) => ({ ...s, mirrors: s.mirrors.map((m) => ({ ...m, targets: m.targets.map((t) => ({ ...t })) })) }));
  const sources = servers.flatMap((s) => s.mirrors.filter((m) => m.role === 'source'));
  const m = sources[(i * 7) % sources.length]!;
  m.targets[0] = { ...m.targets[0]!, status: 'Paused', state: 'paused' };
  return { ...big, servers };
}

async function main(): Promise<void> {
  const staticDir = path.join(repo, 'resources', 'renderer');
  if (!fs.existsSync(path.join(staticDir, 'index.html'))) throw new Error('run `npm run build` first');
  const server = await startBrowserServer({ backend: fixtureBackend, staticDir });
  const browser = await launchChromium();
  const page = await browser.newPage({ viewport: { width: 1600, height: 1000 } });
  // Time stamp every message from the backend as it arrives (before the app's handler runs).
  await page.addInitScript(`(() => {
    const W = window.WebSocket;
    window.__msgAt = 0;
    window.WebSocket = class extends W { constructor(...a) { super(...a); this.addEventListener('message', () => { window.__msgAt = performance.now(); }); } };
  })()`);
  await page.goto(server.url);
  await page.getByText('Open Local Lab').waitFor();

  /** Resolves in the page at the first frame where `done` holds; returns ms since the last message. */
  const frameWhen = (done: string) => page.evaluate(`new Promise((resolve) => {
    const check = () => (${done}) ? requestAnimationFrame(() => resolve(performance.now() - window.__msgAt)) : requestAnimationFrame(check);
    check();
  })`) as Promise<number>;
  const countCells = `document.querySelectorAll('table[role=grid] td').length === ${CELLS}`;

  const render: number[] = [];
  const update: number[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    push(empty);
    await frameWhen(`document.querySelectorAll('table[role=grid] td').length === 0`);
    const rendered = frameWhen(countCells);
    push(big);
    render.push(await rendered);
    const tag = withPaused(r).servers.flatMap((s) => s.mirrors).find((m) => m.role === 'source' && m.targets[0]!.status === 'Paused')!;
    const cellSel = `td[data-tag="${tag.tag}"][data-server="${tag.targets[0]!.node}"]`;
    const updated = frameWhen(`document.querySelector('${cellSel}')?.textContent.includes('Paused')`);
    push(withPaused(r));
    update.push(await updated);
  }

  // The anchor: the same cells as one plain HTML table, written with innerHTML.
  const t = statusTable(big);
  const rowsHtml = t.rows.map((row, i) => `<tr><th>${row.tag}</th>${t.cells[i]!.map((c) => (c ? `<td><svg width="15" height="15"><use href="#icon-${c.tone}"/></svg> <span>${c.text}</span> <span>${c.state}</span></td>` : '<td></td>')).join('')}</tr>`).join('');
  const html = `<table><thead><tr><th></th>${big.servers.map((s) => `<th>${s.name}<br>${s.connection.state}</th>`).join('')}</tr></thead><tbody>${rowsHtml}</tbody></table>`;
  const plain = (await page.evaluate(`(async (html, rounds) => {
    const box = document.createElement('div');
    document.body.appendChild(box);
    const frame = () => new Promise((r) => requestAnimationFrame(() => r()));
    const first = [], redraw = [];
    for (let i = 0; i < rounds; i++) {
      box.innerHTML = '';
      await frame();
      let t0 = performance.now();
      box.innerHTML = html;
      box.firstChild.offsetHeight;
      await frame();
      first.push(performance.now() - t0);
      t0 = performance.now();
      box.innerHTML = html;
      box.firstChild.offsetHeight;
      await frame();
      redraw.push(performance.now() - t0);
    }
    box.remove();
    return { first, redraw };
  })(${JSON.stringify(html)}, ${ROUNDS})`)) as { first: number[]; redraw: number[] };

  await browser.close();
  await server.close();
  const f = (xs: number[]) => xs.map((x) => x.toFixed(0)).join('/');
  console.log(`# ${big.servers.length} servers × ${t.rows.length} resources = ${CELLS} cells; ${ROUNDS} rounds; Chromium ${browser.version()}, ${os.cpus().length} CPUs`);
  console.log(`# grid-render: ours ${f(render)} ms, plain table ${f(plain.first)} ms (medians ${median(render).toFixed(0)} vs ${median(plain.first).toFixed(0)})`);
  console.log(`ratio grid-render ${(median(render) / median(plain.first)).toFixed(2)}`);
  console.log(`# grid-update: ours ${f(update)} ms, plain table redraw ${f(plain.redraw)} ms (medians ${median(update).toFixed(0)} vs ${median(plain.redraw).toFixed(0)})`);
  console.log(`ratio grid-update ${(median(update) / median(plain.redraw)).toFixed(2)}`);
}

await main();
