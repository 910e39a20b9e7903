#!/bin/sh
# Installs every Debian package sipmesh needs to build, run, test and
# bench.  Idempotent: packages already present are not touched, and
# apt-get runs only when something is missing.  Used by `make run`,
# `make test`, `make bench` and .ci/run.
set -eu

PKGS="build-essential pkg-config
libosip2-dev libhiredis-dev libnanomsg-dev libuv1-dev libc-ares-dev
libinih-dev libcmocka-dev libwebsockets-dev libssl-dev
redis-server sip-tester iproute2 procps rtpengine-daemon ansible-core openssl chromium"

[ "${1:-}" = "--bench" ] && PKGS="$PKGS kamailio kamailio-extra-modules kamailio-websocket-modules"

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing="$missing $p"
done
# Node.js may come from elsewhere than Debian (a newer one is fine):
# only install Debian's when the commands are absent.
command -v node >/dev/null 2>&1 || missing="$missing nodejs"
command -v npm >/dev/null 2>&1 || missing="$missing npm"
[ -z "$missing" ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "deps: missing packages:$missing (run as root to install)" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
# Packaged daemons must not start and take our ports (redis 6379,
# kamailio 5060): tests start their own on free ports.
printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
chmod +x /usr/sbin/policy-rc.d
trap 'rm -f /usr/sbin/policy-rc.d' EXIT
apt-get update -qq
apt-get install -y -qq --no-install-recommends $missing
# rtpengine's package enables its own service; sipmesh starts its
# rtpengine instances itself (make run, tests), so keep it off at boot.
if command -v deb-systemd-helper >/dev/null 2>&1; then
	deb-systemd-helper disable rtpengine-daemon.service >/dev/null 2>&1 || true
fi
update-rc.d rtpengine-daemon disable >/dev/null 2>&1 || true
