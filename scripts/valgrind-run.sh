#!/bin/sh
# Once-off (not CI): runs the whole popsd under valgrind --trace-children=yes, so the parent,
# authd and the fronts it re-executes from /proc/self/exe are all checked, drives a few hundred
# sessions of every kind through it (full, pre-login, STLS, dropped, wrong password, garbage,
# a reload that drains one generation), stops it with SIGTERM and summarises each process's
# valgrind report: errors, and definitely/indirectly/possibly lost bytes.
#
#   sh scripts/valgrind-run.sh            # 300 sessions
#   SESSIONS=1000 KEEP=1 sh scripts/valgrind-run.sh
#
# valgrind cannot run a process that installs a seccomp filter (the kernel would apply it to
# valgrind itself; it refuses with EINVAL), so this builds its own popsd, as build/ but with
# POPSD_SANITIZED defined, which makes src/sandbox/seccomp.c install no filter (as in the
# sanitizer builds). Everything else is the normal -O2 -g build. The build directory is
# $VG_BUILD (default /tmp/popsd-valgrind-build, kept for the next run).
#
# Needs root (users' files owned by vmail, privilege drop) and valgrind (scripts/install-deps.sh).
# Exit status: 0 if no process reported an error or a definite/indirect leak, 1 otherwise.
set -eu
cd "$(dirname "$0")/.."
command -v valgrind >/dev/null || { echo "valgrind is not installed (sh scripts/install-deps.sh)" >&2; exit 2; }
VG_BUILD=${VG_BUILD:-/tmp/popsd-valgrind-build}
make -s BUILD="$VG_BUILD" CC="${CC:-cc} -DPOPSD_SANITIZED=1" "$VG_BUILD/popsd" "$VG_BUILD/popsctl"
SESSIONS=${SESSIONS:-300} KEEP=${KEEP:-0} POPSD_BUILD="$VG_BUILD" exec /usr/bin/python3 - <<'EOF'
import glob, os, poplib, random, re, shutil, signal, socket, subprocess, sys, tempfile, threading, time

sys.path.insert(0, os.path.join(os.getcwd(), "tests", "integration"))
from popsd_harness import PKI, POPSD, Server

PASSWORD = "correct horse battery"
SESSIONS = int(os.environ["SESSIONS"])
work = tempfile.mkdtemp(prefix="popsd-valgrind-")
os.chmod(work, 0o755)
vgdir = os.path.join(work, "valgrind")
os.makedirs(vgdir)
pki = PKI(os.path.join(work, "pki"))
s = Server(pki, os.path.join(work, "server"), workers=2)
users = ["vg%d@example.com" % i for i in range(4)]
for u in users:
    s.add_user(u, PASSWORD)
    s.deliver(u, b"Subject: one\n\nfirst\n..dot\n")
    s.deliver(u, b"Subject: two\r\n\r\n" + b"line of the second message\r\n" * 3000)
    s.deliver(u, b"Subject: three\n\nno final newline")

cmd = ["valgrind", "--trace-children=yes", "--leak-check=full", "--show-leak-kinds=definite,indirect,possible",
       "--errors-for-leak-kinds=definite,indirect", "--num-callers=30", "--child-silent-after-fork=yes",
       "--log-file=" + os.path.join(vgdir, "vg.%p.log"), POPSD, "-c", s.conf_path]
s.logf = open(s.log_path, "ab")
s.proc = subprocess.Popen(cmd, stdout=s.logf, stderr=s.logf)
s.wait_ready(timeout=180)
time.sleep(2)
if "event=fatal" in s.log():
    print("a child died at start under valgrind:\n" + "\n".join(l for l in s.log().splitlines() if "fatal" in l))
    s.proc.send_signal(signal.SIGTERM)
    s.proc.wait(timeout=120)
    sys.exit(1)
print("popsd under valgrind: pid %d, logs in %s" % (s.proc.pid, vgdir), flush=True)

