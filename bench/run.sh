#!/bin/sh
# sipmesh bench: sipp load against the sipmesh cluster and against
# Kamailio (Debian package, bench/kamailio.cfg) in the same run.
# Run by `make bench` (SIPMESH_BIN=<abs build/bin>); not part of make test.
#
# Environment (all optional):
#   BENCH_QUICK=1          short trials (3 s) and a coarse rate search
#   BENCH_DURATION=10      seconds of load per trial
#   BENCH_SERVERS=sipmesh,kamailio
#   BENCH_SCENARIOS=register,message,call,media,ws
#   BENCH_RATES=register=20000,call=1000   fixed rates, no search
#   BENCH_KAM_SHM_MB=2048 BENCH_KAM_PKG_MB=64 BENCH_KAM_CHILDREN=2
#   BENCH_KAM_MEDIA_CHILDREN=8   Kamailio -n for the media scenario
#   BENCH_CALL_HOLD_MS=1000  pause between ACK and BYE
#   BENCH_RTPENGINES=2 BENCH_RTP_PORTS=5000   media: daemons, ports each
#   BENCH_WS_STAGES=1000,5000,10000,19000     ws: connections held
#   BENCH_WS_EDGES=3 BENCH_WSE_STAGES=10000,25000,50000   wsedges
#   BENCH_REDIS_SHARDS=1   redis-servers the bindings are sharded over
#   BENCH_OUT=bench/out    results.txt, results.json, logs
# See bench/README.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# The WebSocket load generator (scenario ws) needs the `ws` package.
case ",${BENCH_SCENARIOS:-ws}," in
*,ws,*|*,wsedges,*)
	if [ ! -d "$here/node_modules/ws" ]; then
		(cd "$here" && npm install --no-audit --no-fund --loglevel=error) ||
			echo "bench: npm install in bench/ failed: scenario ws will be left out" >&2
	fi
	;;
esac
exec python3 "$here/bench.py" "$@"
