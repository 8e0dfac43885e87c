#!/usr/bin/env node
// Import cycles between our own modules (type-only imports included: a cycle of types still marks a type
// in the wrong module). Usage: node scripts/check-cycles.mjs [dir …]   (default: agent common electron renderer)
// Exit 1 and list each cycle when there is one. Reads `import … from`, `export … from` and `import('…')`
// of relative paths in .ts, .mts and .vue files; a '.js' specifier names the '.ts' file beside it.
import fs from 'node:fs';
import path from 'node:path';

const root = process.cwd();
const dirs = process.argv.slice(2).length > 0 ? process.argv.slice(2) : ['agent', 'common', 'electron', 'renderer'];
const exts = ['.ts', '.mts', '.vue'];

function walk(dir, out) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const p = path.join(dir, e.name);
    if (e.isDirectory()) walk(p, out);
    else if (exts.some((x) => e.name.endsWith(x)) && !e.name.endsWith('.d.ts')) out.push(p);
  }
  return out;
}

function resolve(from, spec) {
  const base = path.resolve(path.dirname(from), spec);
  const candidates = [base, base.replace(/\.m?js$/, '.ts'), base.replace(/\.mjs$/, '.mts'), `${base}.ts`, `${base}.vue`, path.join(base, 'index.ts')];
  return candidates.find((c) => fs.existsSync(c) && fs.statSync(c).isFile()) ?? null;
}

const files = dirs.flatMap((d) => walk(path.join(root, d), []));
const graph = new Map();
const pattern = /(?:import|export)\s[^'"]*?from\s*['"](\.[^'"]+)['"]|import\(\s*['"](\.[^'"]+)['"]\s*\)|import\s+['"](\.[^'"]+)['"]/g;
for (const f of files) {
  const text = fs.readFileSync(f, 'utf8');
  const deps = new Set();
  for (const m of text.matchAll(pattern)) {
    const target = resolve(f, m[1] ?? m[2] ?? m[3]);
    if (target) deps.add(target);
  }
  graph.set(f, [...deps]);
}

// Tarjan's strongly connected components: every component of more than one file is a cycle.
let index = 0;
const stack = [];
const meta = new Map();
const cycles = [];
function strong(v) {
  meta.set(v, { index, low: index, on: true });
  index++;
  stack.push(v);
  for (const w of graph.get(v) ?? []) {
    if (!graph.has(w)) continue;
    if (!meta.has(w)) {
      strong(w);
      meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).low);
    } else if (meta.get(w).on) meta.get(v).low = Math.min(meta.get(v).low, meta.get(w).index);
  }
  if (meta.get(v).low === meta.get(v).index) {
    const comp = [];
    let w;
    do {
      w = stack.pop();
      meta.get(w).on = false;
      comp.push(path.relative(root, w));
    } while (w !== v);
    if (comp.length > 1 || (graph.get(v) ?? []).includes(v)) cycles.push(comp.sort());
  }
}
for (const f of graph.keys()) if (!meta.has(f)) strong(f);

if (cycles.length === 0) {
  process.stdout.write(`no import cycles in ${files.length} files (${dirs.join(', ')})\n`);
} else {
  process.stdout.write(`${cycles.length} import cycle(s):\n${cycles.map((c) => `  ${c.join(' ⇄ ')}`).join('\n')}\n`);
  process.exitCode = 1;
}
