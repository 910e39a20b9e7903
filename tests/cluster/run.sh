#!/bin/sh
# tests/cluster/run.sh - sipmesh on three real Debian 12 hosts, deployed
# by the ansible playbook over SSH and used by SIP clients.  `make
# test-cluster` runs it, as root.
#
# The hosts are systemd-nspawn containers booting a real systemd
# (-b --register=no --keep-unit), each in a network namespace of its
# own.  Everything network lives in namespaces this script creates and
# deletes: a "lab" namespace holds the bridge 10.213.0.1/24, a veth to
# each host (h1 10.213.0.11, h2 .12, h3 .13), and runs ansible and the
# SIP clients; the host's own interfaces and addresses are never
# touched.  Each host's root is an overlay on one cached Debian 12 root
# (mkroot.sh, /var/tmp/sipmesh-root), so three hosts cost one root plus
# what each writes.
#
# Steps, each logged as "cluster: step N ...":
#   1. build the root (once), boot the three hosts, wait for sshd;
#   2. ansible-playbook -i deploy/inventories/cluster/hosts.yml site.yml,
#      plus the run's extra variables (WORKDIR/vars.yml: the binaries of
#      this checkout, no apt mirror, this run's SSH key and secrets);
#   then sipmesh-ctl adds the accounts on h1, and
#   3-6. the SIP steps (sip.js): register through h1, MESSAGE and call
#      from h2 over UDP and WebSocket, stop h3, rolling restart of every
#      host, no binding lost;
#   7. the playbook again: changed=0 on every host.
# The last line is "cluster: PASS in N s" or "cluster: FAIL: ...".
#
#   run.sh                  the whole test
#   run.sh --resume DIR     steps 3-7 again on the hosts of a kept run
#   run.sh --host DIR stop|boot N   power host N off or boot it (sip.js)
#   run.sh --clean DIR      stop a kept run's hosts, remove its namespaces
#
# Environment: SIPMESH_BIN (binaries, default build/bin),
# SIPMESH_CLUSTER_ROOT (cached root), SIPMESH_CLUSTER_KEEP=1 (leave the
# hosts running and the work dir in place).  Log in to a kept host with
#   nsenter --net=/run/netns/<DIR/id>-lab ssh -i DIR/id_ed25519 root@10.213.0.11
set -eu
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
BIN=${SIPMESH_BIN:-$top/build/bin}
ROOT=${SIPMESH_CLUSTER_ROOT:-/var/tmp/sipmesh-root}
NET=10.213.0
HOSTS="1 2 3"

fail() { echo "cluster: FAIL: $*" >&2; exit 1; }
step() { echo "cluster: step $*"; }

# ---- teardown ------------------------------------------------------------
# Everything a run made is named in its work dir: the nspawn pids, the
# overlay mounts and the namespaces.  --clean DIR undoes a kept run.
stop_host() {	# dir i
	p=$(cat "$1/h$2/nspawn.pid" 2>/dev/null || true)
	[ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 0
	# SIGTERM: nspawn asks the container's systemd for an orderly
	# poweroff (SIGRTMIN+3) and exits when it is done.
	kill -TERM "$p" 2>/dev/null || true
	n=0
	while kill -0 "$p" 2>/dev/null && [ $n -lt 300 ]; do sleep 0.1; n=$((n + 1)); done
	if kill -0 "$p" 2>/dev/null; then
		echo "cluster: h$2 did not power off in 30 s: killed"
		kill -KILL "$p" 2>/dev/null || true
		sleep 1
	fi
	rm -f "$1/h$2/nspawn.pid"
}

teardown() {	# dir
	d=$1
	id=$(cat "$d/id" 2>/dev/null || true)
	for i in $HOSTS; do
		stop_host "$d" "$i"
		if mountpoint -q "$d/h$i/root" 2>/dev/null; then umount -l "$d/h$i/root" || true; fi
		if [ -n "$id" ]; then ip netns del "$id-h$i" 2>/dev/null || true; fi
	done
	if [ -n "$id" ]; then ip netns del "$id-lab" 2>/dev/null || true; fi
	rm -rf "$d"
}

boot() {	# i
	h=$W/h$1
	ID=$(cat "$W/id")
	systemd-nspawn -b -D "$h/root" --register=no --keep-unit \
		--network-namespace-path="/run/netns/$ID-h$1" \
		--machine="$ID-h$1" --hostname="h$1" --console=passive \
		--link-journal=no >>"$h/console.log" 2>&1 &
	echo $! >"$h/nspawn.pid"
}

ssh_opts() {
	echo "-i $W/id_ed25519 -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR -o ConnectTimeout=3 -o BatchMode=yes"
}
hssh() {	# i cmd...
	i=$1; shift
	nsenter --net="/run/netns/$ID-lab" ssh $(ssh_opts) "root@$NET.1$i" "$@"
}

wait_ssh() {	# i
	n=0
	until hssh "$1" true 2>/dev/null; do
		n=$((n + 1))
		if [ $n -gt 90 ] || ! kill -0 "$(cat "$W/h$1/nspawn.pid")" 2>/dev/null; then
			tail -30 "$W/h$1/console.log"
			fail "h$1: no SSH on $NET.1$1:22 after boot"
		fi
		sleep 1
	done
	# Until every unit of the boot has started (or failed).
	hssh "$1" systemctl is-system-running --wait >/dev/null || true
}

if [ "${1:-}" = "--clean" ]; then
	teardown "${2:?--clean DIR}"
	exit 0
fi
# --host DIR stop|boot N: what sip.js does to a host of a running test.
if [ "${1:-}" = "--host" ]; then
	W=${2:?--host DIR stop|boot N}
	ID=$(cat "$W/id")
	case ${3:-} in
	stop) stop_host "$W" "$4" ;;
	boot) boot "$4"; wait_ssh "$4" ;;
	*) fail "--host DIR stop|boot N" ;;
	esac
	exit 0
