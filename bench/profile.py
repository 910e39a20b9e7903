#!/usr/bin/env python3
"""bench/profile.py - where sipmesh's user-space instructions go, per scenario.

`make profile` (issue 13).  CPU time per operation on a shared 2-core
machine moves by 20-30% between identical trials; instruction counts do
not.  This runs the bench's own sipmesh server (bench.py: config, Redis,
1 edge, 2 cores) with the edge and both cores under valgrind's callgrind,
one sipp trial per scenario at a low fixed rate (callgrind runs code
~50x slower), and reports per process:

  - instructions per message handled: the edge's edge_fwd_input and the
    cores' core_on_envelope, inclusive, divided by their calls (a
    relayed MESSAGE is 2 messages into the edge and 2 envelopes into the
    cores);
  - the functions with the most inclusive instructions, in
    <out>/profile-<scenario>-<process>.txt (callgrind_annotate), with
    the raw callgrind files beside them.

What this cannot see: the kernel (system calls, wake-ups, UDP and the
links' sockets), about half of the CPU per operation here; use
`perf record -g -p <pid>` during `make bench` for that.

Environment: PROFILE_SCENARIOS (register,message,call), PROFILE_RATES
(register=100,message=100,call=20), PROFILE_SECS (15), BENCH_OUT
(bench/out), SIPMESH_BIN (build/bin).
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
HOT = {"sipmesh-edge": "edge_fwd_input", "sipmesh-core": "core_on_envelope"}


def env(name, default):
    v = os.environ.get(name)
    return v if v else default


def per_call(path, func):
    """(calls, inclusive Ir) of func in a callgrind file."""
    out = subprocess.run(["callgrind_annotate", "--tree=caller", "--inclusive=yes", path],
                         capture_output=True, text=True).stdout
    calls = 0
    for line in out.splitlines():
        m = re.match(r"\s*([\d,]+) \([ \d.]+%\)  (<|\*)\s+(\S+)", line)
        if not m:
            if not line.strip():
                calls = 0
            continue
        if m.group(2) == "<":
            c = re.search(r"\(([\d,]+)x\)", line)
            calls += int(c.group(1).replace(",", "")) if c else 0
            continue
        if m.group(3).split(":")[-1] == func and calls:
            return calls, int(m.group(1).replace(",", ""))
        calls = 0
    return 0, 0


def wrap_bins(real, cgdir):
    """A bin folder whose edge and core run under callgrind."""
    wrap = tempfile.mkdtemp(prefix="sm-profile-bin-")
    for b in os.listdir(real):
        dst = os.path.join(wrap, b)
        if b in HOT:
            with open(dst, "w") as f:
                f.write("#!/bin/sh\nexec valgrind -q --tool=callgrind "
                        "--callgrind-out-file=%s/%s.%%p %s \"$@\"\n"
                        % (cgdir, b, os.path.join(real, b)))
            os.chmod(dst, 0o755)
        else:
            os.symlink(os.path.join(real, b), dst)
    return wrap


def main():
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        sys.exit("profile: valgrind (callgrind) is not installed: apt-get install valgrind")
    real = os.path.abspath(env("SIPMESH_BIN", os.path.join(HERE, "..", "build", "bin")))
    out = os.path.abspath(env("BENCH_OUT", os.path.join(HERE, "out")))
    secs = int(env("PROFILE_SECS", "15"))
    rates = {"register": 100, "message": 100, "call": 20}
    for item in env("PROFILE_RATES", "").split(","):
        if "=" in item:
            k, v = item.split("=", 1)
            rates[k.strip()] = int(v)
    scenarios = env("PROFILE_SCENARIOS", "register,message,call").split(",")
    os.makedirs(out, exist_ok=True)
    cgdir = tempfile.mkdtemp(prefix="sm-profile-cg-")
    os.environ.update(SIPMESH_BIN=wrap_bins(real, cgdir), BENCH_QUICK="1", BENCH_OUT=out)
    sys.path.insert(0, HERE)
    import bench as B
    B.LOG = open(os.path.join(out, "profile.log"), "a")
    B.DURATION = secs
    print("sipmesh user-space instructions (callgrind), %s, %d s per trial" % (real, secs))
    for scn in scenarios:
        wd = tempfile.mkdtemp(prefix="sm-profile-")
        srv = B.Sipmesh(wd)
        srv.start()
        try:
            b = B.Bench(srv, wd)
            if scn in ("message", "call"):
                b.register_callees()
            r = b.trial(scn, rates[scn])
        finally:
            srv.stop()
        print("%s at %d/s: %d ok, %.2f%% failed" % (scn, rates[scn], r["ok"], r["fail_pct"]))
        for f in sorted(os.listdir(cgdir)):
            proc, pid = f.split(".")
            path = os.path.join(out, "callgrind-%s-%s.%s" % (scn, proc, pid))
            shutil.move(os.path.join(cgdir, f), path)
            calls, ir = per_call(path, HOT[proc])
            print("  %-13s pid %-7s %6d messages %9.0f instructions each (%s)"
                  % (proc, pid, calls, ir / float(calls or 1), HOT[proc]))
            with open(os.path.join(out, "profile-%s-%s.%s.txt" % (scn, proc, pid)), "w") as t:
                t.write(subprocess.run(["callgrind_annotate", "--inclusive=yes", path],
                                       capture_output=True, text=True).stdout)
        shutil.rmtree(wd, ignore_errors=True)
    print("per-function listings: %s/profile-*.txt" % out)


if __name__ == "__main__":
    main()
