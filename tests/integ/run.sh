#!/bin/sh
# Integration tests: real sipmesh processes, real Redis and real sipp on
# 127.0.0.1, driven by Node's built-in test runner; SIP.js, JsSIP and ws
# come from npm (package-lock.json), installed here when missing.
#
#   SIPMESH_BIN=/abs/build/bin sh tests/integ/run.sh [-n name-pattern] [file|NN-name ...]
#
# Files run side by side: each cluster has its own run_dir, shared-
# memory name, Redis and key prefix (tests/integ/lib/cluster.js), and
# ports and rtpengine ranges from blocks one test process holds
# (tests/integ/lib/ports.js), so nothing global is shared.  A file whose header says "integ: serial" (it times things
# that a busy machine delays) runs afterwards, alone.  Every file runs
# under a wall-clock deadline (node --test-timeout applies to each file
# as a whole, and to each test that sets no timeout of its own;
# cluster.test() sets 60 s); the whole run under `timeout` as a last
# resort.  -n runs only the tests whose names match (--test-name-pattern).
#
# Environment: SIPMESH_INTEG_JOBS (files at once in the parallel group,
# default 4: measured best on 2 cores, see README), SIPMESH_INTEG_FILE_S
# (per-file deadline, default 240), SIPMESH_INTEG_LOG (log level of the
# processes, default info), SIPMESH_INTEG_KEEP=1 (keep each cluster's
# temp dir).
set -eu
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "integ: $*" >&2; exit 2; }

[ -n "${SIPMESH_BIN:-}" ] || fail "SIPMESH_BIN is not set (run \`make test-integ\`)"
for b in sipmesh-edge sipmesh-core; do
	[ -x "$SIPMESH_BIN/$b" ] || fail "$SIPMESH_BIN/$b is missing or not executable (run \`make build-all\`)"
done
for t in node sipp redis-server timeout; do
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

. "$here/../lib/select.sh"
select_tests integ "$here" "$@"

jobs=${SIPMESH_INTEG_JOBS:-4}
file_s=${SIPMESH_INTEG_FILE_S:-240}
export SIPMESH_BIN
rc=0
# One node run per group; a group's budget is every file's deadline
# run one after the other, plus a minute.
run_group() {
	conc=$1; shift
	[ $# -gt 0 ] || return 0
	timeout -k 10 $(( $# * file_s + 60 )) node --test --test-reporter=spec \
		--test-concurrency="$conc" --test-timeout=$(( file_s * 1000 )) \
		${name_pattern:+"--test-name-pattern=$name_pattern"} "$@" || rc=1
}
# shellcheck disable=SC2086 # file names have no blanks (NN-name.test.js)
run_group "$jobs" $parallel
# shellcheck disable=SC2086
run_group 1 $serial
exit $rc
