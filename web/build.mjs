// Builds web/dist/ from web/src/: kwikykonf.js bundled with SIP.js by
// esbuild (one self-contained IIFE, nothing loaded at run time), the
// HTML and CSS copied.  `node build.mjs` from web/ (web/build.sh runs
// npm ci first when needed).
import { build } from 'esbuild';
import { copyFileSync, mkdirSync, rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const src = join(here, 'src');
const dist = join(here, 'dist');

rmSync(dist, { recursive: true, force: true });
mkdirSync(dist, { recursive: true });
await build({
	entryPoints: [join(src, 'kwikykonf.js')],
	outfile: join(dist, 'kwikykonf.js'),
	bundle: true,
	format: 'iife',
	target: ['chrome100', 'firefox100', 'safari15'],
	minify: true,
	sourcemap: true,
	legalComments: 'linked',
	logLevel: 'warning',
});
for (const f of ['index.html', 'kwikykonf.css']) copyFileSync(join(src, f), join(dist, f));
console.log(`web: built ${dist}`);
