"""Helpers for test_robustness.py: a Server that reads its log incrementally and may expect
fatal lines, Maildir content with a model of what must be on disk, latency and memory
probes, and the figures the tests report (docs/ROBUSTNESS.md).

Everything is loopback and bounded: every wait has a deadline, every loop a count.
"""
import errno
import json
import os
import poplib
import re
import resource
import shutil
import socket
import ssl
import statistics
import subprocess
import threading
import time

from popsd_harness import BUILD, POPSD, Server, memory_tls_client

PASSWORD = "correct horse battery"
# The ASan/UBSan build is about three times slower: time bounds scale with it.
SAN = os.path.basename(os.path.normpath(BUILD)) == "build-san"
SLOW = 3.0 if SAN else 1.0


def record(test, **figures):
    """Prints one line of figures (pytest -s shows it) and appends it as JSON to
    $POPSD_ROBUSTNESS_OUT when set; docs/ROBUSTNESS.md is written from these."""
    line = json.dumps(dict(test=test, san=SAN, **figures), sort_keys=True)
    print("ROBUSTNESS " + line)
    out = os.environ.get("POPSD_ROBUSTNESS_OUT")
    if out:
        with open(out, "a") as f:
            f.write(line + "\n")


def raise_nofile(want=20000):
    """Raises the soft RLIMIT_NOFILE (inherited by a popsd started afterwards). Returns the old limits."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    new = min(max(soft, want), hard)
    resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))
    return soft, hard


# ---------------------------------------------------------------- the server

class LogTail:
    """Reads the daemon's log file incrementally and keeps what the tests need."""

    GEN = re.compile(r"popsd\[(\d+)\]: role=parent event=generation_started gen=(\d+) authd_pid=(\d+)")
    EXIT = re.compile(r"role=parent event=child_exit gen=(\d+) role=(\w+) pid=(\d+) ")
    STARTED = re.compile(r"popsd\[(\d+)\]: role=(front|authd) event=started")

    def __init__(self, path):
        self.path = path
        self.off = 0
        self.partial = b""
        self.latest_gen = 0
        self.gen_authd = {}
        self.exits = {}  # pid -> (gen, role)
        self.started = []  # (pid, role) in log order
        self.lines = 0
        self.reloads = 0  # generations started by SIGHUP; the others are the parent's own restarts

    def poll(self):
        try:
            with open(self.path, "rb") as f:
                f.seek(self.off)
                data = f.read()
        except FileNotFoundError:
            return []
        self.off += len(data)
        data = self.partial + data
        cut = data.rfind(b"\n") + 1
        self.partial = data[cut:]
        new = data[:cut].decode(errors="replace").splitlines()
        self.lines += len(new)
        for line in new:
            if "role=parent event=reloading" in line:
                self.reloads += 1
                continue
            m = self.GEN.search(line)
            if m:
                self.latest_gen = max(self.latest_gen, int(m.group(2)))
                self.gen_authd[int(m.group(2))] = int(m.group(3))
                continue
            m = self.EXIT.search(line)
            if m:
                self.exits[int(m.group(3))] = (int(m.group(1)), m.group(2))
                continue
            m = self.STARTED.search(line)
            if m:
                self.started.append((int(m.group(1)), m.group(2)))
        return new

    def wait_exit(self, pid, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            self.poll()
            if pid in self.exits:
                return self.exits[pid]
            time.sleep(0.01)
        return None


class RServer(Server):
    """The harness's Server with: log level info (the kill loop writes a lot), an incremental
    log reader, fatal lines a test provokes on purpose, and /proc probes."""

    def __init__(self, *a, expect_fatal=(), log_level="info", **kw):
        self.expect_fatal = tuple(expect_fatal)
        self.log_level = log_level
        super().__init__(*a, **kw)
        self.tail = LogTail(self.log_path)

    def write_conf(self):
        super().write_conf()
        with open(self.conf_path) as f:
            conf = f.read()
        with open(self.conf_path, "w") as f:
            f.write(conf.replace("log_level = debug", "log_level = " + self.log_level, 1))

    def start(self, wait=True, asan_extra="", nofile=None):
        """As Server.start(), with extra ASAN_OPTIONS (the leak test shrinks ASan's quarantine,
        which would otherwise hold up to 256 MiB of freed memory and hide real growth), and
        optionally a hard RLIMIT_NOFILE for the whole daemon (set in the child only: this
        process may lower but not raise its own hard limit)."""
        self.logf = open(self.log_path, "ab")
        env = dict(os.environ)
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0" + (":" + asan_extra if asan_extra else "")
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        # The parent re-executes /proc/self/exe for every generation. Other engineers rebuild
        # build/ while tests run; a private copy keeps a relink from failing our restarts.
        exe = os.path.join(self.base, "popsd")
        if not os.path.exists(exe):
            shutil.copy2(POPSD, exe)
        limit = None
        if nofile:
            def limit():
                resource.setrlimit(resource.RLIMIT_NOFILE, (nofile, nofile))
        self.proc = subprocess.Popen([exe, "-c", self.conf_path], stdout=self.logf, stderr=self.logf, env=env,
                                     preexec_fn=limit)
        if wait:
            self.wait_ready()
        return self

    def check_sanitizers(self):
        lines = self.log().splitlines()
        for marker in ("ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer", "event=fatal"):
            bad = [l for l in lines if marker in l and not (marker == "event=fatal" and
                                                            any(e in l for e in self.expect_fatal))]
            assert not bad, "popsd reported %r:\n%s" % (marker, "\n".join(bad[:20]))

    def log_since(self, mark):
        """Log lines written after mark (a byte offset from log_mark())."""
        with open(self.log_path, "rb") as f:
            f.seek(mark)
            return f.read().decode(errors="replace").splitlines()

    def log_mark(self):
        return os.path.getsize(self.log_path)

    def fronts(self):
        return [p for p, r in self.children().items() if r == "front"]

    def front(self):
        """The one front of a workers=1 server that is accepting (the newest)."""
        fr = self.fronts()
        assert fr, "no front running"
        return max(fr, key=proc_start)

    def authd(self):
        a = [p for p, r in self.children().items() if r == "authd"]
        return max(a, key=proc_start)

    def login(self, user, timeout=10):
        p = self.pop3s(timeout=timeout)
        p.user(user)
        p.pass_(PASSWORD)
        return p

    def wait_serving(self, user, timeout=15):
        """Until a full login works (a live front with a live authd). Returns the seconds it took."""
        t0 = time.time()
        deadline = t0 + timeout * SLOW
        last = None
        while time.time() < deadline:
            try:
                p = self.login(user, timeout=5 * SLOW)
                p.quit()
                return time.time() - t0
            except (OSError, poplib.error_proto, EOFError) as e:
                last = e
                time.sleep(0.05)
        raise AssertionError("popsd did not serve %s within %ss: %r\n%s" % (user, timeout, last, self.log()[-3000:]))


def proc_start(pid):
    try:
        with open("/proc/%d/stat" % pid) as f:
            return int(f.read().rsplit(")", 1)[1].split()[19])
    except OSError:
        return 0


def rss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def fd_count(pid):
    return len(os.listdir("/proc/%d/fd" % pid))


def cpu_seconds(pid):
    with open("/proc/%d/stat" % pid) as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# ---------------------------------------------------------------- messages

def wire(data):
    """What LIST counts and RETR sends (before dot-stuffing): bare LF -> CRLF."""
    return re.sub(rb"(?<!\r)\n", b"\r\n", data)


def retr_expected(data):
    w = wire(data)
    return w if (not w or w.endswith(b"\n")) else w + b"\r\n"


def retr_joined(lines):
    """poplib's RETR lines (CRLF stripped, dot-unstuffed) back into bytes."""
    return b"".join(l + b"\r\n" for l in lines)


def make_message(rng, kind=None, size=None):
    """A message body of one of several shapes; every line stays under poplib's 2048-octet limit."""
    kind = kind or rng.choice(["text", "crlf", "dots", "binary", "noeol", "empty", "big"])
    hdr = b"From: robot@example.com\nSubject: %d\n\n" % rng.randrange(10 ** 9)
    if kind == "empty":
        return b""
    if kind == "noeol":
        return hdr + b"no final newline " * rng.randrange(1, 20)
    if kind == "dots":
        return hdr + b"".join(rng.choice([b".\n", b"..\n", b".x\n", b"line\n", b". \n", b"\n"])
                              for _ in range(rng.randrange(5, 200)))
    if kind == "crlf":
        return hdr.replace(b"\n", b"\r\n") + b"".join(b"crlf line %d\r\n" % i for i in range(rng.randrange(1, 300)))
    if kind == "binary":
        out = [hdr]
        for _ in range(rng.randrange(1, 40)):
            chunk = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 900)))
            out.append(chunk.replace(b"\n", b"") + rng.choice([b"\n", b"\r\n"]))
        return b"".join(out)
    if kind == "big":
        n = size or rng.randrange(64 * 1024, 256 * 1024)
        line = b"0123456789abcdefghijklmnopqrstuvwxyz" * 2 + b"\n"
        return hdr + line * (n // len(line))
    return hdr + b"".join(b"text line %d of a message\n" % i for i in range(rng.randrange(1, 80)))


class MailModel:
    """What must be in each user's Maildir: the originals we delivered, minus what a completed
    QUIT deleted. A QUIT that was sent but whose +OK never arrived (the front died in UPDATE)
    leaves its messages 'maybe deleted': each must then be fully there or fully gone."""

    def __init__(self, server, users, rng):
        self.s = server
        self.rng = rng
        self.lock = threading.Lock()
        self.orig = {u: {} for u in users}
        self.sure = {u: set() for u in users}
        self.maybe = {u: set() for u in users}
        self.seq = 0
        self.files_verified = 0
        self.bytes_verified = 0
        self.cache_tmp_seen = 0
        self.deletions_verified = 0

    def deliver(self, user, data=None, shape=None):
        """Writes a message as a delivery agent does (tmp/, then rename into new/ or cur/)."""
        rng = self.rng
        if data is None:
            data = make_message(rng)
        with self.lock:
            self.seq += 1
            base = "%d.M%dP%d.robust" % (1700000000 + self.seq, self.seq, os.getpid())
            shape = shape or rng.choice(["plain", "plain", "S", "W", "cur"])
            if shape == "S":
                base += ",S=%d" % len(data)
            elif shape == "W":
                base += ",S=%d,W=%d" % (len(data), len(wire(data)))
            self.orig[user][base] = data
        md = maildir_path(self.s, user)
        name = base + (":2,S" if shape == "cur" else "")
        tmp = os.path.join(md, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.chown(tmp, self.s.vmail.pw_uid, self.s.vmail.pw_gid)
        os.rename(tmp, os.path.join(md, "cur" if shape == "cur" else "new", name))
        return base

    def data(self, user, uidl):
        with self.lock:
            return self.orig[user].get(uidl)

    def quit_result(self, user, uidls, completed):
        with self.lock:
            (self.sure if completed else self.maybe)[user].update(uidls)

    def verify(self, user):
        """Compares the Maildir with the model (clients must be idle). Returns a list of problems
        and brings the model up to date (maybe-deleted messages that are gone are forgotten)."""
        md = maildir_path(self.s, user)
        problems = []
        leftovers = os.listdir(os.path.join(md, "tmp"))
        if leftovers:
            problems.append("left in tmp/: %r" % leftovers)
        if os.path.exists(os.path.join(md, "popsd.sizes.tmp")):
            self.cache_tmp_seen += 1  # a crash while writing the cache; removed by the next session
        present = {}
        for sub in ("new", "cur"):
            for n in os.listdir(os.path.join(md, sub)):
                base = n.split(":")[0]
                if base in present:
                    problems.append("duplicated: %s in %s and %s/%s" % (base, present[base], sub, n))
                present[base] = "%s/%s" % (sub, n)
        with self.lock:
            orig, sure, maybe = self.orig[user], self.sure[user], self.maybe[user]
            for base, rel in present.items():
                if base not in orig:
                    problems.append("unknown file %s" % rel)
                    continue
                with open(os.path.join(md, rel), "rb") as f:
                    got = f.read()
                self.files_verified += 1
                self.bytes_verified += len(got)
                if got != orig[base]:
                    problems.append("%s differs from what was delivered (%d vs %d octets)" % (rel, len(got),
                                                                                           len(orig[base])))
            for base in orig:
                if base in sure and base in present:
                    problems.append("%s deleted by a completed QUIT but still there" % base)
                elif base in sure:
                    self.deletions_verified += 1
                elif base not in sure and base not in maybe and base not in present:
                    problems.append("LOST: %s" % base)
            for base in [b for b in orig if b not in present]:
                del orig[base]
            sure.clear()
            maybe.clear()
        return problems

    def count(self, user):
        with self.lock:
            return len(self.orig[user])


def maildir_path(server, user):
    local, _, domain = user.partition("@")
    return os.path.join(server.mail_root, domain, local, "Maildir")


# ---------------------------------------------------------------- a well-behaved client

def good_session(server, user, expect_first=None):
    """One complete session: TLS, login, STAT, LIST, RETR 1, QUIT. Returns its duration in seconds."""
    t0 = time.time()
    p = server.pop3s(timeout=20 * SLOW)
    p.user(user)
    p.pass_(PASSWORD)
    n, _ = p.stat()
    p.list()
    if n:
        lines = p.retr(1)[1]
        if expect_first is not None:
            assert retr_joined(lines) == retr_expected(expect_first)
    assert p.quit().startswith(b"+OK")
    return time.time() - t0


def latencies(server, user, n=5, expect_first=None, pause=0.05):
    out = []
    for _ in range(n):
        out.append(good_session(server, user, expect_first))
        time.sleep(pause)
    return out


def summarise(lat):
    return {"median_ms": round(statistics.median(lat) * 1000, 1), "max_ms": round(max(lat) * 1000, 1),
            "n": len(lat)}


# ---------------------------------------------------------------- tmpfs

class Tmpfs:
    """A small tmpfs mounted over a directory (the mail root), unmounted at close()."""

    def __init__(self, path, size, nr_inodes=None, owner=None):
        self.path = path
        opts = "size=%s,mode=0755" % size
        if nr_inodes:
            opts += ",nr_inodes=%d" % nr_inodes
        r = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "popsd-robust", path], capture_output=True)
        if r.returncode != 0:
            import pytest
            pytest.skip("cannot mount a tmpfs here (needs CAP_SYS_ADMIN): %s" % r.stderr.decode().strip())
        self.mounted = True
        if owner:
            os.chown(path, owner.pw_uid, owner.pw_gid)

    def fill(self, name="filler", chunk=65536, limit=1 << 30):
        """Writes (as root) until the file system is full. Returns the octets written."""
        n = 0
        with open(os.path.join(self.path, name), "wb", buffering=0) as f:
            buf = b"\0" * chunk
            while n < limit:
                try:
                    n += f.write(buf)
                except OSError as e:
                    if e.errno != errno.ENOSPC:
                        raise
                    if chunk > 1:
                        chunk //= 2
                        buf = buf[:chunk]
                        continue
                    break
        return n

    def fill_inodes(self, limit=100000):
        d = os.path.join(self.path, "inode-filler")
        os.makedirs(d, exist_ok=True)
        n = 0
        while n < limit:
            try:
                open(os.path.join(d, str(n)), "wb").close()
            except OSError as e:
                if e.errno != errno.ENOSPC:
                    raise
                break
            n += 1
        return n

    def close(self):
        if self.mounted:
            r = subprocess.run(["umount", self.path], capture_output=True)
            if r.returncode != 0:
                subprocess.run(["umount", "-l", self.path], capture_output=True)
            self.mounted = False


def local_source(i):
    """Distinct loopback source addresses (127.1.x.y), so per-source caps apply per flood client."""
    return "127.1.%d.%d" % (1 + i // 250, 1 + i % 250)


def connect_from(src, port, timeout=10):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(timeout)
    s.bind((src, 0))
    s.connect(("127.0.0.1", port))
    return s


def client_hello_bytes():
    """A real TLS ClientHello, for slow senders."""
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    return memory_tls_client(ctx)[2].read()