fi

# ---- preconditions -------------------------------------------------------
[ "$(id -u)" = 0 ] || fail "needs root (namespaces, mounts, systemd-nspawn)"
for t in systemd-nspawn debootstrap ansible-playbook ssh ssh-keygen ip node mountpoint; do
	command -v "$t" >/dev/null 2>&1 || fail "$t not found (sh scripts/deps.sh --cluster)"
done
for b in sipmesh-edge sipmesh-core sipmesh-rtpctl sipmesh-ctl; do
	[ -x "$BIN/$b" ] || fail "$BIN/$b missing (make build-all)"
done
[ -d "$top/tests/integ/node_modules/ws" ] ||
	npm ci --prefix "$top/tests/integ" --no-audit --no-fund --loglevel=error

T0=$(date +%s)
# --resume DIR: steps 3-7 again on the hosts a kept run left running.
RESUME=
if [ "${1:-}" = "--resume" ]; then
	RESUME=1
	W=${2:?--resume DIR}
	ID=$(cat "$W/id")
else
	sh "$here/mkroot.sh" "$ROOT"
	W=$(mktemp -d /var/tmp/sipmesh-cluster.XXXXXX)
	ID=smc$(basename "$W" | tr -dc 'a-zA-Z0-9' | tail -c 6)
	echo "$ID" >"$W/id"
fi
if [ "${SIPMESH_CLUSTER_KEEP:-0}" = 1 ] || [ -n "$RESUME" ]; then
	trap 'echo "cluster: kept $W (sh tests/cluster/run.sh --clean $W)"' EXIT
else
	trap 'teardown "$W"' EXIT
fi
trap 'exit 130' INT TERM
# Only the network namespace: `ip netns exec` would also remount /sys,
# hiding the cgroup tree from the systemd-nspawn that sip.js starts.
LAB="nsenter --net=/run/netns/$ID-lab"

# ---- step 1: network and hosts ----------------------------------------------
if [ -z "$RESUME" ]; then
step "1: three Debian 12 hosts (systemd-nspawn -b), bridge $NET.0/24 in namespace $ID-lab"
ip netns add "$ID-lab"
ip -n "$ID-lab" link set lo up
ip -n "$ID-lab" link add br0 type bridge
ip -n "$ID-lab" addr add "$NET.1/24" dev br0
ip -n "$ID-lab" link set br0 up
ssh-keygen -q -t ed25519 -N '' -C "sipmesh cluster test" -f "$W/id_ed25519"
for i in $HOSTS; do
	ns=$ID-h$i
	ip netns add "$ns"
	ip -n "$ns" link set lo up
	ip -n "$ID-lab" link add "veth$i" type veth peer name eth0 netns "$ns"
	ip -n "$ID-lab" link set "veth$i" master br0 up
	ip -n "$ns" addr add "$NET.1$i/24" dev eth0
	ip -n "$ns" link set eth0 up

	h=$W/h$i
	mkdir -p "$h/upper" "$h/work" "$h/root"
	mount -t overlay overlay -o "lowerdir=$ROOT,upperdir=$h/upper,workdir=$h/work" "$h/root"
	echo "h$i" >"$h/root/etc/hostname"
	{
		echo "127.0.0.1 localhost"
		for j in $HOSTS; do echo "$NET.1$j h$j"; done
	} >"$h/root/etc/hosts"
	mkdir -p -m 700 "$h/root/root/.ssh"
	cp "$W/id_ed25519.pub" "$h/root/root/.ssh/authorized_keys"
	ssh-keygen -q -A -f "$h/root"
	# The address is set from outside (above); nothing in the host
	# manages the network.  No login prompt on the console.
	ln -sf /dev/null "$h/root/etc/systemd/system/console-getty.service"
