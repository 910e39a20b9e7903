#!/bin/sh
# Browser tests: KwikyKonf in headless Debian Chromium (playwright-core)
# against a real sipmesh cluster with real rtpengines and sipp.
#
#   SIPMESH_BIN=/abs/build/bin sh tests/browser/run.sh [-n name-pattern] [file|NN-name ...]
#
# Outside the namespace: npm packages (web/ and tests/browser/, from
# their package-lock.json) and the web bundle (web/build.sh).  Then the
# tests run inside a new network namespace that holds only loopback
# (`unshare --net`, needs root): Chromium sends WebRTC media from every
# interface it finds, so the cluster, rtpengine, sipp and Chromium all
# live where nothing but 127.0.0.1 exists.
#
# One file at a time (each runs Chromium pages with media: the machine's
# whole CPU).  Each file runs under a wall-clock deadline (node's
# --test-timeout applies to the file as a whole and to each test that
# sets none; the tests set 90-150 s), the run under `timeout`.
#
# Environment: SIPMESH_BROWSER_FILE_S (per-file deadline, default 600),
# SIPMESH_SCREENSHOT (where the 3-party room screenshot
# goes; default build/browser/screenshot-3party.png),
# SIPMESH_BROWSER_DEBUG=1 (SIP traces in the pages' consoles, shown on
# failure), SIPMESH_INTEG_LOG (log level of the sipmesh processes).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)

fail() { echo "browser: $*" >&2; exit 2; }

[ -n "${SIPMESH_BIN:-}" ] || fail "SIPMESH_BIN is not set (run \`make test-browser\`)"
for b in sipmesh-edge sipmesh-core sipmesh-rtpctl; do
	[ -x "$SIPMESH_BIN/$b" ] || fail "$SIPMESH_BIN/$b is missing or not executable (run \`make build-all\`)"
done
for t in node sipp redis-server rtpengine unshare ip openssl timeout; do
	command -v "$t" >/dev/null 2>&1 || fail "$t not found in PATH (run \`make deps\`)"
done
chromium=${SIPMESH_CHROMIUM:-/usr/bin/chromium}
[ -x "$chromium" ] || fail "$chromium not found (run \`make deps\`: Debian's chromium)"
major=$(node -p 'process.versions.node.split(".")[0]')
[ "$major" -ge 20 ] || fail "Node.js >= 20 needed, found $(node --version)"

# npm packages: installed once, again only when the lock file changes.
if [ ! -f "$here/node_modules/.package-lock.json" ] ||
   [ "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]; then
	npm ci --prefix "$here" --no-audit --no-fund --loglevel=error || fail "npm ci failed"
fi
sh "$root/web/build.sh" || fail "building the web bundle failed"

. "$here/../lib/select.sh"
select_tests browser "$here" "$@"
# shellcheck disable=SC2086 # file names have no blanks (NN-name.test.js)
set -- $parallel $serial
file_s=${SIPMESH_BROWSER_FILE_S:-600}
unshare --net true 2>/dev/null ||
	fail "cannot make a network namespace (unshare --net needs root or CAP_SYS_ADMIN)"
export SIPMESH_BIN name_pattern file_s
# The namespace starts with lo down; nothing else is in it.
exec timeout -k 10 $(( $# * file_s + 60 )) unshare --net sh -c 'ip link set lo up &&
	exec node --test --test-reporter=spec --test-concurrency=1 --test-timeout=$(( file_s * 1000 )) \
	${name_pattern:+"--test-name-pattern=$name_pattern"} "$@"' browser-tests "$@"
