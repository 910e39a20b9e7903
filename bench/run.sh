#!/bin/sh
# sipmesh bench: sipp load against the sipmesh cluster and against
# Kamailio (Debian package, bench/kamailio.cfg) in the same run.
# Run by `make bench` (SIPMESH_BIN=<abs build/bin>); not part of make test.
#
# Environment (all optional):
#   BENCH_QUICK=1          short trials (3 s) and a coarse rate search
#   BENCH_DURATION=10      seconds of load per trial
#   BENCH_SERVERS=sipmesh,kamailio
#   BENCH_SCENARIOS=register,message,call
#   BENCH_RATES=register=20000,call=1000   fixed rates, no search
#   BENCH_KAM_SHM_MB=2048 BENCH_KAM_PKG_MB=64 BENCH_KAM_CHILDREN=2
#   BENCH_CALL_HOLD_MS=1000  pause between ACK and BYE
#   BENCH_OUT=bench/out    results.txt, results.json, logs
set -eu
here=$(cd "$(dirname "$0")" && pwd)
exec python3 "$here/bench.py" "$@"