def session(u, kind, r):
    if kind == "full":
        p = s.pop3s(timeout=120); p.user(u); p.pass_(PASSWORD)
        p.stat(); p.list(); p.uidl(); p.retr(1); p.retr(2); p.top(3, 0); p.dele(1); p.rset(); p.quit()
    elif kind == "prelogin":
        p = s.pop3s(timeout=120); p.capa(); p.quit()
    elif kind == "stls":
        p = s.pop3(timeout=120); p.capa(); p.stls(context=s.ctx()); p.user(u); p.pass_(PASSWORD); p.stat(); p.quit()
    elif kind == "drop":
        p = s.pop3s(timeout=120); p.user(u); p.pass_(PASSWORD); p.retr(2); p.close()
    elif kind == "badpass":
        p = s.pop3s(timeout=120); p.user(u)
        try:
            p.pass_("not the password")
        except poplib.error_proto:
            pass
        p.quit()
    elif kind == "badcmds":
        p = s.pop3s(timeout=120)
        try:
            for i in range(12):
                p._shortcmd("XYZZY " + "x" * r.randrange(0, 400))
        except (poplib.error_proto, EOFError, OSError):
            pass
        p.close()
    elif kind == "garbage":
        c = socket.create_connection(("127.0.0.1", s.pop3s_port), timeout=120)
        c.sendall(os.urandom(r.randrange(1, 600)))
        try:
            while c.recv(4096):
                pass
        except OSError:
            pass
        c.close()

kinds = ["full"] * 50 + ["prelogin"] * 12 + ["stls"] * 10 + ["drop"] * 10 + ["badpass"] * 4 + ["badcmds"] * 6 + ["garbage"] * 8
done, errors = [0], []

def run(u, seed, n):
    r = random.Random(seed)
    for _ in range(n):
        k = r.choice(kinds)
        try:
            session(u, k, r)
            done[0] += 1
        except Exception as e:
            errors.append("%s: %r" % (k, e))

t0 = time.time()
for phase in range(2):
    ths = [threading.Thread(target=run, args=(u, i * 10 + phase, SESSIONS // 2 // len(users))) for i, u in enumerate(users)]
    for t in ths: t.start()
    for t in ths: t.join()
    if phase == 0:
        # A reload: the first generation drains and exits normally, with its own leak report.
        n = s.log().count("role=front event=started")
        os.kill(s.proc.pid, signal.SIGHUP)
        s.wait_log("role=front event=started", count=n + 2, timeout=180)
        time.sleep(2)
print("%d sessions in %.0f s, %d client errors %s" % (done[0], time.time() - t0, len(errors), errors[:3]), flush=True)
s.proc.send_signal(signal.SIGTERM)
try:
    s.proc.wait(timeout=300)
except subprocess.TimeoutExpired:
    s.proc.kill(); s.proc.wait()
s.logf.close()

bad = 0
rows = []
for path in sorted(glob.glob(os.path.join(vgdir, "vg.*.log"))):
    text = open(path, errors="replace").read()
    m = re.search(r"Command: (.*)", text)
    command = m.group(1) if m else "?"
    role = re.search(r"-x (\w+)", command)
    role = role.group(1) if role else "parent"
    def num(label):
        m = re.search(label + r":\s+([\d,]+) bytes", text)
        return int(m.group(1).replace(",", "")) if m else 0
    m = re.search(r"ERROR SUMMARY: ([\d,]+) errors", text)
    errs = int(m.group(1).replace(",", "")) if m else -1
    row = (os.path.basename(path), role, errs, num("definitely lost"), num("indirectly lost"), num("possibly lost"),
           num("still reachable"), "All heap blocks were freed" in text)
    rows.append(row)
    if errs != 0 or row[3] or row[4]:
        bad += 1
print("%-18s %-7s %7s %10s %10s %10s %12s" % ("log", "role", "errors", "definite", "indirect", "possible", "reachable"))
for r in rows:
    print("%-18s %-7s %7d %10d %10d %10d %12d%s" % (r[0], r[1], r[2], r[3], r[4], r[5], r[6], "  (all freed)" if r[7] else ""))
popsd_log = s.log()
fatal = [l for l in popsd_log.splitlines() if "event=fatal" in l]
print("popsd log: %d lines, %d fatal" % (popsd_log.count("\n"), len(fatal)))
for f in fatal[:5]:
    print("  " + f)
if bad:
    print("\n%d process(es) reported errors or leaks; see %s" % (bad, vgdir))
if os.environ.get("KEEP") == "1" or bad:
    print("kept: " + work)
else:
    shutil.rmtree(work, ignore_errors=True)
sys.exit(1 if bad or errors or fatal else 0)
EOF
