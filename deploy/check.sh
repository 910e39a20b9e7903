#!/bin/sh
# Checks deploy/ without applying anything and without contacting any
# host: every step runs on this machine only.
#   1. ansible-playbook --syntax-check of site.yml and render.yml with
#      both inventories;
#   2. ansible-lint, when it is installed;
#   3. renders sipmesh.conf, the units and the Redis settings with both
#      inventories (render.yml: connection local, delegate_to localhost);
#   4. feeds each rendered sipmesh.conf to the real loader
#      (sipmesh-core -c FILE -L) and compares the layout it prints with
#      the inventory: instance ids per host, addresses, every key of
#      etc/sipmesh.conf.sample present;
#   5. promtool check config of the rendered Prometheus scrape
#      configuration, and systemd-analyze verify of the rendered units,
#      when available.
# Ends with one line: "deploy check: PASS" or "deploy check: FAIL (...)".
# SIPMESH_CORE overrides the loader binary (default ../build/bin/sipmesh-core).
set -u
cd "$(dirname "$0")" || exit 1
DEPLOY=$(pwd)
export ANSIBLE_CONFIG="$DEPLOY/ansible.cfg"
export ANSIBLE_NOCOLOR=1 NO_COLOR=1
export ANSIBLE_RETRY_FILES_ENABLED=0
CORE=${SIPMESH_CORE:-$DEPLOY/../build/bin/sipmesh-core}
SAMPLE=$DEPLOY/../etc/sipmesh.conf.sample
TMP=$(mktemp -d "${TMPDIR:-/tmp}/sipmesh-deploy-check.XXXXXX") || exit 1
trap 'rm -rf "$TMP"' EXIT
failed=""

