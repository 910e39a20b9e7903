#!/bin/sh
# `make run`: starts a whole sipmesh cluster on loopback in the
# foreground - Redis (when configured and not already listening), the
# rtpengines and rtpctl processes, the cores and the edges of the
# configuration - and stops all of it on Ctrl-C.  Each process runs
# under a small supervisor, as systemd runs them in deploy/: one that
# dies is logged and started again after a back-off (1 s, doubling up
# to 30 s, back to 1 s once it has run for a minute).  The
# configuration is etc/sipmesh.conf, or the sample.
set -u
cd "$(dirname "$0")/.."
BIN=${SIPMESH_BIN:-build/bin}
CONF=${SIPMESH_CONF:-etc/sipmesh.conf}
[ -f "$CONF" ] || CONF=etc/sipmesh.conf.sample

layout=$("$BIN/sipmesh-core" -c "$CONF" -L) || exit 1
pids=""

# The KwikyKonf web app the edges serve (http_root, web/dist by
# default): built when missing or older than its sources.  Without
# npm packages and no network the cluster still runs, without it.
if [ ! -f web/dist/index.html ] || [ -n "$(find web/src web/package-lock.json -newer web/dist/index.html 2>/dev/null | head -1)" ]; then
	sh web/build.sh || echo "sipmesh: could not build KwikyKonf (web/dist); HTTP will answer 404"
fi

# The transports come from the edges themselves: `sipmesh-edge -L`
# prints "listen <key> <address> <flags>" for each one configured,
# with the flags of the table in lib/env.h (stream, ws, secure, dial),
# so nothing here names a transport.
#
# Secure transports (SIP over TLS, WSS) need a certificate.  When an
# edge listens on one and the configuration names none, make a
# self-signed pair once (build/run/tls/) and run with a copy of the
# configuration that points every edge at it.
need_cert=0
for id in $(echo "$layout" | awk '$1 == "edge" { print $2 }'); do
	l=$("$BIN/sipmesh-edge" -c "$CONF" -i "$id" -L) || exit 1
	if echo "$l" | awk '$1 == "tls_cert" && $2 != "" { c = 1 }
	    $1 == "listen" { for (i = 4; i <= NF; i++) if ($i == "secure") t = 1 }
	    END { exit !(t && !c) }'; then
		need_cert=1
	fi
done
if [ $need_cert = 1 ]; then
	tlsdir=build/run/tls
	if [ ! -s "$tlsdir/cert.pem" ] || [ ! -s "$tlsdir/key.pem" ]; then
		mkdir -p "$tlsdir"
		openssl req -x509 -newkey rsa:2048 -nodes -days 825 \
			-subj /CN=localhost \
			-addext "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1" \
			-keyout "$tlsdir/key.pem" -out "$tlsdir/cert.pem" \
			>/dev/null 2>&1 || { echo "sipmesh: openssl failed"; exit 1; }
		chmod 600 "$tlsdir/key.pem"
		echo "sipmesh: made a self-signed TLS certificate in $tlsdir"
	fi
	{ cat "$CONF"; printf '\n[edge]\ntls_cert = %s\ntls_key = %s\n' \
		"$PWD/$tlsdir/cert.pem" "$PWD/$tlsdir/key.pem"; } > build/run/sipmesh.conf
	CONF=build/run/sipmesh.conf
fi

# supervise NAME CMD...: runs CMD in the background under a
# supervisor subshell whose pid joins $pids.  The supervisor restarts
# CMD when it exits, with back-off; SIGTERM to the supervisor stops CMD
# and the supervisor.
supervise() {
	name=$1
	shift
	(
		child= nap=
		trap 'trap - TERM; kill -TERM $child $nap 2>/dev/null; wait $child 2>/dev/null; exit 0' TERM
		# Ctrl-C is for the main shell, which stops everything; the
		# processes run in sessions of their own (setsid), out of the
		# terminal's reach, so none dies and restarts meanwhile.
		trap '' INT
		delay=1
		while :; do
			started=$(date +%s)
			setsid "$@" &
			child=$!
			wait $child
			rc=$?
			child=
			[ $(($(date +%s) - started)) -ge 60 ] && delay=1
			echo "sipmesh: $name exited ($rc); restarting in $delay s"
			sleep "$delay" &
			nap=$!
			wait $nap
			nap=
			delay=$((delay * 2))
			[ $delay -gt 30 ] && delay=30
		done
	) &
	pids="$pids $!"
}

