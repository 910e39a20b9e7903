#!/usr/bin/env python3
"""sipmesh bench: sipp against the sipmesh cluster and against Kamailio.

For each server (sipmesh: redis + 1 edge + 2 cores (BENCH_CORES); Kamailio from
Debian with bench/kamailio.cfg) and each scenario (REGISTER with 10,000
distinct users, MESSAGE to registered users, record-routed calls
INVITE..BYE, the same calls with media anchored on rtpengine), find the
highest rate sipp sustains with under 1% failed calls, and report
response-time percentiles, server CPU per operation and server memory,
side by side with the ratio sipmesh/Kamailio.  Scenario "ws": WebSocket
clients (bench/wsload.js) registered and kept open on one edge, memory
per connection.  Scenario "wsedges" (sipmesh only): the same through
BENCH_WS_EDGES edges of one host sharing the WS port (reuseport), up to
50,000 clients, with CPU per new connection and a MESSAGE to a client
of every edge.

Only loopback, free ports, processes stopped by PID.  Python 3 standard
library only.  See bench/run.sh for the environment variables.
"""

import json
import os
import re
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
SCN = os.path.join(HERE, "scenarios")
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
NCPU = os.cpu_count() or 1

DOMAIN = "sipmesh.test"
NUSERS = 10000      # distinct REGISTER users
NTARGETS = 100      # users registered by the UAS (MESSAGE / call targets)
MAX_BINDINGS = 100000   # [location] max_bindings default (etc/sipmesh.conf.sample)
AUTH_USERS = 200    # accounts (sipmesh-ctl) of the auth scenario


def env(name, default):
    v = os.environ.get(name)
    return default if v in (None, "") else v


QUICK = env("BENCH_QUICK", "0") not in ("0", "no", "")
DURATION = float(env("BENCH_DURATION", "3" if QUICK else "10"))
BISECT = int(env("BENCH_BISECT", "1" if QUICK else "2"))
SETTLE = float(env("BENCH_SETTLE", "1" if QUICK else "2"))
HOLD_MS = int(env("BENCH_CALL_HOLD_MS", "1000"))
SERVERS = env("BENCH_SERVERS", "sipmesh,kamailio").split(",")
SCENARIOS = [x.strip() for x in env("BENCH_SCENARIOS", "register,message,call,media,ws,wsedges,auth").split(",")
             if x.strip()]
SIPP_SCENARIOS = ("register", "message", "call", "media")
# media: as many userspace rtpengine daemons for either server, each with
# its own range of RTP_PORTS media ports (4 per call: RTP+RTCP per side)
RTPENGINES = int(env("BENCH_RTPENGINES", "2"))
RTP_PORTS = int(env("BENCH_RTP_PORTS", "8000"))
# ws: cumulative numbers of WebSocket connections held open on one edge
WS_STAGES = [int(x) for x in env("BENCH_WS_STAGES", "1000,5000,10000,19000").split(",") if x]
WS_SOURCES = int(env("BENCH_WS_SOURCES", "4"))      # 127.0.0.2 .. 127.0.0.(1+N)
# wsedges: edges sharing the WS port, cumulative connections after each stage
WS_EDGES = int(env("BENCH_WS_EDGES", "3"))
# Redis masters the bindings are sharded over ([redis] shards): one
# redis-server each, all counted in the server's CPU and memory.
REDIS_SHARDS = max(1, int(env("BENCH_REDIS_SHARDS", "1")))
# sipmesh-core processes: 2 as `make run` starts; 1 shows what fewer,
# fuller batches save on a 2-CPU machine
CORES = max(1, int(env("BENCH_CORES", "2")))
# of them, the last BENCH_STANDBY are [core N] standby = yes (a spare,
# sent to only when the others refuse): 1 as in `make run`'s sample
# configuration; 0: every core takes its share of the Call-IDs
STANDBY = min(CORES - 1, max(0, int(env("BENCH_STANDBY", "1"))))
WSE_STAGES = [int(x) for x in env("BENCH_WSE_STAGES", "10000,25000,50000").split(",") if x]
# connections per wsload.js process: it too may hold only 20,000 files
WS_LOADER_MAX = int(env("BENCH_WS_LOADER_MAX", "15000"))
WS_WINDOW = int(env("BENCH_WS_WINDOW", "100"))      # connections in progress at once
# auth: registrations/s of the auth on / off comparison (fixed, no search)
AUTH_RATE = int(env("BENCH_AUTH_RATE", "1000"))
NODE = env("BENCH_NODE", "node")
KAM_SHM = int(env("BENCH_KAM_SHM_MB", "2048"))
KAM_PKG = int(env("BENCH_KAM_PKG_MB", "64"))
KAM_CHILDREN = int(env("BENCH_KAM_CHILDREN", "2"))
# media: Kamailio's rtpengine module waits for every ng reply inside the
# SIP worker, so with -n 2 any rtpengine delay stalls all SIP traffic;
# deployments with rtpengine run more workers than cores.  8 by default.
KAM_MEDIA_CHILDREN = int(env("BENCH_KAM_MEDIA_CHILDREN", "8"))
OUT = os.path.abspath(env("BENCH_OUT", os.path.join(HERE, "out")))
SIPMESH_BIN = env("SIPMESH_BIN", os.path.join(os.path.dirname(HERE), "build", "bin"))
CONFIRM = env("BENCH_CONFIRM", "1") not in ("0", "no")
# bench/latprobe.c: its own REGISTERs or MESSAGEs beside sipp's, timed in
# microseconds (sipp's response times come in 4 ms steps here)
PROBE_RATE = int(env("BENCH_PROBE_RATE", "200"))
PROBE_MODE = {"register": "register", "message": "message", "call": "call", "media": "call"}
LATPROBE = env("BENCH_LATPROBE", os.path.join(os.path.dirname(SIPMESH_BIN), "bench", "latprobe"))
KAM_MODULES = "/usr/lib/x86_64-linux-gnu/kamailio/modules"
FAIL_LIMIT = 1.0      # percent
KEEPUP = 0.95         # achieved / target rate
START = {"register": 10000, "message": 4000, "call": 1000, "media": 500}
MAXRATE = {"register": 400000, "message": 200000, "call": 50000, "media": 50000}
FIXED = {}
for item in env("BENCH_RATES", "").split(","):
    if "=" in item:
        k, v = item.split("=", 1)
        FIXED[k.strip()] = int(v)

TITLE = {
    "register": "REGISTER/s (10,000 distinct users)",
    "message": "MESSAGE/s (to registered users, relayed to a sipp UAS)",
    "call": "calls/s (INVITE/180/200/ACK/%d ms/BYE/200, record-routed)" % HOLD_MS,
    "media": "calls/s with media anchored on rtpengine (the same calls; offer/answer/delete "
             "through %d rtpengine daemon%s)" % (RTPENGINES, "s" if RTPENGINES != 1 else ""),
}

LOG = None


def log(*a):
    s = " ".join(str(x) for x in a)
    print(s, flush=True)
    if LOG:
        LOG.write(s + "\n")
        LOG.flush()


# ---------------------------------------------------------------- helpers

_used_ports = set()


def free_port():
    """A free UDP port on 127.0.0.1 (also free for TCP), never 5060."""
    for _ in range(100):
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        port = u.getsockname()[1]
        t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            t.bind(("127.0.0.1", port))
        except OSError:
            continue
        finally:
            t.close()
            u.close()
        if port in _used_ports or port in (5060, 5061):
            continue
        _used_ports.add(port)
        return port
    raise RuntimeError("no free port")


def children_of(pids):
    """pids plus all their descendants (from /proc)."""
    ppid = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                s = f.read()
        except OSError:
            continue
        rest = s[s.rindex(")") + 2:].split()
        ppid.setdefault(int(rest[1]), []).append(int(d))
    out, todo = [], list(pids)
    while todo:
        p = todo.pop()
        if p in out:
            continue
        out.append(p)
        todo.extend(ppid.get(p, []))
    return out


def cpu_ticks(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            s = f.read()
    except OSError:
        return 0
    rest = s[s.rindex(")") + 2:].split()
    return int(rest[11]) + int(rest[12])      # utime + stime


def machine_busy_ticks():
    """Jiffies every CPU of the machine spent busy (not idle or iowait)."""
    with open("/proc/stat") as f:
        v = [int(x) for x in f.readline().split()[1:]]
    # user nice system idle iowait irq softirq steal (guest is in user)
    return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)


