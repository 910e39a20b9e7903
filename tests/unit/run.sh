#!/bin/sh
# Runs each cmocka binary given, each under a wall-clock deadline
# (SIPMESH_UNIT_S seconds, default 120: `timeout` sends TERM, then KILL
# 10 s later), so a hang fails instead of stalling; fails if any fails.
# Tests that need Redis start their own redis-server on a free loopback
# port.
command -v timeout >/dev/null 2>&1 || { echo "unit: timeout (coreutils) not found" >&2; exit 2; }
limit=${SIPMESH_UNIT_S:-120}
fail=0
for t in "$@"; do
	echo "== $t"
	timeout -k 10 "$limit" "$t"
	rc=$?
	if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
		echo "== $t: did not finish within $limit s (killed)" >&2
	fi
	[ $rc -eq 0 ] || fail=1
done
exit $fail