ok() { echo "ok   $*"; }
bad() { echo "FAIL $*"; failed="$failed
  $*"; }
# run LABEL CMD...: runs CMD, shows its output only when it fails.
run() {
	label=$1
	shift
	if "$@" >"$TMP/out" 2>&1; then
		ok "$label"
	else
		cat "$TMP/out"
		bad "$label"
	fi
}

command -v ansible-playbook >/dev/null 2>&1 || {
	echo "deploy check: FAIL (ansible-playbook not found: apt-get install ansible-core)"
	exit 1
}

# 1. Syntax.
for inv in single cluster; do
	run "syntax-check site.yml render.yml ($inv)" ansible-playbook \
		-i "inventories/$inv/hosts.yml" --syntax-check site.yml render.yml
done

# 2. Lint, only when installed.
if command -v ansible-lint >/dev/null 2>&1; then
	run "ansible-lint" ansible-lint --offline -q
else
	echo "skip ansible-lint (not installed)"
fi

# 3-5. Render each inventory and check what it produced.
[ -x "$CORE" ] || bad "loader $CORE not found: run make first"
for inv in single cluster; do
	out=$TMP/$inv
	mkdir -p "$out"
	run "render ($inv)" ansible-playbook -i "inventories/$inv/hosts.yml" \
		render.yml -e "sipmesh_render_dir=$out"
	conf=$out/sipmesh.conf
	[ -s "$conf" ] || { bad "rendered sipmesh.conf missing ($inv)"; continue; }

	if grep -n '{{\|{%' "$conf" "$out"/*.service "$out"/*.target \
		"$out"/redis-sipmesh.conf "$out"/prometheus-sipmesh.yml; then
		bad "unrendered Jinja left in the output ($inv)"
	fi

	[ -x "$CORE" ] || continue
	if "$CORE" -c "$conf" -L >"$out/layout" 2>"$out/layout.err"; then
		ok "loader accepts sipmesh.conf ($inv): $(grep -c '^edge ' "$out/layout") edges, $(grep -c '^core ' "$out/layout") cores"
		sed 's/^/       /' "$out/layout"
	else
		cat "$out/layout.err"
		bad "loader rejects sipmesh.conf ($inv)"
		continue
	fi

	# Instance ids: the sections of the file ("[core 3]" + "; on HOST")
	# against sipmesh_{edge,core}_ids of each host (render.yml writes
	# them), and against what the loader printed.
	awk '/^\[(edge|core) [0-9]+\]$/ { k = substr($1, 2); id = $2 + 0; next }
	     k != "" && /^; on / { print k, id, $3; k = "" }' "$conf" |
		sort >"$TMP/from-conf"
	cat "$out"/ids-* 2>/dev/null | sed '/^$/d' | sort >"$TMP/from-vars"
	awk '$1 == "edge" || $1 == "core" { print $1, $2 }' "$out/layout" |
		sort >"$TMP/from-loader"
	cut -d' ' -f1,2 "$TMP/from-conf" | sort >"$TMP/conf-ids"
	if [ -s "$TMP/from-vars" ] && cmp -s "$TMP/from-conf" "$TMP/from-vars" &&
	    cmp -s "$TMP/conf-ids" "$TMP/from-loader"; then
		ok "instance ids agree: inventory, sipmesh.conf, loader ($inv)"
	else
		echo "  sipmesh.conf:"; sed 's/^/    /' "$TMP/from-conf"
		echo "  host variables:"; sed 's/^/    /' "$TMP/from-vars"
		echo "  loader:"; sed 's/^/    /' "$TMP/from-loader"
		bad "instance ids disagree ($inv)"
	fi

	# Every key of the sample (commented-out ones included, e.g. ipc)
	# is set in the rendered file, in a section of the same kind.
	keys() {
		awk '/^\[/ { s = $1; sub(/^\[/, "", s); sub(/\]$/, "", s); next }
		     /^;? *[a-z_]+ *=/ { k = $0; sub(/^; */, "", k);
		                         sub(/ *=.*/, "", k); print s "." k }' "$1" |
			sort -u
	}
	keys "$SAMPLE" >"$TMP/keys-sample"
	grep -v '^;' "$conf" >"$TMP/conf-nocomment"
	keys "$TMP/conf-nocomment" >"$TMP/keys-conf"
	missing=$(comm -23 "$TMP/keys-sample" "$TMP/keys-conf")
	extra=$(comm -13 "$TMP/keys-sample" "$TMP/keys-conf")
	if [ -z "$missing" ] && [ -z "$extra" ]; then
		ok "every key of etc/sipmesh.conf.sample is set, no other ($inv)"
	else
		[ -n "$missing" ] && echo "  missing: $missing"
		[ -n "$extra" ] && echo "  not in the sample: $extra"
		bad "keys differ from etc/sipmesh.conf.sample ($inv)"
	fi

	# The scrape configuration: what Prometheus itself accepts.
	if command -v promtool >/dev/null 2>&1; then
		run "promtool check config prometheus-sipmesh.yml ($inv)" \
			promtool check config "$out/prometheus-sipmesh.yml"
	else
		echo "skip promtool (not installed)"
	fi

	if command -v systemd-analyze >/dev/null 2>&1; then
		# verify wants ExecStart= to exist: point it at this build.
		mkdir -p "$out/units"
		for u in "$out"/*.service "$out"/*.target; do
			sed "s#^ExecStart=[^ ]*/sipmesh-#ExecStart=$(dirname "$CORE")/sipmesh-#" "$u" \
				>"$out/units/$(basename "$u")"
		done
		if (cd "$out/units" && systemd-analyze verify --man=no \
			"$out/units/sipmesh-core@1.service" \
			"$out/units/sipmesh-edge@1.service" \
			"$out/units/sipmesh-rtpctl.service" \
			"$out/units/sipmesh-rtpengine.service" \
			"$out/units/sipmesh.target") >"$TMP/out" 2>&1 &&
		    [ ! -s "$TMP/out" ]; then
			ok "systemd-analyze verify of the units ($inv)"
		else
			cat "$TMP/out"
			bad "systemd-analyze verify of the units ($inv)"
		fi
	else
		echo "skip systemd-analyze (not installed)"
	fi
done

if [ -z "$failed" ]; then
	echo "deploy check: PASS"
	exit 0
fi
echo "deploy check: FAIL:$failed"
exit 1