stop() {
	trap - INT TERM
	echo "sipmesh: stopping"
	[ -n "${waiter:-}" ] && kill "$waiter" 2>/dev/null
	for p in $pids; do kill -TERM "$p" 2>/dev/null; done
	for p in $pids; do wait "$p" 2>/dev/null; done
	shm=$(echo "$layout" | awk '$1 == "shm" { print $2 }')
	# and the edges' per-source rate table, named after it
	rm -f "/dev/shm${shm}" "/dev/shm${shm}-edge-limit"
	exit "${1:-0}"
}
trap 'stop 0' INT TERM

redis=$(echo "$layout" | awk '$1 == "redis" { print $2 }')
if [ -n "$redis" ]; then
	rhost=${redis%:*}
	rport=${redis##*:}
	if redis-cli -h "$rhost" -p "$rport" ping >/dev/null 2>&1; then
		echo "sipmesh: using the Redis already on $redis"
	else
		supervise redis redis-server --bind "$rhost" --port "$rport" \
			--save '' --appendonly no --loglevel warning
		i=0
		until redis-cli -h "$rhost" -p "$rport" ping >/dev/null 2>&1; do
			i=$((i + 1))
			[ $i -gt 50 ] && { echo "sipmesh: redis did not start"; stop 1; }
			sleep 0.1
		done
		echo "sipmesh: Redis on $redis"
	fi
fi

# rtpengine in userspace (no kernel module, no Debian config file),
# then the rtpctl processes that pool them.  The media ports 20000-59999
# are shared out between the instances (10,000 each at most: about
# 2,500 calls of two relayed legs), and a deleted call frees its ports
# after 1 s instead of rtpengine's default 30 s, which at 30 calls/s
# would hold a thousand calls' ports for nothing.
engines=$(echo "$layout" | awk '$1 == "rtpengine" { print $2 }')
n=$(echo "$engines" | grep -c .)
span=$((40000 / (n > 0 ? n : 1)))
[ $span -gt 10000 ] && span=10000
i=0
for ng in $engines; do
	lo=$((20000 + i * span))
	supervise "rtpengine $ng" rtpengine --config-file=none --table=-1 \
		--foreground --listen-ng="$ng" --interface="${ng%:*}" \
		--port-min=$lo --port-max=$((lo + span - 1)) --delete-delay=1 \
		--log-stderr --log-level=5
	echo "sipmesh: rtpengine ng $ng, media ports $lo-$((lo + span - 1))"
	i=$((i + 1))
done
for id in $(echo "$layout" | awk '$1 == "rtpctl" { print $2 }'); do
	supervise "rtpctl $id" "$BIN/sipmesh-rtpctl" -c "$CONF" -i "$id"
done

for id in $(echo "$layout" | awk '$1 == "core" { print $2 }'); do
	supervise "core $id" "$BIN/sipmesh-core" -c "$CONF" -i "$id"
done
for id in $(echo "$layout" | awk '$1 == "edge" { print $2 }'); do
	supervise "edge $id" "$BIN/sipmesh-edge" -c "$CONF" -i "$id"
done

for id in $(echo "$layout" | awk '$1 == "edge" { print $2 }'); do
	# A WebSocket transport's key is its URL scheme (RFC 6455: ws,
	# wss) and its port serves KwikyKonf over HTTP(S).
	"$BIN/sipmesh-edge" -c "$CONF" -i "$id" -L | awk -v id="$id" '
	    $1 == "listen" {
		ws = sec = 0
		for (i = 4; i <= NF; i++) {
			if ($i == "ws") ws = 1
			if ($i == "secure") sec = 1
		}
		if (!ws) {
			printf "sipmesh: SIP %s on %s (edge %s)\n", toupper($2), $3, id
			next
		}
		printf "sipmesh: SIP %s on %s://%s (edge %s)\n", toupper($2), $2, $3, id
		a = $3
		sub(/^0\.0\.0\.0:/, "127.0.0.1:", a)
		web = web (web == "" ? "" : " and ") (sec ? "https" : "http") "://" a "/"
	    }
	    $1 == "http_root" { root = $2 }
	    END {
		if (root == "" || web == "") exit
		printf "sipmesh: KwikyKonf on %s (edge %s; open it in two tabs)\n", web, id }'
done
# Prometheus metrics ([edge N]/[core N] metrics, [rtpctl] metrics):
# where each process serves them; deploy/prometheus/ scrapes them.
echo "$layout" | awk '$1 == "metrics" {
	printf "sipmesh: metrics of %s %s on http://%s/metrics\n", $2, $3, $4 }'
echo "sipmesh: running with $CONF; Ctrl-C stops everything"

# The supervisors restart what dies; this shell only waits for Ctrl-C.
while :; do
	sleep 3600 &
	waiter=$!
	wait $waiter
done
