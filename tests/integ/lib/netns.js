'use strict';
/*
 * netns.js - runs a test file inside a network namespace of its own
 * that holds only loopback (all of 127/8 on lo, nothing else), and a
 * private mount namespace where /etc/resolv.conf is a bind mount of a
 * file the test writes.  Inside, a test may use fixed ports (5060 on
 * addresses of its own) and the system resolver, as a deployment does,
 * without touching the machine or the files running beside it.
 *
 * The test runner starts the file; the first thing it does is
 * reexecInNetns(): outside, it runs the same file again (same node
 * flags, same environment) under `unshare --net --mount`, its stdout
 * and stderr the runner's own, so the runner reads the inner process's
 * results as the file's; it forwards the runner's signals to that
 * process by its pid (unshare, setpriv and sh exec: the pid is the
 * inner node's) and exits with its status.  Inside, it returns true and the file goes on.
 * When the inner process exits, every process in the namespace that it
 * started has been stopped (lib/cluster.js kills its children by pid on
 * exit), and the namespaces vanish with it.  Needs root (CI runs tests
 * as root).
 */
const { spawn, spawnSync } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const MARK = 'SIPMESH_NETNS_FILE';

/*
 * The start of a sh -c script run under `unshare --mount --propagation
 * unchanged`: it makes the new mount namespace private before any
 * mount, so nothing mounted in it shows outside.  `unshare --propagation
 * private` does that itself, but fails where / is not a mount point (a
 * chroot, as in ../shared/tools/fresh-check.sh); there the first
 * private mount is /etc, bound onto itself.
 */
const PRIVATE_MOUNTS = '{ mount --make-rprivate / 2>/dev/null || ' +
	'{ mount --bind /etc /etc && mount --make-private /etc; }; } && ';

/*
 * file: the test file (__filename); resolv: the text of
 * /etc/resolv.conf inside.  Returns true inside the namespace; outside
 * it returns false after starting the inner run, and the caller must
 * define no tests.
 */
function reexecInNetns(file, resolv) {
	if (process.env[MARK] === file) return true;
	const probe = spawnSync('unshare', ['--net', '--mount', '--propagation', 'unchanged', 'sh', '-c',
		`${PRIVATE_MOUNTS}true`], { encoding: 'utf8' });
	if (probe.status !== 0) {
		/* Fail loudly: a skipped file would pass with nothing shown. */
		console.error(`${path.basename(file)}: cannot make a network namespace ` +
			`(unshare --net --mount needs root): ${probe.stderr || probe.error}`);
		process.exitCode = 1;
		return false;
	}
	const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'smns-'));
	const conf = path.join(dir, 'resolv.conf');
	fs.writeFileSync(conf, resolv);
	/* setpriv --pdeathsig: should this process die without a word
	 * (SIGKILL), the inner one gets SIGTERM and stops its own. */
	const child = spawn('unshare', ['--net', '--mount', '--propagation', 'unchanged',
		'setpriv', '--pdeathsig', 'SIGTERM', 'sh', '-c',
		`${PRIVATE_MOUNTS}ip link set lo up && mount --bind "$0" /etc/resolv.conf && exec "$@"`,
		conf, process.execPath, ...process.execArgv, file], {
		stdio: 'inherit',
		env: { ...process.env, [MARK]: file },
	});
	const forward = (sig) => { try { process.kill(child.pid, sig); } catch { /* gone */ } };
	const sigs = ['SIGTERM', 'SIGINT', 'SIGHUP'];
	for (const s of sigs) process.on(s, forward);
	child.on('exit', (code, signal) => {
		for (const s of sigs) process.removeListener(s, forward);
		fs.rmSync(dir, { recursive: true, force: true });
		process.exitCode = signal ? 128 + os.constants.signals[signal] : code;
	});
	return false;
}

/* The address of the resolver (a lib/dnsmasq.js on port 53) that
 * /etc/resolv.conf names in reexecWithResolver()'s namespace. */
const RESOLVER_ADDR = '127.0.53.53';

/* reexecInNetns() with /etc/resolv.conf naming RESOLVER_ADDR, one
 * second per try and two tries (a missing answer fails fast). */
function reexecWithResolver(file) {
	return reexecInNetns(file, `nameserver ${RESOLVER_ADDR}\noptions timeout:1 attempts:2\n`);
}

module.exports = { PRIVATE_MOUNTS, reexecInNetns, RESOLVER_ADDR, reexecWithResolver };
