#!/bin/sh
# Runs each cmocka binary given; fails if any fails.  Tests that need
# Redis start their own redis-server on a free loopback port.
fail=0
for t in "$@"; do
	echo "== $t"
	"$t" || fail=1
done
exit $fail
