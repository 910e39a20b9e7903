#!/bin/sh
# Installs every package sipmesh needs to build, run, test and bench.
# Idempotent: packages already present are not touched, and apt-get runs
# only when something is missing.  Used by `make run`, `make test`,
# `make bench` and .ci/run.
#
# Node.js: the test runners and the web build need Node.js >= 20
# (node --test with --test-concurrency/--test-timeout, playwright-core).
# Debian 12 ships Node.js 18, which is past its end of life, so when the
# `node` on PATH is older than 20 (or absent) this installs the official
# Node.js build that the npm registry carries as the package
# node-linux-<arch> (the same binary as nodejs.org's tarball, checked by
# npm against the registry's sha512) into $NODE_PREFIX, with /usr/local/bin/node
# pointing at it.  Debian's npm is the registry client that fetches it:
# nothing is downloaded from anywhere but Debian and the npm registry.
set -eu

NODE_VERSION=20.20.2
NODE_PREFIX=/usr/local/lib/sipmesh-node

PKGS="build-essential pkg-config
libosip2-dev libhiredis-dev libnanomsg-dev libuv1-dev libc-ares-dev
libinih-dev libcmocka-dev libwebsockets-dev libssl-dev
redis-server redis-sentinel dnsmasq-base sip-tester iproute2 iptables procps rtpengine-daemon ansible-core openssl ca-certificates chromium
prometheus
kamailio clang libfuzzer-14-dev libclang-rt-14-dev"

# prometheus: tests/integ/90-metrics scrapes every process with it.
# iptables: tests/integ/85-federation-netns-tls counts packets in its namespace.
# kamailio (core modules): the foreign domain of tests/integ/82-federation-kamailio;
# the bench also needs its rtpengine and WebSocket modules, and `make
# profile` valgrind.
[ "${1:-}" = "--bench" ] && PKGS="$PKGS kamailio-extra-modules kamailio-websocket-modules valgrind"
# make test-cluster: containers with a real systemd, their Debian root,
# and ansible's SSH client.
[ "${1:-}" = "--cluster" ] && PKGS="$PKGS systemd-container debootstrap openssh-client"

node_major() {
	command -v node >/dev/null 2>&1 || { echo 0; return; }
	node -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0
}

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
# Debian's npm is only the registry client; a newer npm (with its Node)
# is fine, so install it only when the command is absent.
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && [ "$(node_major)" -ge 20 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	[ -n "$missing" ] && echo "deps: missing packages:$missing (run as root to install)" >&2
	[ "$(node_major)" -ge 20 ] ||
		echo "deps: Node.js >= 20 needed, found $(node --version 2>/dev/null || echo none) (run as root to install $NODE_VERSION)" >&2
	exit 1
fi

if [ -n "$missing" ]; then
	echo "deps: installing$missing"
	export DEBIAN_FRONTEND=noninteractive
	# Packaged daemons must not start and take our ports (redis 6379,
	# kamailio 5060): tests start their own on free ports.
	printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
	chmod +x /usr/sbin/policy-rc.d
	trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends $missing
	# rtpengine's, kamailio's and prometheus' packages enable their
	# own services (kamailio on 5060, which `make run` uses); sipmesh
	# starts its rtpengine instances and the tests their Kamailio and
	# Prometheus (tests/integ/90-metrics) themselves, so keep them off
	# at boot.
	for svc in rtpengine-daemon kamailio prometheus; do
		if command -v deb-systemd-helper >/dev/null 2>&1; then
			deb-systemd-helper disable $svc.service >/dev/null 2>&1 || true
		fi
		update-rc.d $svc disable >/dev/null 2>&1 || true
	done
fi

if [ "$(node_major)" -lt 20 ]; then
	case $(uname -m) in
	x86_64) arch=x64 ;;
	aarch64) arch=arm64 ;;
	armv7l) arch=armv7l ;;
	ppc64le) arch=ppc64le ;;
	s390x) arch=s390x ;;
	*) echo "deps: no Node.js package on the npm registry for $(uname -m)" >&2; exit 1 ;;
	esac
	echo "deps: installing Node.js $NODE_VERSION (npm package node-linux-$arch) into $NODE_PREFIX"
	npm install --global --prefix "$NODE_PREFIX" --no-audit --no-fund \
		--loglevel=error "node-linux-$arch@$NODE_VERSION"
	ln -sf "$NODE_PREFIX/bin/node" /usr/local/bin/node
	hash -r 2>/dev/null || true
	[ "$(node_major)" -ge 20 ] || {
		echo "deps: installed Node.js $NODE_VERSION but \`node\` on PATH is $(node --version);" \
		     "put /usr/local/bin before $(dirname "$(command -v node)") in PATH" >&2
		exit 1
	}
fi