done

for i in $HOSTS; do boot "$i"; done
for i in $HOSTS; do
	wait_ssh "$i"
	echo "cluster: h$i up: $(hssh "$i" 'systemctl is-system-running; uname -n' | tr '\n' ' ')"
done
echo "cluster: step 1 done in $(( $(date +%s) - T0 )) s"
fi

# ---- step 2: the playbook ----------------------------------------------------
# The cluster inventory as an operator would use it, plus what only the
# test needs: the binaries of this checkout (no compiler in the hosts),
# no apt mirror, this run's SSH key and secrets, a quick failover.
cat >"$W/vars.yml" <<VARS
sipmesh_build_mode: prebuilt
sipmesh_prebuilt_local: $BIN
sipmesh_apt_update: false
sipmesh_credentials_dir: $W/credentials
ansible_ssh_private_key_file: $W/id_ed25519
ansible_ssh_common_args: -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null -o LogLevel=ERROR
sipmesh_sentinel_down_after_ms: 3000
sipmesh_sentinel_failover_timeout_ms: 10000
sipmesh_log_level: info
VARS

playbook() {	# log-name
	(cd "$top/deploy" &&
	 ANSIBLE_CONFIG="$top/deploy/ansible.cfg" ANSIBLE_NOCOLOR=1 \
	 ANSIBLE_FORCE_COLOR=0 ANSIBLE_PIPELINING=1 \
	 $LAB ansible-playbook -i inventories/cluster/hosts.yml site.yml \
		-e "@$W/vars.yml") >"$W/$1.log" 2>&1
	prc=$?
	sed -n '/^PLAY RECAP/,$p' "$W/$1.log"
	return $prc
}

if [ -z "$RESUME" ]; then
T2=$(date +%s)
step "2: ansible-playbook -i deploy/inventories/cluster/hosts.yml site.yml (over SSH)"
playbook playbook-1 || { tail -40 "$W/playbook-1.log"; fail "the playbook failed (log: $W/playbook-1.log)"; }
echo "cluster: step 2 done in $(( $(date +%s) - T2 )) s"
for i in $HOSTS; do
	echo "cluster: h$i runs: $(hssh "$i" "systemctl list-units --state=running --no-legend 'sipmesh*' 'redis*' | awk '{print \$1}' | tr '\n' ' '")"
done
fi

# ---- steps 3-6: SIP ------------------------------------------------------------
# Accounts, made as an operator does: sipmesh-ctl on a host (it finds
# the Redis master through the sentinels).
PASS=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')
users="alice bob carol dave eve"
n=1
while [ $n -le 20 ]; do users="$users $(printf 'u%03d' $n)"; n=$((n + 1)); done
for u in $users; do echo "$u@example.com"; done | hssh 1 "
	while read -r a; do
		echo '$PASS' | sipmesh-ctl -c /etc/sipmesh/sipmesh.conf user add \"\$a\" >/dev/null || exit 1
	done" || fail "sipmesh-ctl user add on h1"
echo "cluster: $(echo $users | wc -w) accounts added with sipmesh-ctl on h1"

# The SIP steps' own lines are printed again after the hosts'
# journals: a CI log shows only its last lines, and the failed check
# must be among them.
SIPMESH_CLUSTER_PASS=$PASS SIPMESH_CLUSTER_USERS=20 \
	$LAB node "$here/sip.js" "$W" 2>&1 | tee "$W/sip.log"
if ! grep -q '^cluster: SIP steps done' "$W/sip.log"; then
	for i in $HOSTS; do
		echo "--- h$i: journal of the sipmesh units (last 40 lines)"
		hssh "$i" "journalctl --no-pager -n 40 -u 'sipmesh*' -u 'redis*'" 2>/dev/null || true
	done
	echo "--- the SIP steps' last lines (again)"
	tail -12 "$W/sip.log"
	fail "SIP steps"
fi

# ---- step 7: the playbook again ------------------------------------------------
step "7: the playbook again: nothing to change"
playbook playbook-2 || { tail -40 "$W/playbook-2.log"; fail "the second playbook run failed"; }
if grep -E '^h[0-9]+ +:' "$W/playbook-2.log" | grep -vq 'changed=0 '; then
	grep -B4 '^changed:' "$W/playbook-2.log" | grep -E '^TASK|^changed' || true
	fail "the second run changed something (log: $W/playbook-2.log)"
fi
echo "cluster: second run: changed=0 on every host"
echo "cluster: PASS in $(( $(date +%s) - T0 )) s"
