#!/bin/sh
# Runs each libFuzzer harness of BUILD/tests/fuzz for SECONDS, or only
# the one named PARSER:  run.sh BUILD SECONDS [PARSER]
#
# Each harness reads its seeds from tests/corpus/<parser>/ (never
# written: libFuzzer writes what it finds into its first directory,
# BUILD/corpus/<parser>/, which later runs start from too) and saves a
# crashing input as BUILD/crashes/<parser>/crash-<sha1>.  The seeds
# include the inputs of crashes already fixed, so every run replays
# them first.  Prints executions and corpus per harness from
# libFuzzer's final stats; fails when any harness found a crash, a
# sanitizer report, a leak or a timeout.
set -u
b=$1 t=$2 only=${3:-}
fail=0 ran=0
printf '%-12s %12s %8s %10s  %s\n' parser executions exec/s corpus result
for bin in "$b"/tests/fuzz/fuzz_*; do
	name=${bin##*/fuzz_}
	[ -n "$only" ] && [ "$only" != "$name" ] && continue
	ran=1
	out=$b/corpus/$name crashes=$b/crashes/$name log=$b/logs/$name.log
	mkdir -p "$out" "$crashes" "$b/logs"
	"$bin" -max_total_time="$t" -timeout=10 -rss_limit_mb=2048 \
		-print_final_stats=1 -artifact_prefix="$crashes/" \
		"$out" "tests/corpus/$name" >"$log" 2>&1
	rc=$?
	execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
	rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
	corp=$(grep -o 'corp: [0-9]*/[0-9]*[a-zA-Z]*' "$log" | tail -1 |
	       cut -d' ' -f2)
	if [ $rc -eq 0 ]; then
		res=ok
	else
		res="FAILED (exit $rc, log $log)"
		fail=1
	fi
	printf '%-12s %12s %8s %10s  %s\n' "$name" "${execs:-?}" "${rate:-?}" \
		"${corp:-?}" "$res"
	if [ $rc -ne 0 ]; then
		grep -E '^==[0-9]+==|SUMMARY|runtime error|Test unit written' "$log" |
			head -5 | sed 's/^/    /'
	fi
done
[ $ran -eq 1 ] || { echo "fuzz: no harness named $only" >&2; exit 2; }
exit $fail
