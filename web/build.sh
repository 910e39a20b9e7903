#!/bin/sh
# Builds the KwikyKonf bundle (web/dist/) from web/src/ with esbuild.
# npm packages (SIP.js, esbuild) come from package-lock.json and are
# installed here when missing or older than the lock file; that is the
# only step that needs the npm registry.  Used by `make web`, `make
# run` and tests/browser/run.sh.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
command -v node >/dev/null 2>&1 || { echo "web: node not found (run \`make deps\`)" >&2; exit 2; }
if [ ! -f "$here/node_modules/.package-lock.json" ] ||
   [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
	npm ci --prefix "$here" --no-audit --no-fund --loglevel=error ||
		{ echo "web: npm ci failed (no network?)" >&2; exit 2; }
fi
cd "$here" && exec node build.mjs
