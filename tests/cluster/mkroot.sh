#!/bin/sh
# tests/cluster/mkroot.sh ROOT - the Debian 12 root every test host boots
# from (read-only lower layer of an overlay per host), made once by
# debootstrap and cached: a root whose stamp names the same package list
# is kept.  Holds what a freshly installed Debian host with sipmesh's
# runtime packages holds, so the playbook finds them installed and the
# containers need no mirror (they have no route out of their bridge).
#
# The mirror is the one apt uses on this machine (first URIs: of
# /etc/apt/sources.list.d/debian.sources, else deb.debian.org).
set -eu
ROOT=${1:?usage: mkroot.sh ROOT}

# systemd, sshd and python3: what ansible needs of a host.  The rest: the
# libraries the sipmesh binaries link against (deploy/group_vars/all.yml
# sipmesh_runtime_packages), Redis, Sentinel and rtpengine, which the
# roles install with apt on a real host.
PKGS="systemd,systemd-sysv,dbus,openssh-server,python3,python3-apt,iproute2,procps,
libosip2-15,libhiredis0.14,libnanomsg5,libuv1,libinih1,libc-ares2,
libwebsockets17,libwebsockets-evlib-uv,libssl3,libcap2,ca-certificates,
redis-server,redis-sentinel,rtpengine-daemon"
PKGS=$(echo "$PKGS" | tr -d ' \n')
STAMP="bookworm minbase $PKGS v1"

if [ -f "$ROOT/.sipmesh-root" ] && [ "$(cat "$ROOT/.sipmesh-root")" = "$STAMP" ]; then
	exit 0
fi

MIRROR=$(awk '/^URIs:/ { print $2; exit }' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
MIRROR=${MIRROR:-http://deb.debian.org/debian}
echo "cluster: building the host root $ROOT from $MIRROR (once; cached)"
rm -rf "$ROOT.new"
mkdir -p "$ROOT.new"
debootstrap --variant=minbase --include="$PKGS" bookworm "$ROOT.new" "$MIRROR" \
	>"$ROOT.new.log" 2>&1 || {
	tail -20 "$ROOT.new.log"
	echo "cluster: debootstrap failed (full log: $ROOT.new.log)"
	exit 1
}

# Host keys are made per host at each test run (run.sh), never shared.
rm -f "$ROOT.new"/etc/ssh/ssh_host_*
rm -f "$ROOT.new"/var/cache/apt/archives/*.deb
echo "$STAMP" >"$ROOT.new/.sipmesh-root"
rm -rf "$ROOT"
mv "$ROOT.new" "$ROOT"
rm -f "$ROOT.new.log"
echo "cluster: host root ready ($(du -sh "$ROOT" | cut -f1))"