def pss_bytes(pid):
    try:
        with open("/proc/%d/smaps_rollup" % pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def rss_bytes(pid):
    try:
        with open("/proc/%d/statm" % pid) as f:
            return int(f.read().split()[1]) * PAGE
    except OSError:
        return 0


def sip_options_ok(port, timeout=0.5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    s.settimeout(timeout)
    lp = s.getsockname()[1]
    msg = ("OPTIONS sip:127.0.0.1:%d SIP/2.0\r\n"
           "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=z9hG4bK-bench-%d;rport\r\n"
           "Max-Forwards: 70\r\n"
           "From: <sip:bench@127.0.0.1>;tag=b%d\r\n"
           "To: <sip:127.0.0.1:%d>\r\n"
           "Call-ID: bench-options-%d-%f\r\n"
           "CSeq: 1 OPTIONS\r\n"
           "Content-Length: 0\r\n\r\n") % (port, lp, os.getpid(), lp, port, lp, time.time())
    try:
        s.sendto(msg.encode(), ("127.0.0.1", port))
        while True:
            data = s.recv(65535).decode("latin-1")
            first = data.split("\r\n", 1)[0]
            if first.startswith("SIP/2.0 1"):
                continue
            return first.startswith("SIP/2.0 200")
    except OSError:
        return False
    finally:
        s.close()


def wait_ready(port, procs, what, secs=20):
    end = time.time() + secs
    while time.time() < end:
        for p in procs:
            if p.poll() is not None:
                raise RuntimeError("%s exited (status %s) while starting" % (what, p.returncode))
        if sip_options_ok(port):
            return
        time.sleep(0.2)
    raise RuntimeError("%s does not answer OPTIONS on 127.0.0.1:%d" % (what, port))


def stop_proc(p, name, secs=5):
    if p is None or p.poll() is not None:
        return
    try:
        p.send_signal(signal.SIGTERM)
        p.wait(secs)
    except subprocess.TimeoutExpired:
        log("  %s (pid %d) did not stop on SIGTERM: SIGKILL" % (name, p.pid))
        p.kill()
        p.wait()


def percentile(sorted_vals, q):
    if not sorted_vals:
        return None
    k = min(len(sorted_vals) - 1, max(0, int(round(q / 100.0 * len(sorted_vals) + 0.5)) - 1))
    return sorted_vals[k]


# ---------------------------------------------------------------- rtpengine

def benc(v):
    if isinstance(v, bytes):
        return b"%d:%s" % (len(v), v)
    if isinstance(v, str):
        return benc(v.encode("latin-1"))
    if isinstance(v, int):
        return b"i%de" % v
    if isinstance(v, list):
        return b"l" + b"".join(benc(x) for x in v) + b"e"
    return b"d" + b"".join(benc(k) + benc(v[k]) for k in sorted(v)) + b"e"


def unbenc(buf):
    def val(i):
        c = buf[i:i + 1]
        if c == b"i":
            e = buf.index(b"e", i)
            return int(buf[i + 1:e]), e + 1
        if c in (b"l", b"d"):
            i += 1
            out = [] if c == b"l" else {}
            while buf[i:i + 1] != b"e":
                if c == b"l":
                    x, i = val(i)
                    out.append(x)
                else:
                    k, i = val(i)
                    x, i = val(i)
                    out[k] = x
            return out, i + 1
        colon = buf.index(b":", i)
        n = int(buf[i:colon])
        return buf[colon + 1:colon + 1 + n].decode("latin-1"), colon + 1 + n
    return val(0)[0]


def ng_command(port, d, timeout=1.0):
    """One ng command to the rtpengine at 127.0.0.1:port; its reply dict."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.settimeout(timeout)
    cookie = b"b%d_%d" % (os.getpid(), int(time.time() * 1e6))
    try:
        s.sendto(cookie + b" " + benc(d), ("127.0.0.1", port))
        data = s.recv(1 << 20)
        return unbenc(data[data.index(b" ") + 1:])
    finally:
        s.close()


def udp_ports_in_use():
    used = set()
    for fn in ("/proc/net/udp", "/proc/net/udp6"):
        try:
            with open(fn) as f:
                next(f)
                for line in f:
                    used.add(int(line.split()[1].rsplit(":", 1)[1], 16))
        except (OSError, StopIteration, ValueError, IndexError):
            pass
    return used


def media_port_ranges(n, size):
    """n disjoint ranges of media ports below the ephemeral range (the
    least used ones now), as tests/integ/lib/cluster.js picks them."""
    lo = 10000
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            hi = min(int(f.read().split()[0]), 32768) - 1
    except (OSError, ValueError, IndexError):
        hi = 32767
    size = min(size, (hi - lo + 1) // n)
    used = udp_ports_in_use()
    slots = [(lo + k * size, lo + (k + 1) * size - 1) for k in range((hi - lo + 1) // size)]
    slots.sort(key=lambda r: sum(1 for p in used if r[0] <= p <= r[1]))
    return sorted(slots[:n])


class Rtpengines:
    """RTPENGINES userspace rtpengine daemons on free ng ports and
    disjoint media port ranges; the same for sipmesh and Kamailio."""

    def __init__(self, workdir):
        self.dir = workdir
        self.engines = []     # {label, ng, min, max}

    def start(self, procs):
        """Starts the daemons into procs (label -> Popen), waits for ng ping."""
        self.engines = []
        for i, (pmin, pmax) in enumerate(media_port_ranges(RTPENGINES, RTP_PORTS), 1):
            e = {"label": "rtpengine%d" % i, "ng": free_port(), "min": pmin, "max": pmax}
            lf = open(os.path.join(OUT, "%s.log" % e["label"]), "a")
            procs[e["label"]] = subprocess.Popen(
                ["rtpengine", "--config-file=none", "--table=-1", "--foreground",
                 "--log-stderr", "--listen-ng=127.0.0.1:%d" % e["ng"],
                 "--interface=127.0.0.1", "--port-min=%d" % pmin, "--port-max=%d" % pmax,
                 "--log-level=4", "--delete-delay=0",
                 "--pidfile=%s" % os.path.join(self.dir, "%s.pid" % e["label"])],
                stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            e["proc"] = procs[e["label"]]
            self.engines.append(e)
        for e in self.engines:
            end = time.time() + 15
            while True:
                if e["proc"].poll() is not None:
                    raise RuntimeError("%s exited (status %s) while starting: see %s/%s.log"
                                       % (e["label"], e["proc"].returncode, OUT, e["label"]))
                try:
                    if ng_command(e["ng"], {"command": "ping"}, 0.3).get("result") == "pong":
                        break
                except (OSError, ValueError):
                    pass
                if time.time() > end:
                    raise RuntimeError("%s does not answer ng ping" % e["label"])
                time.sleep(0.1)

    def addrs(self):
        return ["127.0.0.1:%d" % e["ng"] for e in self.engines]

    def describe(self):
        return "%d userspace rtpengine (%s)" % (len(self.engines), ", ".join(
            "ng %d, ports %d-%d" % (e["ng"], e["min"], e["max"]) for e in self.engines))

    def calls(self):
        """(ng port, Call-ID) of every call the daemons hold now (ng list);
        None if one does not answer."""
        out = []
        for e in self.engines:
            try:
                r = ng_command(e["ng"], {"command": "list", "limit": 1000000}, 2.0)
                out += [(e["ng"], c) for c in r.get("calls", [])]
            except (OSError, ValueError):
                return None
        return out

    def sessions(self):
        c = self.calls()
        return None if c is None else len(c)

    def purge(self):
        """Deletes every call still held (calls whose caller gave up in an
        overloaded trial are never BYEd and would hold their ports for
        rtpengine's 60 s media timeout, failing the next trials)."""
        n = 0
        for port, cid in self.calls() or []:
            try:
                ng_command(port, {"command": "delete", "call-id": cid}, 1.0)
                n += 1
            except (OSError, ValueError):
                pass
        return n

    COUNTS = ("offer", "answer", "delete", "ping", "query")

    def counts(self):
        """ng commands each daemon has handled so far (summed), and errors."""
        out = dict.fromkeys(self.COUNTS + ("error", "sessions"), 0)
        for e in self.engines:
            try:
                st = ng_command(e["ng"], {"command": "statistics"}, 2.0)["statistics"]
            except (OSError, ValueError, KeyError):
                return None
            cs = st.get("controlstatistics", {})
            for k in self.COUNTS:
                out[k] += int(cs.get("total%scount" % k, 0))
            out["error"] += sum(int(p.get("errorcount", 0)) for p in cs.get("proxies", []))
            out["sessions"] += int(st.get("totalstatistics", {}).get("managedsessions", 0))
        return out


# ---------------------------------------------------------------- servers

class Server:
    name = "?"

    def __init__(self, workdir):
        self.dir = workdir
        self.port = None
        self.procs = {}          # label -> Popen
        self.media = False       # anchor media on rtpengine (scenario media)
        self.ws = False          # listen on WebSocket (scenario ws)
        self.auth = False        # [registrar] auth = yes (scenario auth)
        self.ws_port = None
        self.ws_edges = 1        # edges sharing the ports (scenario wsedges)
        self.rtp = Rtpengines(workdir)

    def label_pids(self, labels):
        """pids of the processes with these labels (and their children)."""
        return [pid for l, pl in self.pids().items() if l in labels for pid in pl]

    def pids(self):
        """label -> [pids] of every server process (with children)."""
        out = {}
        for label, p in self.procs.items():
            if p.poll() is None:
                out[label] = children_of([p.pid])
        return out

    def all_pids(self):
        return [pid for l in self.pids().values() for pid in l]

    def cpu(self):
        """label -> CPU ticks (utime+stime) summed over the processes."""
        return {label: sum(cpu_ticks(x) for x in pl) for label, pl in self.pids().items()}

    def memory(self):
        """Sum of PSS (shared memory counted once) over server processes."""
        return sum(pss_bytes(x) for x in self.all_pids())

    def rss(self):
        return sum(rss_bytes(x) for x in self.all_pids())

    def alive(self):
        return all(p.poll() is None for p in self.procs.values())

    def extra_memory(self):
        return {}

    def stop(self):
        for label in reversed(list(self.procs)):
            stop_proc(self.procs[label], "%s %s" % (self.name, label))


class Kamailio(Server):
    name = "Kamailio"

    def start(self):
        self.procs = {}
        self.port = free_port()
        self.ctl = os.path.join(self.dir, "kamailio_ctl")
        if os.path.exists(self.ctl):
            os.unlink(self.ctl)
        cmd = ["kamailio", "-f", os.path.join(HERE, "kamailio.cfg"),
               "-DD", "-E", "-m", str(KAM_SHM), "-M", str(KAM_PKG),
               "-n", str(self.children()), "-l", "udp:127.0.0.1:%d" % self.port,
               "-A", 'CTL_SOCK="unix:%s"' % self.ctl,
               "-P", os.path.join(self.dir, "kamailio.pid")]
        extra = ""
        if self.media:
            self.rtp.start(self.procs)
            cmd += ["-A", "WITH_MEDIA", "-A", 'RTPENGINE_SOCK="%s"' % " ".join(
                "udp:%s=1" % a for a in self.rtp.addrs())]
            extra += "; -A WITH_MEDIA, " + self.rtp.describe()
        if self.ws:
            if not os.path.exists(os.path.join(KAM_MODULES, "websocket.so")):
                raise FileNotFoundError("%s/websocket.so missing (Debian package "
                                        "kamailio-websocket-modules)" % KAM_MODULES)
            self.ws_port = free_port()
            cmd += ["-A", "WITH_WS", "-l", "tcp:127.0.0.1:%d" % self.ws_port]
            extra += "; -A WITH_WS, ws://127.0.0.1:%d" % self.ws_port
        if self.auth:
            cmd += ["-A", "WITH_AUTH"]
            extra += "; -A WITH_AUTH"
        self.cmd = cmd
        logf = open(os.path.join(OUT, "kamailio.log"), "a")
        self.procs["kamailio"] = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT,
                                                  stdin=subprocess.DEVNULL)
        wait_ready(self.port, self.procs.values(), "kamailio")
        v = subprocess.run(["kamailio", "-v"], capture_output=True, text=True).stdout.split("\n")[0]
        return "%s; %s -m %d -M %d -n %d (%d processes)%s" % (
            v.strip(), os.path.relpath(os.path.join(HERE, "kamailio.cfg"), os.getcwd()),
            KAM_SHM, KAM_PKG, self.children(), len(self.all_pids()), extra)

    def children(self):
        return KAM_MEDIA_CHILDREN if self.media else KAM_CHILDREN

    def ws_pids(self):
        """The processes that hold WebSocket connections: all of Kamailio's."""
        return self.label_pids(["kamailio"])

    def kamcmd(self, *args):
        try:
            r = subprocess.run(["kamcmd", "-s", "unix:" + self.ctl] + list(args),
                               capture_output=True, text=True, timeout=5)
            return r.stdout
        except (OSError, subprocess.TimeoutExpired):
            return ""

    def extra_memory(self):
        m = re.search(r"real_used:\s*(\d+)", self.kamcmd("core.shmmem"))
        return {"shm_real_used": int(m.group(1))} if m else {}


class Sipmesh(Server):
    name = "sipmesh"

    def start(self):
        for b in ("sipmesh-edge", "sipmesh-core") + (("sipmesh-rtpctl",) if self.media else ()):
            if not os.access(os.path.join(SIPMESH_BIN, b), os.X_OK):
                raise FileNotFoundError("%s/%s not built" % (SIPMESH_BIN, b))
        self.procs = {}
        if self.media:
            self.rtp.start(self.procs)
        self.port = free_port()
        rports = [free_port() for _ in range(REDIS_SHARDS)]
        # the cores reach a Redis on their host by its unix socket (the
        # README's advice; TCP is for Redis on another host)
        rsocks = [os.path.join(self.dir, "redis%d.sock" % i) for i in range(REDIS_SHARDS)]
        self.shm = "/sm-bench-%d" % os.getpid()
        run_dir = os.path.join(self.dir, "run")
        os.makedirs(run_dir, mode=0o700, exist_ok=True)
        self.conf = os.path.join(self.dir, "sipmesh.conf")
        with open(self.conf, "w") as f:
            f.write("""; written by bench/bench.py
[cluster]
run_dir = %s
edges = %d
cores = %d

[log]
level = %s

[redis]
address = %s
prefix = smbench
shards = %s

[location]
shm_name = %s

[edge]
udp = 127.0.0.1:%d
tcp = 127.0.0.1:%d
reuseport = %s
; sipp's load from one address is the measurement, not a flood
req_rate = 0
conn_rate = 0
""" % (run_dir, self.ws_edges, CORES,
       # notice: the edges' SIGUSR1 stats lines (wsedges reads them)
       "notice" if self.ws_edges > 1 else "warn", rsocks[0],
       " ".join("s%d=%s" % (i, p) for i, p in enumerate(rsocks[1:], 2)),
       self.shm, self.port, self.port,
       "yes" if self.ws_edges > 1 else "no"))
            if self.ws:
                self.ws_port = free_port()
                f.write("""ws = 127.0.0.1:%d
max_conns = 100000
max_conns_per_ip = 100000
max_conns_per_net = 100000
idle_timeout_s = 86400
ws_ping_s = 0
""" % self.ws_port)
            else:
                f.write("ws =\n")
            if self.auth:
                # sipp answers only the first challenge, and only MD5
                f.write("""
[registrar]
auth = yes
domains = %s
auth_algorithms = MD5 SHA-256
""" % DOMAIN)
            for k in range(CORES - STANDBY + 1, CORES + 1):
                f.write("\n[core %d]\nstandby = yes\n" % k)
            if self.media:
                # sipmesh-rtpctl -i 1 on ipc://<run_dir>/rtpctl-1 (the default)
                f.write("""
[proxy]
media = yes

[rtpctl]
instances = %s
""" % " ".join("%s/1" % a for a in self.rtp.addrs()))
        rlog = open(os.path.join(OUT, "sipmesh-redis.log"), "a")
        for i, rp in enumerate(rports):
            label = "redis" if i == 0 else "redis%d" % (i + 1)
            self.procs[label] = subprocess.Popen(
                ["redis-server", "--port", str(rp), "--bind", "127.0.0.1",
                 "--unixsocket", rsocks[i], "--unixsocketperm", "700",
                 "--save", "", "--appendonly", "no", "--dir", self.dir,
                 "--dbfilename", "dump%d.rdb" % i],
                stdout=rlog, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            end = time.time() + 10
            while True:
                try:
                    socket.create_connection(("127.0.0.1", rp), 0.2).close()
                    break
                except OSError:
                    if time.time() > end or self.procs[label].poll() is not None:
                        raise RuntimeError("redis-server did not start")
                    time.sleep(0.1)
        if self.media:
            lf = open(os.path.join(OUT, "sipmesh-rtpctl1.log"), "a")
            self.procs["rtpctl1"] = subprocess.Popen(
                [os.path.join(SIPMESH_BIN, "sipmesh-rtpctl"), "-c", self.conf, "-i", "1"],
                stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
            sock = os.path.join(run_dir, "rtpctl-1")
            end = time.time() + 10
            while not os.path.exists(sock):
                if time.time() > end or self.procs["rtpctl1"].poll() is not None:
                    raise RuntimeError("sipmesh-rtpctl did not start: see %s/sipmesh-rtpctl1.log"
                                       % OUT)
                time.sleep(0.1)
        for label, binary, inst in [("core%d" % i, "sipmesh-core", i)
                                    for i in range(1, CORES + 1)] + [
                ("edge%d" % i, "sipmesh-edge", i) for i in range(1, self.ws_edges + 1)]:
            lf = open(os.path.join(OUT, "sipmesh-%s.log" % label), "a")
            self.procs[label] = subprocess.Popen(
                [os.path.join(SIPMESH_BIN, binary), "-c", self.conf, "-i", str(inst)],
                stdout=lf, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        wait_ready(self.port, self.procs.values(), "sipmesh")
        time.sleep(0.5)   # let both cores join
        if self.media:
            time.sleep(1.0)   # rtpctl's first health pings (ping_interval_ms 1000)
        return "%s + %d edge%s + %d core%s%s%s, %s (%d processes)%s" % (
            "redis" if REDIS_SHARDS == 1 else "%d redis shards" % REDIS_SHARDS,
            self.ws_edges, "s sharing every port" if self.ws_edges > 1 else "",
            CORES, "s" if CORES > 1 else "",
            (" (%d standby)" % STANDBY) if STANDBY else "",
            " + 1 rtpctl" if self.media else "", SIPMESH_BIN, len(self.all_pids()),
            ("; [proxy] media = yes, " + self.rtp.describe()) if self.media else
            ("; ws://127.0.0.1:%d" % self.ws_port) if self.ws else "")

    def ws_pids(self):
        """The processes that hold WebSocket connections: the edges."""
        return self.label_pids(["edge%d" % i for i in range(1, self.ws_edges + 1)])

    def edge_pids(self):
        """edge id -> pid of each running edge."""
        return {i: self.procs["edge%d" % i].pid for i in range(1, self.ws_edges + 1)
                if self.procs.get("edge%d" % i) and self.procs["edge%d" % i].poll() is None}

    def shm_path(self):
        return "/dev/shm" + self.shm

    def extra_memory(self):
        try:
            st = os.stat(self.shm_path())
            return {"shm_file_size": st.st_size, "shm_file_allocated": st.st_blocks * 512}
        except OSError:
            return {}

    def stop(self):
        Server.stop(self)
        # the binding store and the edges' rate table named after it
        # (none when the server never started: a run of ws scenarios only)
        if not hasattr(self, "shm"):
            return
        for path in (self.shm_path(), self.shm_path() + "-edge-limit"):
            try:
                os.unlink(path)
            except OSError:
                pass


# ---------------------------------------------------------------- sipp

RUNNING_SIPP = []


class Sipp:
    """One sipp process, waited for with its rusage (CPU of sipp itself)."""

    def __init__(self, args, cwd, label):
        self.label = label
        self.cwd = cwd
        self.out = open(os.path.join(cwd, label + ".out"), "w")
        self.args = ["sipp"] + args + ["-nostdin", "-buff_size", "4194304"]
        self.t0 = time.time()
        self.p = subprocess.Popen(self.args, cwd=cwd, stdout=self.out,
                                  stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)
        self.cpu = None
        self.rc = None
        RUNNING_SIPP.append(self)

    def wait(self, timeout):
        end = time.time() + timeout
        while True:
            pid, status, ru = os.wait4(self.p.pid, os.WNOHANG)
            if pid:
                break
            if time.time() > end:
                log("  sipp %s still running after %.0f s: SIGKILL" % (self.label, timeout))
                self.p.kill()
                pid, status, ru = os.wait4(self.p.pid, 0)
                break
            time.sleep(0.05)
        self.p.returncode = os.waitstatus_to_exitcode(status)
        self.rc = self.p.returncode
        if self in RUNNING_SIPP:
            RUNNING_SIPP.remove(self)
        self.cpu = ru.ru_utime + ru.ru_stime
        self.wall = time.time() - self.t0
        return self.rc

    def stop(self):
        if self.rc is None:
            try:
                self.p.send_signal(signal.SIGUSR1)   # sipp: dump and quit
            except OSError:
                pass
            self.wait(3)


def read_stat(path):
    """Last line of a sipp -trace_stat file as a dict."""
    try:
        with open(path) as f:
            lines = [l for l in f.read().split("\n") if l.strip()]
    except OSError:
        return {}
    if len(lines) < 2:
        return {}
    head = lines[0].split(";")
    vals = lines[-1].split(";")
    return dict(zip(head, vals))


def read_rtt(cwd, rtd="1"):
    """(sorted response times ms, first ms, last ms) from *_rtt.csv."""
    times, first, last = [], None, None
    for fn in os.listdir(cwd):
        if not fn.endswith("_rtt.csv"):
            continue
        with open(os.path.join(cwd, fn)) as f:
            for line in f:
                parts = line.strip().split(";")
                if len(parts) != 3 or parts[2] != rtd:
                    continue
                try:
                    d, t = float(parts[0]), float(parts[1])
                except ValueError:
                    continue
                times.append(t)
                first = d if first is None or d < first else first
                last = d if last is None or d > last else last
    times.sort()
    return times, first, last


def write_csv(path, header, rows):
    with open(path, "w") as f:
        f.write(header + "\n")
        for r in rows:
            f.write(r + "\n")


# ---------------------------------------------------------------- bench

def round_rate(r):
    step = 50 if r >= 1000 else 10 if r >= 100 else 1
    return max(1, int(round(r / float(step)) * step))


class Bench:
    def __init__(self, server, tmp):
        self.srv = server
        self.tmp = tmp
        self.n = 0
        self.uas_port = free_port()
        self.uac_port = free_port()
        self.users_csv = os.path.join(tmp, "users.csv")
        self.reg_targets_csv = os.path.join(tmp, "targets-seq.csv")
        self.targets_csv = os.path.join(tmp, "targets.csv")
        write_csv(self.users_csv, "SEQUENTIAL",
                  ["u%05d;%s;" % (i, DOMAIN) for i in range(NUSERS)])
        write_csv(self.reg_targets_csv, "SEQUENTIAL",
                  ["callee%03d;%s;" % (i, DOMAIN) for i in range(NTARGETS)])
        write_csv(self.targets_csv, "RANDOM",
                  ["callee%03d;%s;" % (i, DOMAIN) for i in range(NTARGETS)])
        self.auth_csv = os.path.join(tmp, "auth-users.csv")
        # field2 is the whole keyword: sipp expands a field holding one, but
        # not a field inside [authentication ...]
        write_csv(self.auth_csv, "SEQUENTIAL",
                  ["a%04d;%s;[authentication username=a%04d password=pw-a%04d];"
                   % (i, DOMAIN, i, i) for i in range(AUTH_USERS)])

    def add_accounts(self):
        """The auth scenario's accounts, with sipmesh-ctl as an operator would."""
        ctl = os.path.join(SIPMESH_BIN, "sipmesh-ctl")
        for i in range(AUTH_USERS):
            subprocess.run([ctl, "-c", self.srv.conf, "user", "add", "a%04d@%s" % (i, DOMAIN)],
                           input="pw-a%04d\n" % i, text=True, check=True,
                           stdout=subprocess.DEVNULL, timeout=10)

    def trialdir(self, tag):
        self.n += 1
        d = os.path.join(self.tmp, "%02d-%s" % (self.n, tag))
        os.makedirs(d)
        return d

    def remote(self):
        return "127.0.0.1:%d" % self.srv.port

    def register_once(self, csv, count, contact, port, rate):
        """A plain registration pass (no measurement); returns successes."""
        d = self.trialdir("reg-setup")
        s = Sipp([self.remote(), "-sf", os.path.join(SCN, "register.xml"),
                  "-inf", csv, "-key", "contact", contact,
                  "-i", "127.0.0.1", "-p", str(port), "-m", str(count), "-r", str(rate),
                  "-trace_stat", "-stf", "stat.csv", "-fd", "1", "-timeout", "60s"],
                 d, "uac")
        s.wait(70)
        st = read_stat(os.path.join(d, "stat.csv"))
        return int(st.get("SuccessfulCall(C)", 0) or 0)

    def memory_per_binding(self):
        """Memory before and after 10,000 registrations on a fresh server."""
        c0, t0 = self.srv.cpu(), time.time()
        time.sleep(max(SETTLE, 2.0))
        c1, t1 = self.srv.cpu(), time.time()
        idle = sum(c1.get(k, 0) - c0.get(k, 0) for k in c1) / float(HZ) / (t1 - t0)
        m0, x0 = self.srv.memory(), self.srv.extra_memory()
        ok = self.register_once(self.users_csv, NUSERS, "127.0.0.1:%d" % self.uac_port,
                                self.uac_port, 2000)
        time.sleep(SETTLE)
        m1, x1 = self.srv.memory(), self.srv.extra_memory()
        res = {"registered": ok, "idle_cores": idle, "mem_before": m0, "mem_after": m1,
               "per_binding": (m1 - m0) / float(NUSERS), "extra_before": x0, "extra_after": x1}
        if "shm_real_used" in x0 and "shm_real_used" in x1:
            res["shm_per_binding"] = (x1["shm_real_used"] - x0["shm_real_used"]) / float(NUSERS)
        return res

    def trial(self, scn, rate):
        d = self.trialdir("%s-%d" % (scn, rate))
        total = max(1, int(rate * DURATION))
        uas = None
        if scn in ("message", "call", "media"):
            uas = Sipp(["-sf", os.path.join(SCN, "%s_uas.xml" % scn), "-i", "127.0.0.1",
                        "-p", str(self.uas_port), "-trace_stat", "-stf", "uas-stat.csv",
                        "-fd", "60"], d, "uas")
            time.sleep(0.4)
            if uas.p.poll() is not None:
                raise RuntimeError("sipp UAS exited: see %s/uas.out" % d)
        args = [self.remote(), "-i", "127.0.0.1", "-p", str(self.uac_port),
                "-m", str(total), "-r", str(rate), "-rp", "1000",
                "-trace_stat", "-stf", "stat.csv", "-fd", "1",
                "-trace_rtt", "-rtt_freq", str(min(100, max(1, total // 50))), "-trace_err"] + (["-trace_msg"] if env("BENCH_TRACE_MSG", "0") != "0" else [])
        # sipp needs DURATION (+ the call hold) to finish; a trial still
        # running at DURATION/KEEPUP + hold + 5 s has failed anyway
        # (achieved < KEEPUP of the target, or responses seconds late).
        guard = DURATION / KEEPUP + 5
        if scn == "register":
            args += ["-sf", os.path.join(SCN, "register.xml"), "-inf", self.users_csv,
                     "-key", "contact", "127.0.0.1:%d" % self.uac_port]
        elif scn in ("register_open", "register_auth"):
            # the auth scenario's users, without and with digest authentication
            args += ["-sf", os.path.join(SCN, "register_auth.xml" if scn == "register_auth"
                                         else "register.xml"),
                     "-inf", self.auth_csv, "-key", "contact", "127.0.0.1:%d" % self.uac_port]
        elif scn == "message":
            args += ["-sf", os.path.join(SCN, "message_uac.xml"), "-inf", self.targets_csv]
        else:   # call, media (media_uac.xml: call_uac.xml + the SDP checked anchored)
            args += ["-sf", os.path.join(SCN, "%s_uac.xml" % scn), "-inf", self.targets_csv,
                     "-d", str(HOLD_MS)]
            guard += HOLD_MS / 1000.0
        args += ["-timeout", "%ds" % int(guard + 1)]

        peak = [self.srv.memory()]
        stop_sampling = threading.Event()

        def sampler():
            while not stop_sampling.wait(0.5):
                peak[0] = max(peak[0], self.srv.memory())
        th = threading.Thread(target=sampler, daemon=True)
        ng0 = self.srv.rtp.counts() if scn == "media" else None
        cpu0 = self.srv.cpu()
        busy0 = machine_busy_ticks()
        t0 = time.time()
        th.start()
        uac = Sipp(args, d, "uac")
        probe = None
        if PROBE_RATE > 0 and scn in PROBE_MODE and os.access(LATPROBE, os.X_OK):
            probe = subprocess.Popen([LATPROBE, "-s", self.remote(), "-m", PROBE_MODE[scn],
                                      "-r", str(PROBE_RATE if scn in ("register", "message")
                                                else max(1, PROBE_RATE // 4)),
                                      "-d", str(DURATION), "-D", DOMAIN, "-u", "probe%d" % self.n,
                                      "-o", os.path.join(d, "probe.txt")],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        uac.wait(guard + 3)
        pr = None
        if probe:
            try:
                out, err = probe.communicate(timeout=DURATION + 10)
                pr = json.loads(out) if probe.returncode == 0 else {"error": err.strip()[-200:]}
            except (subprocess.TimeoutExpired, ValueError) as e:
                probe.kill()
                probe.wait()
                pr = {"error": str(e)}
        time.sleep(SETTLE)      # deferred work (timers, writes) counts too
        cpu1 = self.srv.cpu()
        busy1 = machine_busy_ticks()
        wall = time.time() - t0
        stop_sampling.set()
        th.join()
        if uas:
            uas.stop()
        alive = self.srv.alive()

        st = read_stat(os.path.join(d, "stat.csv"))

        def g(k):
            try:
                return int(st.get(k, 0) or 0)
            except ValueError:
                return 0
        ok, failed, created = g("SuccessfulCall(C)"), g("FailedCall(C)"), g("TotalCallCreated")
        created = max(created, ok + failed)
        rtts, first, last = read_rtt(d, "1")
        span = (last - first) / 1000.0 if first is not None and last > first else 0
        achieved = (len(rtts) - 1) / span if span > 0 else 0.0
        fail_pct = 100.0 * (created - ok) / created if created else 100.0
        # seconds the load lasted (for "cores busy"): responses span + call hold
        load_s = (span + (HOLD_MS / 1000.0 if scn in ("call", "media") else 0)) or wall
        ticks = sum(cpu1.get(k, 0) - cpu0.get(k, 0) for k in cpu1)
        cpu_s = ticks / float(HZ)
        # the server did the probe's operations too
        ops = ok + ((pr or {}).get("ok") or 0)
        r = {
            "scenario": scn, "target": rate, "achieved": achieved, "created": created,
            "ok": ok, "failed": failed, "fail_pct": fail_pct,
            "retrans": g("Retransmissions(C)"),
            "p50": percentile(rtts, 50), "p90": percentile(rtts, 90), "p99": percentile(rtts, 99),
            "cpu_s": cpu_s, "cpu_us_op": cpu_s * 1e6 / ops if ok else None, "probe": pr,
            "cpu_by_proc": {k: (cpu1.get(k, 0) - cpu0.get(k, 0)) / float(HZ) for k in cpu1},
            "server_cores": cpu_s / load_s if load_s else 0,
            "mem_peak": peak[0], "sipp_rc": uac.rc,
            "sipp_uac_cores": uac.cpu / load_s if load_s else 0,
            "sipp_uas_cores": (uas.cpu / load_s) if uas and load_s else None,
            "dir": d, "server_alive": alive,
        }
        # What else kept the machine busy meanwhile (other jobs, the
        # kernel's softirqs not charged to a process): a step with much
        # of it is a noisy one, whatever its figures say.
        sipp_s = (uac.cpu or 0) + ((uas.cpu or 0) if uas else 0)
        r["other_cores"] = max(0.0, (busy1 - busy0) / float(HZ) - cpu_s - sipp_s) / wall
        if scn == "media":
            # ng commands per successful call (the statistics and list
            # commands of the bench itself are not in these counts)
            ng1 = self.srv.rtp.counts()
            if ng0 and ng1:
                r["ng"] = {k: ng1[k] - ng0[k] for k in ng1}
            # every call's session deleted (BYE): none left on rtpengine
            r["rtp_sessions_left"] = self.srv.rtp.sessions()
            if r["rtp_sessions_left"]:
                r["rtp_purged"] = self.srv.rtp.purge()
        why = []
        if not alive:
            why.append("server died")
        if uac.rc == -9:
            why.append("sipp still running after %.0f s, stopped" % guard)
        elif uac.rc not in (0, 1):
            why.append("sipp exit %s" % uac.rc)
        if fail_pct >= FAIL_LIMIT:
            why.append("failures %.2f%%" % fail_pct)
        if achieved < KEEPUP * rate:
            why.append("achieved %.0f/s < %d%% of target" % (achieved, KEEPUP * 100))
        r["pass"] = not why
        r["why"] = ", ".join(why)
        sipp_note = " sipp uac %.2f%s cores" % (
            r["sipp_uac_cores"], "" if uas is None else " uas %.2f" % (r["sipp_uas_cores"] or 0))
        if pr:
            sipp_note += " probe %s" % fmt_probe(pr)
        if scn == "media":
            sipp_note += " rtpengine sessions left %s" % r["rtp_sessions_left"]
            if r.get("ng"):
                sipp_note += " ng " + " ".join("%s %d" % (k, v) for k, v in r["ng"].items() if v)
        log("  %-8s %-8s target %7d/s achieved %8.0f/s ok %7d fail %5.2f%% retrans %6d "
            "p50/p90/p99 %s/%s/%s ms  cpu %s us/op server %.2f cores%s  %s" % (
                self.srv.name, scn, rate, achieved, ok, fail_pct, r["retrans"],
                fmt_ms(r["p50"]), fmt_ms(r["p90"]), fmt_ms(r["p99"]),
                "%.1f" % r["cpu_us_op"] if r["cpu_us_op"] is not None else "-",
                r["server_cores"], sipp_note, "PASS" if r["pass"] else "FAIL: " + r["why"]))
        if not r["pass"]:
            time.sleep(4)   # let retransmissions and timers drain before the next trial
        if not alive:
            raise RuntimeError("%s died during %s at %d/s" % (self.srv.name, scn, rate))
        return r

    def search(self, scn):
        """Highest rate with < 1% failures that sipp sustains."""
        trials = []
        if scn in FIXED:
            r = self.trial(scn, FIXED[scn])
            return r, [r]
        rate, lo, hi, best = START[scn], None, None, None
        while True:
            r = self.trial(scn, rate)
            trials.append(r)
            if r["pass"]:
                lo, best = rate, r
                if rate * 2 > MAXRATE[scn]:
                    break
                rate *= 2
            else:
                hi = rate
                break
        if lo is None:        # even the start rate failed: go down
            rate = hi
            for _ in range(5):
                rate = max(1, rate // 2)
                r = self.trial(scn, rate)
                trials.append(r)
                if r["pass"]:
                    lo, best = rate, r
                    break
                hi = rate
            if lo is None:
                return None, trials
        for _ in range(BISECT if hi else 0):
            mid = round_rate((lo + hi) // 2)
            if mid <= lo or mid >= hi:
                break
            r = self.trial(scn, mid)
            trials.append(r)
            if r["pass"]:
                lo, best = mid, r
            else:
                hi = mid
        return best, trials

    def register_callees(self):
        """The bindings the UAS answers for, registered from the UAS port."""
        n = self.register_once(self.reg_targets_csv, NTARGETS,
                               "127.0.0.1:%d" % self.uas_port, self.uas_port, 1000)
        if n != NTARGETS:
            raise RuntimeError("only %d of %d UAS users registered" % (n, NTARGETS))

    def fresh(self):
        """Restart the server with the same state: 10,000 users, the callees."""
        self.srv.stop()
        self.description = self.srv.start()
        n = self.register_once(self.users_csv, NUSERS, "127.0.0.1:%d" % self.uac_port,
                               self.uac_port, 5000)
        if n != NUSERS:
            raise RuntimeError("only %d of %d users registered" % (n, NUSERS))
        self.register_callees()
        time.sleep(SETTLE)

    def run(self, scenarios):
        out = {"trials": [], "best": {}, "search_best": {}}
        if any(s in scenarios for s in ("message", "call")):
            self.register_callees()
        for scn in scenarios:
            if self.srv.media != (scn == "media"):
                # media on (or off again): the same server restarted with
                # [proxy] media / the rtpengine module and the daemons
                self.srv.media = scn == "media"
                log("  %s: restarting with media %s" % (self.srv.name,
                                                        "on" if self.srv.media else "off"))
                self.fresh()
                if self.srv.media:
                    out["media_server"] = self.description
                    log("  %s started: %s" % (self.srv.name, self.description))
            log("%s: %s" % (self.srv.name, TITLE[scn]))
            best, trials = self.search(scn)
            out["trials"] += trials
            out["search_best"][scn] = best
            if best and CONFIRM and scn not in FIXED:
                # The reported figures come from a trial at the rate found,
                # on a freshly started server (same bindings): its memory is
                # not inflated by the failed trials above that rate.
                final = None
                for rate in (best["target"], round_rate(best["target"] * 0.9),
                             round_rate(best["target"] * 0.8)):
                    log("  %s %s: confirming %d/s on a freshly started server"
                        % (self.srv.name, scn, rate))
                    self.fresh()
                    r = self.trial(scn, rate)
                    r["confirm"] = True
                    out["trials"].append(r)
                    if r["pass"]:
                        final = r
                        break
                if final is None:
                    best = dict(best)
                    best["unconfirmed"] = True
                else:
                    best = final
            out["best"][scn] = best
        return out


# ---------------------------------------------------------------- auth

def auth_bench(wd, cls):
    """CPU per registration with digest authentication off, then on: the
    same AUTH_USERS users at AUTH_RATE/s on a fresh server each.  sipmesh
    reads its accounts (made with sipmesh-ctl) from Redis through each
    core's cache; Kamailio computes them from the users' passwords
    (kamailio.cfg WITH_AUTH)."""
    out = {}
    for auth in (False, True):
        d = os.path.join(wd, "auth-%s-%s" % (cls.name.lower(), "on" if auth else "off"))
        os.makedirs(d)
        srv = cls(d)
        srv.auth = auth
        try:
            desc = srv.start()
            b = Bench(srv, d)
            if auth and cls is Sipmesh:
                t0 = time.time()
                b.add_accounts()
                log("sipmesh auth: %d accounts made with sipmesh-ctl in %.1f s"
                    % (AUTH_USERS, time.time() - t0))
            log("%s: registrations with auth %s (%s)" % (cls.name, "on" if auth else "off", desc))
            out["on" if auth else "off"] = b.trial("register_auth" if auth else "register_open",
                                                   AUTH_RATE)
        finally:
            srv.stop()
    return out


def report_auth(w, results):
    w("REGISTER with digest authentication (%d users, %d registrations/s for %g s on a "
      "fresh server each; auth on: REGISTER, 401, REGISTER with MD5 credentials (qop=auth), "
      "200; sipmesh's accounts from Redis through each core's cache, Kamailio's computed "
      "from the password in the worker)" % (AUTH_USERS, AUTH_RATE, DURATION))

    def g(t, k, f="%.1f"):
        return f % t[k] if t and t.get(k) is not None else "-"
    sm = results.get("sipmesh", {}).get("auth") or {}
    ka = results.get("Kamailio", {}).get("auth") or {}
    w("  %-26s %12s %12s %12s %12s %16s" % ("", "sipmesh off", "sipmesh on", "Kamailio off",
                                            "Kamailio on", "sipmesh/Kamailio"))
    rows = [("server CPU (us/registration)", "cpu_us_op", "%.1f"),
            ("achieved (registrations/s)", "achieved", "%.0f"),
            ("failures %", "fail_pct", "%.2f")]
    for label, k, f in rows:
        w("  %-26s %12s %12s %12s %12s %16s" % (
            label, g(sm.get("off"), k, f), g(sm.get("on"), k, f), g(ka.get("off"), k, f),
            g(ka.get("on"), k, f),
            ratio((sm.get("on") or {}).get(k), (ka.get("on") or {}).get(k))
            if k == "cpu_us_op" else ""))
    w("  %-26s %12s %12s %12s %12s" % (
        "p50/p99 response (ms)",
        *("%s/%s" % (fmt_ms(t and t.get("p50")), fmt_ms(t and t.get("p99")))
          for t in (sm.get("off"), sm.get("on"), ka.get("off"), ka.get("on")))))
    for name, t in (("sipmesh", sm), ("Kamailio", ka)):
        if t.get("on") and t.get("off"):
            w("  %s on/off CPU: %s" % (name, ratio(t["on"].get("cpu_us_op"),
                                                   t["off"].get("cpu_us_op"))))
    w("")


# ---------------------------------------------------------------- ws

def options_ms(port, n=10):
    """UDP OPTIONS round trips (ms, sorted; None = no 200 within 2 s)."""
    out = []
    for _ in range(n):
        t0 = time.time()
        ok = sip_options_ok(port, 2.0)
        out.append((time.time() - t0) * 1000.0 if ok else None)
        time.sleep(0.05)
    return sorted(out, key=lambda v: float("inf") if v is None else v)


def udp_messages(port, users, timeout=5.0):
    """A MESSAGE over UDP to each of users (sip:<u>@ws.test, wsload's
    domain), all sent at once, retransmitted every 500 ms; returns
    {user: final status or None}."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    lp = s.getsockname()[1]
    msgs, got = {}, {}
    for u in users:
        br = "z9hG4bK-bm-%s-%d" % (u, lp)
        body = "bench message for %s" % u
        msgs[br] = (u, ("MESSAGE sip:%s@ws.test SIP/2.0\r\n"
                        "Via: SIP/2.0/UDP 127.0.0.1:%d;branch=%s;rport\r\n"
                        "Max-Forwards: 70\r\n"
                        "From: <sip:bench@ws.test>;tag=b%d\r\n"
                        "To: <sip:%s@ws.test>\r\n"
                        "Call-ID: bench-msg-%s-%d\r\n"
                        "CSeq: 1 MESSAGE\r\n"
                        "Content-Type: text/plain\r\n"
                        "Content-Length: %d\r\n\r\n%s") % (u, lp, br, lp, u, u, lp, len(body), body))
    end = time.time() + timeout
    try:
        while len(got) < len(msgs) and time.time() < end:
            for br, (u, m) in msgs.items():
                if u not in got:
                    s.sendto(m.encode(), ("127.0.0.1", port))
            t_resend = time.time() + 0.5
            while time.time() < min(t_resend, end):
                s.settimeout(max(0.01, min(t_resend, end) - time.time()))
                try:
                    data = s.recv(65535).decode("latin-1")
                except socket.timeout:
                    break
                first = data.split("\r\n", 1)[0]
                m = re.search(r"branch=(z9hG4bK-bm-[^;\r\n]+)", data)
                if m and m.group(1) in msgs and not first.startswith("SIP/2.0 1"):
                    got[msgs[m.group(1)][0]] = int(first.split(" ")[1])
    finally:
        s.close()
    return {u: got.get(u) for u, _ in msgs.values()}


def edge_stat(srv, edge_id, name, timeout=3.0):
    """Counter `name` of one edge, from the stats line SIGUSR1 makes it log."""
    path = os.path.join(OUT, "sipmesh-edge%d.log" % edge_id)
    size = os.path.getsize(path)
    os.kill(srv.edge_pids()[edge_id], signal.SIGUSR1)
    end = time.time() + timeout
    while time.time() < end:
        with open(path, "rb") as f:
            f.seek(size)
            # the counter itself, not one whose name ends so
            # ("envelopes-not-sent" after "sent")
            m = re.search(r"stats: (?:.*? )?%s=(\d+)" % name, f.read().decode("latin-1"))
        if m:
            return int(m.group(1))
        time.sleep(0.1)
    return None


def open_fds(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return 0


class WsLoader:
    """One bench/wsload.js process: count connections registered and held."""

    def __init__(self, url, count, first, label):
        srcs = ",".join("127.0.0.%d" % (2 + i) for i in range(max(1, WS_SOURCES)))
        self.err = open(os.path.join(OUT, "wsload-%s.log" % label), "a")
        self.p = subprocess.Popen(
            [NODE, os.path.join(HERE, "wsload.js"), "--url", url, "--count", str(count),
             "--first", str(first), "--src", srcs, "--window", str(WS_WINDOW),
             "--tag", label],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.err, cwd=HERE)
        self.buf = b""

    def line(self, timeout):
        """The next JSON line it prints, or None after timeout."""
        end = time.time() + timeout
        while b"\n" not in self.buf:
            left = end - time.time()
            if left <= 0 or self.p.poll() is not None and not select.select([self.p.stdout], [], [], 0)[0]:
                return None
            r, _, _ = select.select([self.p.stdout], [], [], min(left, 1.0))
            if r:
                chunk = os.read(self.p.stdout.fileno(), 65536)
                if not chunk:
                    return None
                self.buf += chunk
        l, self.buf = self.buf.split(b"\n", 1)
        try:
            return json.loads(l)
        except ValueError:
            return None

    def status(self):
        try:
            self.p.stdin.write(b"status\n")
            self.p.stdin.flush()
        except OSError:
            return None
        return self.line(10)

    def stop(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        try:
            self.p.wait(10)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def ws_bench(srv):
    """WebSocket clients registered and kept open on one edge, in stages."""
    if not os.path.isdir(os.path.join(HERE, "node_modules", "ws")):
        raise FileNotFoundError("bench/node_modules/ws missing (bench/run.sh runs npm install "
                                "in bench/)")
    srv.media, srv.ws = False, True
    desc = srv.start()
    log("%s started: %s" % (srv.name, desc))
    url = "ws://127.0.0.1:%d" % srv.ws_port
    res = {"server": desc, "stages": [], "url": url}
    time.sleep(max(SETTLE, 2.0))
    base = {"ws_rss": sum(rss_bytes(x) for x in srv.ws_pids()),
            "ws_pss": sum(pss_bytes(x) for x in srv.ws_pids()),
            "pss": srv.memory(), "extra": srv.extra_memory()}
    res["base"] = base
    loaders, have, registered = [], 0, 0
    try:
        for target in WS_STAGES:
            n = target - have
            if n <= 0:
                continue
            c0, t0 = srv.cpu(), time.time()
            ld = WsLoader(url, n, have, "%s-%d" % (srv.name, target))
            loaders.append(ld)
            r = ld.line(60 + n / 100.0)
            if r is None:
                log("  %s ws: the loader for %d..%d gave no result (see %s/wsload-*.log)"
                    % (srv.name, have, target, OUT))
                break
            wall = time.time() - t0
            time.sleep(SETTLE)
            c1 = srv.cpu()
            have = target
            registered += r["registered"]
            ws_pids = srv.ws_pids()
            st = {"target": target, "registered": registered, "new": n,
                  "new_registered": r["registered"], "failed": r["failed"],
                  "errors": r["errors"], "connect_ms": r["connect_ms"],
                  "register_ms": r["register_ms"], "elapsed_s": r["elapsed_s"],
                  "rate": r["registered"] / r["elapsed_s"] if r["elapsed_s"] else None,
                  "ws_rss": sum(rss_bytes(x) for x in ws_pids),
                  "ws_pss": sum(pss_bytes(x) for x in ws_pids),
                  "pss": srv.memory(), "extra": srv.extra_memory(),
                  "cpu_s": sum(c1.get(k, 0) - c0.get(k, 0) for k in c1) / float(HZ),
                  "cpu_by": {k: (c1.get(k, 0) - c0.get(k, 0)) / float(HZ) for k in c1},
                  "wall_s": wall, "alive": srv.alive()}
            st["options_ms"] = options_ms(srv.port)
            for k in ("ws_rss", "ws_pss", "pss"):
                st[k + "_per_conn"] = ((st[k] - base[k]) / float(registered)
                                       if registered else None)
            if "shm_real_used" in base["extra"] and "shm_real_used" in st["extra"] and registered:
                st["shm_per_conn"] = (st["extra"]["shm_real_used"] -
                                      base["extra"]["shm_real_used"]) / float(registered)
            res["stages"].append(st)
            om = [v for v in st["options_ms"] if v is not None]
            log("  %-8s ws %6d connections: %6d registered (%d failed%s) in %.1f s; "
                "connect p50/p99 %s/%s ms, REGISTER->200 p50/p90/p99 %s/%s/%s ms; "
                "%s RSS %s PSS %s (+%.0f / +%.0f bytes per connection), all PSS %s; "
                "UDP OPTIONS %s ms (median of %d, %d unanswered)" % (
                    srv.name, target, registered, st["failed"],
                    (" " + json.dumps(st["errors"])) if st["errors"] else "", r["elapsed_s"],
                    r["connect_ms"][0], r["connect_ms"][2], r["register_ms"][0],
                    r["register_ms"][1], r["register_ms"][2],
                    "edge" if srv.name == "sipmesh" else "kamailio", mb(st["ws_rss"]),
                    mb(st["ws_pss"]), st["ws_rss_per_conn"] or 0, st["ws_pss_per_conn"] or 0,
                    mb(st["pss"]), "%.1f" % om[len(om) // 2] if om else "-", len(om),
                    len(st["options_ms"]) - len(om)))
            if not st["alive"]:
                log("  %s died with %d WebSocket connections" % (srv.name, registered))
                break
            if r["failed"] > 0.05 * n:
                log("  %s ws: over 5%% failed, no further stage" % srv.name)
                break
        # still open at the end?
        time.sleep(1)
        res["open_at_end"] = sum((ld.status() or {}).get("open", 0) for ld in loaders)
        log("  %s ws: %d connections still open at the end" % (srv.name, res["open_at_end"]))
    finally:
        for ld in loaders:
            ld.stop()
        srv.stop()
        srv.ws = False
    return res


def wsedges_bench(srv):
    """WebSocket clients registered and kept open through WS_EDGES edges
    of one host sharing the WS port (SO_REUSEPORT), in stages up to
    50,000: where the connections land, memory per connection, server
    CPU per new connection, and a MESSAGE delivered through every edge."""
    if not os.path.isdir(os.path.join(HERE, "node_modules", "ws")):
        raise FileNotFoundError("bench/node_modules/ws missing (bench/run.sh runs npm install "
                                "in bench/)")
    srv.media, srv.ws, srv.ws_edges = False, True, WS_EDGES
    desc = srv.start()
    log("%s started: %s" % (srv.name, desc))
    url = "ws://127.0.0.1:%d" % srv.ws_port
    res = {"server": desc, "stages": [], "url": url, "edges": WS_EDGES}
    time.sleep(max(SETTLE, 2.0))
    pids = srv.edge_pids()
    base = {"ws_rss": sum(rss_bytes(x) for x in srv.ws_pids()),
            "ws_pss": sum(pss_bytes(x) for x in srv.ws_pids()), "pss": srv.memory(),
            "fds": {i: open_fds(p) for i, p in pids.items()}}
    res["base"] = base
    loaders, have, registered = [], 0, 0
    try:
        for target in WSE_STAGES:
            n = target - have
            if n <= 0:
                continue
            c0, t0 = srv.cpu(), time.time()
            # one loader per WS_LOADER_MAX connections, side by side
            new = []
            for first in range(have, target, WS_LOADER_MAX):
                cnt = min(WS_LOADER_MAX, target - first)
                new.append(WsLoader(url, cnt, first, "%s-e%d-%d" % (srv.name, WS_EDGES, first)))
            loaders += new
            rs = [ld.line(60 + n / 50.0) for ld in new]
            wall = time.time() - t0
            if any(r is None for r in rs):
                log("  %s wsedges: a loader for %d..%d gave no result (see %s/wsload-*.log)"
                    % (srv.name, have, target, OUT))
                break
            time.sleep(SETTLE)
            c1 = srv.cpu()
            have = target
            new_reg = sum(r["registered"] for r in rs)
            registered += new_reg
            errors = {}
            for r in rs:
                for k, v in r["errors"].items():
                    errors[k] = errors.get(k, 0) + v
            worst = lambda k: [max((r[k][i] for r in rs if r[k][i] is not None), default=None)
                               for i in range(4)]
            pids = srv.edge_pids()
            per_edge = {i: open_fds(p) - base["fds"].get(i, 0) for i, p in pids.items()}
            cpu = {k: (c1.get(k, 0) - c0.get(k, 0)) / float(HZ) for k in c1}
            st = {"target": target, "registered": registered, "new_registered": new_reg,
                  "failed": sum(r["failed"] for r in rs), "errors": errors,
                  "connect_ms": worst("connect_ms"), "register_ms": worst("register_ms"),
                  "elapsed_s": wall, "rate": new_reg / wall if wall else None,
                  "per_edge": per_edge,
                  "ws_rss": sum(rss_bytes(x) for x in srv.ws_pids()),
                  "ws_pss": sum(pss_bytes(x) for x in srv.ws_pids()), "pss": srv.memory(),
                  "cpu_s": sum(cpu.values()), "cpu_by": cpu, "alive": srv.alive()}
            st["cpu_ms_per_conn"] = 1000.0 * st["cpu_s"] / new_reg if new_reg else None
            st["edge_cpu_ms_per_conn"] = (1000.0 * sum(v for k, v in cpu.items() if k.startswith("edge"))
                                          / new_reg if new_reg else None)
            for k in ("ws_rss", "ws_pss", "pss"):
                st[k + "_per_conn"] = ((st[k] - base[k]) / float(registered)
                                       if registered else None)
            st["options_ms"] = options_ms(srv.port)
            res["stages"].append(st)
            log("  %-8s wsedges %6d connections: %6d registered (%d failed%s) in %.1f s; "
                "per edge %s; connect p50/p99 %s/%s ms, REGISTER->200 p50/p99 %s/%s ms "
                "(worst loader); edges RSS %s (+%.0f bytes per connection), all PSS %s "
                "(+%.0f per connection); server CPU %.2f ms per new connection (edges %.2f)" % (
                    srv.name, target, registered, st["failed"],
                    (" " + json.dumps(errors)) if errors else "", wall,
                    json.dumps(per_edge), st["connect_ms"][0], st["connect_ms"][2],
                    st["register_ms"][0], st["register_ms"][2], mb(st["ws_rss"]),
                    st["ws_rss_per_conn"] or 0, mb(st["pss"]), st["pss_per_conn"] or 0,
                    st["cpu_ms_per_conn"] or 0, st["edge_cpu_ms_per_conn"] or 0))
            if not st["alive"]:
                log("  %s died with %d WebSocket connections" % (srv.name, registered))
                break
            if st["failed"] > 0.05 * n:
                log("  %s wsedges: over 5%% failed, no further stage" % srv.name)
                break
        # A MESSAGE to a sample of the users, spread over every edge:
        # each must be answered 200 by its client, and every edge's
        # count of messages sent to clients must have grown.
        sample = ["ws%d" % i for i in range(0, have, max(1, have // 300))]
        sent0 = {i: edge_stat(srv, i, "sent") for i in srv.edge_pids()}
        got = udp_messages(srv.port, sample)
        sent1 = {i: edge_stat(srv, i, "sent") for i in srv.edge_pids()}
        ok = sum(1 for v in got.values() if v == 200)
        res["message"] = {"sent_to": len(sample), "answered_200": ok,
                          "others": sorted(set(str(v) for v in got.values() if v != 200)),
                          "per_edge_sent": {i: (sent1[i] - sent0[i]) if None not in (
                              sent0.get(i), sent1.get(i)) else None for i in sent1}}
        log("  %s wsedges: MESSAGE to %d of the users: %d answered 200 by their client%s; "
            "messages sent to clients per edge %s" % (
                srv.name, len(sample), ok, (" (others: %s)" % ", ".join(res["message"]["others"]))
                if res["message"]["others"] else "", json.dumps(res["message"]["per_edge_sent"])))
        time.sleep(1)
        res["open_at_end"] = sum((ld.status() or {}).get("open", 0) for ld in loaders)
        log("  %s wsedges: %d connections still open at the end" % (srv.name, res["open_at_end"]))
    finally:
        for ld in loaders:
            ld.stop()
        srv.stop()
        srv.ws, srv.ws_edges = False, 1
    return res


def report_wsedges(w, r):
    w("")
    w("WebSocket clients through %d edges of one host sharing the WS port ([edge] "
      "reuseport = yes; the kernel spreads connections over the edges' listening "
      "sockets): the 'ws' scenario's clients and REGISTERs (bench/wsload.js, one process "
      "per %d connections, %d in progress each, from %d loopback source addresses), "
      "in stages, every connection kept open." % (r["edges"], WS_LOADER_MAX, WS_WINDOW,
                                                 WS_SOURCES))
    w("  %s" % r["server"])
    w("  Memory: growth since before the first connection over the connections registered "
      "('edges': the sipmesh-edge processes; 'all': edges + cores + redis, PSS). CPU: "
      "every server process during the stage (connect, TLS-free WS upgrade, REGISTER, "
      "binding in Redis and the shared store) over the stage's new connections.")
    for st in r["stages"]:
        w("  %d connections: %d registered, %d failed%s in %.1f s (%.0f/s); per edge %s" % (
            st["target"], st["registered"], st["failed"],
            (" " + json.dumps(st["errors"])) if st["errors"] else "", st["elapsed_s"],
            st["rate"] or 0, json.dumps(st["per_edge"])))
        w("    connect p50/p90/p99 %s ms, REGISTER->200 p50/p90/p99 %s ms (worst loader)" % (
            "/".join("-" if x is None else "%d" % x for x in st["connect_ms"][:3]),
            "/".join("-" if x is None else "%d" % x for x in st["register_ms"][:3])))
        w("    edges RSS %s: +%.0f bytes per connection (PSS +%.0f); all PSS %s: +%.0f per "
          "connection" % (mb(st["ws_rss"]), st["ws_rss_per_conn"] or 0,
                          st["ws_pss_per_conn"] or 0, mb(st["pss"]), st["pss_per_conn"] or 0))
        w("    server CPU %.2f ms per new connection (edges %.2f ms); %s" % (
            st["cpu_ms_per_conn"] or 0, st["edge_cpu_ms_per_conn"] or 0,
            ", ".join("%s %.1f s" % (k, v) for k, v in sorted(st["cpu_by"].items()))))
    m = r.get("message")
    if m:
        w("  MESSAGE over UDP to %d of the users: %d answered 200 by their WebSocket client; "
          "messages each edge sent to clients meanwhile (the MESSAGEs, plus the 200s back "
          "to the UDP sender on the edge its datagrams hash to): %s" % (
              m["sent_to"], m["answered_200"], json.dumps(m["per_edge_sent"])))
    w("  connections still open at the end: %d" % r.get("open_at_end", 0))


# ---------------------------------------------------------------- report

def fmt_rate(r):
    return "%.0f" % r if r is not None else "-"


def fmt_probe(p):
    """latprobe's result: p50/p99/p99.9 in us, or why there is none."""
    if not p:
        return "-"
    if p.get("error") or not p.get("ok"):
        return "none (%s)" % (p.get("error") or "no 200")[:60]
    bad = p.get("sent", 0) - p.get("ok", 0)
    nobye = p["ok"] - p.get("byes_ok", 0) if p.get("mode") == "call" else 0
    return "%.0f/%.0f/%.0f us%s%s" % (p["p50_us"], p["p99_us"], p["p999_us"],
                                       " (%d not 200)" % bad if bad else "",
                                       " (%d BYEs not 200)" % nobye if nobye else "")


def fmt_ms(v):
    if v is None:
        return "-"
    return "<1" if v < 1 else "%.0f" % v


def mb(b):
    return "%.1f MB" % (b / 1048576.0) if b is not None else "-"


def ratio(a, b, digits=2):
    if a is None or b is None or not b:
        return "-"
    return "%.*f" % (digits, a / float(b))


def report(results, info):
    lines = []
    w = lines.append
    w("sipmesh bench, %s" % time.strftime("%Y-%m-%d %H:%M:%S"))
    w("")
    w("NOTE: sipp shares the %d CPU cores with the server under test (sipp UAC, and for "
      "MESSAGE and calls a sipp UAS too, run on the same machine), so rates are a lower "
      "bound on the server's capacity and are noisy on a shared machine; server CPU per "
      "operation is the figure that holds on a noisy machine." % NCPU)
    w("Rate: highest sipp call rate (one call = one REGISTER, one MESSAGE, or one "
      "INVITE..BYE call) with under %g%% failed calls and an achieved rate >= %d%% of "
      "the target, %g s of load per trial (doubling, then %d bisection steps)." % (
          FAIL_LIMIT, KEEPUP * 100, DURATION, BISECT))
    w("Figures per scenario come from a confirmation trial at the rate found (or 10%% or "
      "20%% below if that fails), on a freshly restarted server holding the same 10,000 "
      "bindings, so failed trials of the search do not inflate its memory.%s" % (
          "" if CONFIRM else " (BENCH_CONFIRM=0: confirmation off, search figures)"))
    w("Response time: sipp rtd (REGISTER->200, MESSAGE->200, INVITE->200) at that rate; "
      "sipp measures whole milliseconds, '<1' means under 1 ms (its traces come in 4 ms "
      "steps here). Probe: bench/latprobe.c sends %d/s REGISTERs or MESSAGEs (to itself, "
      "through the server) beside sipp's load and times each final response in "
      "microseconds (CLOCK_MONOTONIC, send to receive); in call and media trials %d/s "
      "INVITEs to itself (INVITE -> 200, then ACK and BYE); its operations are counted "
      "in the CPU per operation." % (PROBE_RATE, max(1, PROBE_RATE // 4)))
    w("Server CPU: utime+stime from /proc/<pid>/stat summed over every server process "
      "(sipmesh: edge, the cores and redis; media: + rtpctl and the rtpengine daemons; "
      "Kamailio: its processes; media: + the rtpengine daemons), during the trial plus "
      "%g s, divided by successful operations." % SETTLE)
    w("Server memory: sum of PSS over the server processes (shared memory, /dev/shm and "
      "Kamailio's -m pool, counted once for the pages in use), peak during the trial.")
    w("Machine: %s, %d cores; %s; load average at start %s." % (
        info.get("cpu", "?"), NCPU, info.get("sipp", "sipp"), info.get("loadavg", "?")))
    for name in ("sipmesh", "Kamailio"):
        if name in info:
            w("  %-9s %s" % (name + ":", info[name]))
    w("")
    sm = results.get("sipmesh", {}).get("best", {})
    km = results.get("Kamailio", {}).get("best", {})
    for scn in [x for x in SCENARIOS if x in TITLE]:
        a, b = sm.get(scn), km.get(scn)
        w(TITLE[scn])
        if scn == "media":
            w("  Media packets do not flow: what is measured is the signalling plus the "
              "rtpengine session setup and teardown (ng offer on the INVITE, answer on the "
              "200, delete on the BYE; userspace rtpengine, --delete-delay=0), flags "
              "RTP/AVP replace-origin replace-session-connection ICE=remove (sipmesh's "
              "phone -> phone row; Kamailio: rtpengine module, bench/kamailio.cfg "
              "WITH_MEDIA). A call whose SDP was not rewritten by rtpengine fails "
              "(scenarios/media_*.xml). Reference from the issue: Kamailio 1,125 calls/s "
              "with rtpengine anchoring on this kind of machine.")
            for name, r in (("sipmesh", results.get("sipmesh", {})),
                            ("Kamailio", results.get("Kamailio", {}))):
                if r.get("media_server"):
                    w("  %-9s %s" % (name + ":", r["media_server"]))
        w("  %-26s %14s %14s %18s" % ("", "sipmesh", "Kamailio", "sipmesh/Kamailio"))

        def row(label, fa, fb, ra):
            w("  %-26s %14s %14s %18s" % (label, fa, fb, ra))
        ga = lambda k: a.get(k) if a else None
        gb = lambda k: b.get(k) if b else None
        row("rate (ops/s)", fmt_rate(ga("target")) + ("?" if a and a.get("unconfirmed") else ""),
            fmt_rate(gb("target")) + ("?" if b and b.get("unconfirmed") else ""),
            ratio(ga("target"), gb("target")) + " (higher=better)")
        row("  achieved (ops/s)", fmt_rate(ga("achieved")), fmt_rate(gb("achieved")),
            ratio(ga("achieved"), gb("achieved")))
        row("failures %", "%.2f" % ga("fail_pct") if a else "-",
            "%.2f" % gb("fail_pct") if b else "-", "")
        for p in ("p50", "p90", "p99"):
            row("%s response (ms)" % p, fmt_ms(ga(p)), fmt_ms(gb(p)), "")
        if ga("probe") or gb("probe"):
            row("probe p50/p99/p99.9 (us)", fmt_probe(ga("probe")), fmt_probe(gb("probe")), "")
        row("server CPU (us/op)", "%.1f" % ga("cpu_us_op") if a and ga("cpu_us_op") else "-",
            "%.1f" % gb("cpu_us_op") if b and gb("cpu_us_op") else "-",
            ratio(ga("cpu_us_op"), gb("cpu_us_op")) + " (lower=better)")
        # CPU per operation falls as the rate rises (more work per wakeup):
        # also compare both at the same rate, the highest both passed.
        def passed(name):
            return {t["target"]: t for t in results.get(name, {}).get("trials", [])
                    if t["scenario"] == scn and t["pass"]}
        pa, pb = passed("sipmesh"), passed("Kamailio")
        common = sorted(set(pa) & set(pb))
        if common:
            c = common[-1]
            row("  same rate: %d/s (us/op)" % c, "%.1f" % pa[c]["cpu_us_op"],
                "%.1f" % pb[c]["cpu_us_op"],
                ratio(pa[c]["cpu_us_op"], pb[c]["cpu_us_op"]) + " (lower=better)")
        row("server CPU (cores, load)", "%.2f" % ga("server_cores") if a else "-",
            "%.2f" % gb("server_cores") if b else "-", "")
        row("server memory (peak)", mb(ga("mem_peak")), mb(gb("mem_peak")),
            ratio(ga("mem_peak"), gb("mem_peak")) + " (lower=better)")
        row("sipp UAC CPU (cores)", "%.2f" % ga("sipp_uac_cores") if a else "-",
            "%.2f" % gb("sipp_uac_cores") if b else "-", "")
        if scn != "register":
            row("sipp UAS CPU (cores)", "%.2f" % (ga("sipp_uas_cores") or 0) if a else "-",
                "%.2f" % (gb("sipp_uas_cores") or 0) if b else "-", "")
        row("other CPU on the machine (cores)",
            "%.2f" % ga("other_cores") if a and a.get("other_cores") is not None else "-",
            "%.2f" % gb("other_cores") if b and b.get("other_cores") is not None else "-",
            "(noise: not server, not sipp)")
        if (a and a.get("unconfirmed")) or (b and b.get("unconfirmed")):
            w("  ?: failed its confirmation trial on a fresh server; figures from the search")
        if scn == "media":
            row("rtpengine sessions left", str(ga("rtp_sessions_left")) if a else "-",
                str(gb("rtp_sessions_left")) if b else "-", "(after the trial; 0 = all deleted)")

            def ngper(t, k):
                if not t or not t.get("ng") or not t.get("ok"):
                    return "-"
                return "%.2f" % (t["ng"].get(k, 0) / float(t["ok"]))
            for k in ("sessions", "offer", "answer", "delete", "ping", "error"):
                row("rtpengine %s / call" % ("ng " + k if k != "sessions" else "sessions"),
                    ngper(a, k), ngper(b, k), "")
        if a and a.get("cpu_by_proc"):
            w("  sipmesh CPU by process (s): " + ", ".join(
                "%s %.2f" % (k, v) for k, v in sorted(a["cpu_by_proc"].items())))
        if scn == "media" and b and b.get("cpu_by_proc"):
            w("  Kamailio CPU by process (s): " + ", ".join(
                "%s %.2f" % (k, v) for k, v in sorted(b["cpu_by_proc"].items())))
        w("")
    ma = results.get("sipmesh", {}).get("membind")
    mk = results.get("Kamailio", {}).get("membind")
    if ma or mk:
        report_membind(w, ma, mk)
    if results.get("sipmesh", {}).get("auth") or results.get("Kamailio", {}).get("auth"):
        report_auth(w, results)
    wa = results.get("sipmesh", {}).get("ws")
    wk = results.get("Kamailio", {}).get("ws")
    if wa or wk:
        report_ws(w, wa, wk)
    if results.get("sipmesh", {}).get("wsedges"):
        report_wsedges(w, results["sipmesh"]["wsedges"])
    for name, why in info.get("skipped", {}).items():
        w("")
        w("%s not measured: %s" % (name, why))
    w("")
    w("Trials (target/s, achieved/s, failures %, p50/p90/p99 ms, server CPU us/op, "
      "other CPU on the machine in cores):")
    for name in ("sipmesh", "Kamailio"):
        for t in results.get(name, {}).get("trials", []):
            w("  %-8s %-8s %7d %8.0f %6.2f%% %s/%s/%s %8s %5s  %s" % (
                name, t["scenario"], t["target"], t["achieved"], t["fail_pct"],
                fmt_ms(t["p50"]), fmt_ms(t["p90"]), fmt_ms(t["p99"]),
                "%.1f" % t["cpu_us_op"] if t["cpu_us_op"] else "-",
                "%.2f" % t["other_cores"] if t.get("other_cores") is not None else "-",
                ("pass" if t["pass"] else "FAIL (%s)" % t["why"]) +
                (" [confirmation, fresh server]" if t.get("confirm") else "") +
                (" probe %s" % fmt_probe(t["probe"]) if t.get("probe") else "")))
    return "\n".join(lines) + "\n"


def report_membind(w, ma, mk):
    w("Memory per binding (10,000 REGISTERs on a fresh server, PSS after - before)")
    w("  %-26s %14s %14s %18s" % ("", "sipmesh", "Kamailio", "sipmesh/Kamailio"))
    w("  %-26s %14s %14s %18s" % ("before", mb(ma["mem_before"]) if ma else "-",
                                   mb(mk["mem_before"]) if mk else "-", ""))
    w("  %-26s %14s %14s %18s" % ("after 10,000 bindings", mb(ma["mem_after"]) if ma else "-",
                                   mb(mk["mem_after"]) if mk else "-", ""))
    w("  %-26s %14s %14s %18s" % (
        "per binding (bytes)", "%.0f" % ma["per_binding"] if ma else "-",
        "%.0f" % mk["per_binding"] if mk else "-",
        ratio(ma["per_binding"] if ma else None, mk["per_binding"] if mk else None)))
    if mk and "shm_per_binding" in mk:
        w("  Kamailio shm allocator (core.shmmem real_used): %.0f bytes per binding"
          % mk["shm_per_binding"])
    if ma and ma.get("extra_after"):
        x = ma["extra_after"]
        if "shm_file_size" in x:
            w("  sipmesh /dev/shm store: %s file, %s allocated from the start (in 'before'),"
              % (mb(x["shm_file_size"]), mb(x["shm_file_allocated"])))
            w("    i.e. %.0f bytes per slot for max_bindings = %d; the per-binding figure "
              "above is what grows (Redis, heaps)" % (x["shm_file_allocated"] / float(MAX_BINDINGS),
                                                      MAX_BINDINGS))
    for name, m in (("sipmesh", ma), ("Kamailio", mk)):
        if m and m["registered"] != NUSERS:
            w("  WARNING: %s registered only %d of %d users" % (name, m["registered"], NUSERS))


def report_ws(w, wa, wk):
    w("")
    w("WebSocket clients on one edge: SIP over WebSocket (ws://, subprotocol sip), one "
      "REGISTER per connection as SIP.js sends it (Contact <sip:x@<random>.invalid;"
      "transport=ws>, Expires 3600), every connection kept open; the connections are "
      "added in stages (bench/wsload.js, Node + ws, %d in progress at a time, from "
      "%d loopback source addresses 127.0.0.2..). Each process here may hold 20,000 open "
      "files (a hard limit), so one edge holds ~19,900 connections at most."
      % (WS_WINDOW, WS_SOURCES))
    w("Memory: growth from before the first connection, divided by the connections "
      "registered. sipmesh: 'edge' is the sipmesh-edge process (which holds the "
      "connections), 'all' edge + cores + redis (the bindings too). Kamailio: every "
      "process (its TCP main process holds the connections; shm counted once in PSS).")
    w("UDP OPTIONS: 10 pings to the server's UDP port with all the connections open "
      "(median / max ms).")
    for name, r in (("sipmesh", wa), ("Kamailio", wk)):
        if r:
            w("  %-9s %s" % (name + ":", r["server"]))
    w("  %-34s %14s %14s %18s" % ("", "sipmesh", "Kamailio", "sipmesh/Kamailio"))

    def row(label, fa, fb, ra=""):
        w("  %-34s %14s %14s %18s" % (label, fa, fb, ra))

    def by_target(r):
        return {st["target"]: st for st in (r or {}).get("stages", [])}
    sa, sk = by_target(wa), by_target(wk)

    def pct3(v):
        return "/".join("-" if x is None else "%d" % x for x in v[:3]) if v else "-"

    def om(st):
        v = [x for x in st["options_ms"] if x is not None]
        if not v:
            return "none"
        return "%.1f/%.1f%s" % (v[len(v) // 2], v[-1], "" if len(v) == len(st["options_ms"])
                                else " (%d lost)" % (len(st["options_ms"]) - len(v)))
    for t in sorted(set(sa) | set(sk)):
        a, b = sa.get(t), sk.get(t)
        w("  %d connections" % t)
        g = lambda st, k, f="%.0f": (f % st[k]) if st and st.get(k) is not None else "-"
        row("  registered", g(a, "registered", "%d"), g(b, "registered", "%d"))
        row("  failed (this stage)", g(a, "failed", "%d"), g(b, "failed", "%d"))
        row("  connect p50/p90/p99 (ms)", pct3(a and a["connect_ms"]), pct3(b and b["connect_ms"]))
        row("  REGISTER->200 p50/p90/p99 (ms)", pct3(a and a["register_ms"]),
            pct3(b and b["register_ms"]))
        row("  registrations/s (this stage)", g(a, "rate"), g(b, "rate"))
        row("  edge RSS", mb(a["ws_rss"]) if a else "-", "-")
        row("  edge RSS growth / conn (bytes)", g(a, "ws_rss_per_conn"), "-")
        row("  edge PSS growth / conn (bytes)", g(a, "ws_pss_per_conn"), "-")
        row("  all PSS", mb(a["pss"]) if a else "-", mb(b["pss"]) if b else "-")
        row("  all PSS growth / conn (bytes)", g(a, "pss_per_conn"), g(b, "pss_per_conn"),
            ratio(a and a.get("pss_per_conn"), b and b.get("pss_per_conn")) + " (lower=better)")
        if b and b.get("shm_per_conn") is not None:
            row("  Kamailio shm used / conn (bytes)", "", g(b, "shm_per_conn"))
        per = lambda st: (st["cpu_s"] * 1e6 / st["new_registered"]
                          if st and st["new_registered"] else None)
        row("  server CPU / registration (us)",
            "%.0f" % per(a) if per(a) else "-", "%.0f" % per(b) if per(b) else "-",
            ratio(per(a), per(b)) + " (lower=better)")
        if a and a.get("cpu_by") and a["new_registered"]:
            w("    sipmesh by process (us/registration): " + ", ".join(
                "%s %.0f" % (k, v * 1e6 / a["new_registered"])
                for k, v in sorted(a["cpu_by"].items())))
        row("  UDP OPTIONS median/max (ms)", om(a) if a else "-", om(b) if b else "-")
    row("still open at the end", "%d" % wa["open_at_end"] if wa and "open_at_end" in wa else "-",
        "%d" % wk["open_at_end"] if wk and "open_at_end" in wk else "-")


# ---------------------------------------------------------------- main

def main():
    global LOG
    os.makedirs(OUT, exist_ok=True)
    for fn in os.listdir(OUT):      # logs of the previous run
        if fn == "kamailio.log" or (fn.startswith(("sipmesh-", "rtpengine", "wsload-"))
                                    and fn.endswith(".log")):
            os.unlink(os.path.join(OUT, fn))
    shutil.rmtree(os.path.join(OUT, "work"), ignore_errors=True)
    LOG = open(os.path.join(OUT, "bench.log"), "w")
    kam = ("kamailio",) if "kamailio" in [x.strip().lower() for x in SERVERS] else ()
    for tool in ("sipp", "redis-server") + kam + (
            ("rtpengine",) if "media" in SCENARIOS else ()) + (
            (NODE,) if "ws" in SCENARIOS or "wsedges" in SCENARIOS else ()):
        if not shutil.which(tool):
            log("bench: %s not found (make bench installs it)" % tool)
            return 2
    t_start = time.time()
    log("sipmesh bench: %d cores; sipp shares the %d cores with the server under test."
        % (NCPU, NCPU))
    log("trials of %g s%s; servers %s; scenarios %s" % (
        DURATION, " (BENCH_QUICK)" if QUICK else "", ",".join(SERVERS), ",".join(SCENARIOS)))
    results, info = {}, {"skipped": {}}
    try:
        with open("/proc/cpuinfo") as f:
            info["cpu"] = [l.split(":", 1)[1].strip() for l in f if l.startswith("model name")][0]
        with open("/proc/loadavg") as f:
            info["loadavg"] = " ".join(f.read().split()[:3])
        v = subprocess.run(["sipp", "-v"], capture_output=True, text=True).stdout
        m = re.search(r"SIPp v[\w.\-]*\w", v)
        info["sipp"] = m.group(0) if m else "sipp"
    except (OSError, IndexError):
        pass
    tmp = tempfile.mkdtemp(prefix="sipmesh-bench-")
    interrupted = []

    def on_signal(sig, frame):
        interrupted.append(sig)
        raise KeyboardInterrupt()
    signal.signal(signal.SIGTERM, on_signal)
    try:
        for sname in SERVERS:
            cls = {"sipmesh": Sipmesh, "kamailio": Kamailio}.get(sname.strip().lower())
            if cls is None:
                log("bench: unknown server %r" % sname)
                continue
            wd = os.path.join(tmp, cls.name)
            os.makedirs(wd)
            srv = cls(wd)
            res = {}
            sipp_scns = [x for x in SCENARIOS if x in TITLE]
            try:
                if sipp_scns:
                    try:
                        info[srv.name] = srv.start()
                    except FileNotFoundError as e:
                        log("%s: skipped: %s" % (cls.name, e))
                        info["skipped"][cls.name] = str(e)
                        continue
                    log("%s started: %s" % (srv.name, info[srv.name]))
                    b = Bench(srv, wd)
                    results[srv.name] = res
                    res["membind"] = b.memory_per_binding()
                    m = res["membind"]
                    log("%s: idle CPU %.3f cores; memory %s before, %s after %d registrations: "
                        "%.0f bytes per binding" % (srv.name, m["idle_cores"], mb(m["mem_before"]),
                                                    mb(m["mem_after"]), m["registered"],
                                                    m["per_binding"]))
                    try:
                        res.update(b.run(sipp_scns))
                    finally:
                        srv.stop()
            except (RuntimeError, OSError) as e:
                log("%s: ERROR: %s" % (cls.name, e))
                info["skipped"][cls.name] = "error: %s" % e
            finally:
                srv.stop()
            if "ws" in SCENARIOS:
                try:
                    res["ws"] = ws_bench(srv)
                    results[srv.name] = res
                except FileNotFoundError as e:
                    log("%s ws: left out: %s" % (cls.name, e))
                    info["skipped"][cls.name + " WebSocket"] = str(e)
                except (RuntimeError, OSError) as e:
                    log("%s ws: ERROR: %s" % (cls.name, e))
                    info["skipped"][cls.name + " WebSocket"] = "error: %s" % e
                finally:
                    srv.stop()
            if "wsedges" in SCENARIOS and srv.name == "sipmesh":
                try:
                    res["wsedges"] = wsedges_bench(srv)
                    results[srv.name] = res
                except FileNotFoundError as e:
                    log("%s wsedges: left out: %s" % (cls.name, e))
                    info["skipped"]["sipmesh WebSocket through edges"] = str(e)
                except (RuntimeError, OSError) as e:
                    log("%s wsedges: ERROR: %s" % (cls.name, e))
                    info["skipped"]["sipmesh WebSocket through edges"] = "error: %s" % e
                finally:
                    srv.stop()
        for cls in (Sipmesh, Kamailio):
            if "auth" not in SCENARIOS or \
                    cls.name.lower() not in [x.strip().lower() for x in SERVERS]:
                continue
            try:
                results.setdefault(cls.name, {})["auth"] = auth_bench(tmp, cls)
            except (RuntimeError, OSError, subprocess.CalledProcessError) as e:
                log("%s auth: ERROR: %s" % (cls.name, e))
                info["skipped"][cls.name + " auth"] = "error: %s" % e
    except KeyboardInterrupt:
        log("bench: interrupted")
    finally:
        for sp in list(RUNNING_SIPP):     # only the sipp processes this bench started
            try:
                sp.p.kill()
                sp.wait(3)
            except OSError:
                pass
    text = report(results, info)
    text += ("\nTotal bench time: %.0f s. Logs: %s (BENCH_KEEP=1 keeps the sipp traces "
             "in its work/)\n") % (time.time() - t_start, OUT)
    print()
    print(text, end="")
    with open(os.path.join(OUT, "results.txt"), "w") as f:
        f.write(text)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump({"results": results, "info": info}, f, indent=1, default=str)
    if env("BENCH_KEEP", "0") != "0":
        dst = os.path.join(OUT, "work")
        shutil.rmtree(dst, ignore_errors=True)
        # the processes' ipc sockets are not files: copytree fails on them
        shutil.copytree(tmp, dst, ignore=lambda d, names: [
            n for n in names if not os.path.isdir(os.path.join(d, n))
            and not os.path.isfile(os.path.join(d, n))])
    shutil.rmtree(tmp, ignore_errors=True)
    return 130 if interrupted else 0


if __name__ == "__main__":
    sys.exit(main())
