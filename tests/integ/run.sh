#!/bin/sh
# Integration tests: real sipmesh processes, real Redis and real sipp on
# 127.0.0.1, driven by Node's built-in test runner; SIP.js, JsSIP and ws
# come from npm (package-lock.json), installed here when missing.
#
#   SIPMESH_BIN=/abs/build/bin sh tests/integ/run.sh [test files...]
#
# Environment: SIPMESH_INTEG_JOBS (test files run at once, default 1),
# SIPMESH_INTEG_LOG (log level of the processes, default info),
# SIPMESH_INTEG_KEEP=1 (keep each cluster's temp dir).
set -eu
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "integ: $*" >&2; exit 2; }

[ -n "${SIPMESH_BIN:-}" ] || fail "SIPMESH_BIN is not set (run \`make test-integ\`)"
for b in sipmesh-edge sipmesh-core; do
	[ -x "$SIPMESH_BIN/$b" ] || fail "$SIPMESH_BIN/$b is missing or not executable (run \`make build-all\`)"
done
for t in node sipp redis-server; do
	command -v "$t" >/dev/null 2>&1 || fail "$t not found in PATH (run \`make deps\`)"
done
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || fail "Node.js >= 20 needed, found $(node --version)"

# npm packages: installed once, again only when the lock file changes.
if [ ! -f "$here/node_modules/.package-lock.json" ] ||
   [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
	npm ci --prefix "$here" --no-audit --no-fund --loglevel=error ||
		fail "npm ci failed"
fi

if [ $# -eq 0 ]; then
	set -- "$here"/[0-9][0-9]-*.test.js
fi
export SIPMESH_BIN
exec node --test --test-reporter=spec \
	--test-concurrency="${SIPMESH_INTEG_JOBS:-1}" \
	--test-timeout=180000 "$@"
