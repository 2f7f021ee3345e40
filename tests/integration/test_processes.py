"""Privilege separation: who runs what, chroot, restarts."""
import os
import pwd
import signal
import subprocess
import time

from conftest import PASSWORD
from popsd_harness import POPSCTL

USER = "alice@example.com"


def uid_of(pid):
    with open("/proc/%d/status" % pid) as f:
        return int([l for l in f if l.startswith("Uid:")][0].split()[1])


def test_children_run_unprivileged(server):
    kids = server.children()
    assert sorted(kids.values()) == ["authd", "front"]
    for pid, role in kids.items():
        assert uid_of(pid) != 0, role
        want = "vmail" if role == "front" else "_popsd-auth"
        assert pwd.getpwuid(uid_of(pid)).pw_name == want
    front = [p for p, r in kids.items() if r == "front"][0]
    assert os.readlink("/proc/%d/root" % front) == server.mail_root, "the front is chrooted at the mail root"


def test_killed_front_is_replaced(server):
    front = [p for p, r in server.children().items() if r == "front"][0]
    os.kill(front, signal.SIGKILL)
    server.wait_log("role=front event=started", count=2, timeout=15)
    p = server.pop3s()
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 3
    p.quit()


def test_killed_authd_is_replaced(server):
    authd = [p for p, r in server.children().items() if r == "authd"][0]
    os.kill(authd, signal.SIGKILL)
    server.wait_log("role=authd event=started", count=2, timeout=15)
    server.wait_log("role=front event=started", count=2, timeout=15)
    time.sleep(0.2)
    p = server.pop3s()
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()


def test_sigterm_stops_everything(server):
    kids = list(server.children())
    server.stop()
    for pid in kids:
        assert not os.path.exists("/proc/%d" % pid) or open("/proc/%d/stat" % pid).read().split()[2] == "Z"


def test_front_is_under_seccomp(server):
    from popsd_harness import BUILD
    front = [p for p, r in server.children().items() if r == "front"][0]
    # Let the front finish its set-up (the filter is its last step).
    server.raw().line()
    with open("/proc/%d/status" % front) as f:
        mode = [l.split()[1] for l in f if l.startswith("Seccomp:")][0]
    if BUILD.rstrip("/").endswith("build-san"):
        assert mode == "0", "sanitizer runtimes need more calls: no filter in that build"
    else:
        assert mode == "2", "filter mode"


def test_authd_is_under_seccomp(server):
    """authd's filter is a deny-list (ptrace, mounts, namespaces, modules, BPF, set*id, exec without
    an exec hook kill it); set before its threads start, so every thread has it."""
    from popsd_harness import BUILD
    authd = [p for p, r in server.children().items() if r == "authd"][0]
    server.raw().line()
    want = "0" if BUILD.rstrip("/").endswith("build-san") else "2"
    for tid in os.listdir("/proc/%d/task" % authd):
        with open("/proc/%d/task/%s/status" % (authd, tid)) as f:
            assert [l.split()[1] for l in f if l.startswith("Seccomp:")][0] == want, tid


def test_failed_reload_keeps_the_working_generation(server):
    """A reload whose new children cannot start (here: a user database that does not exist)
    must not drain the generation that works."""
    server.allow_fatal = True  # the new authd's fatal start-up error is the point
    with open(server.conf_path) as f:
        conf = f.read()
    with open(server.conf_path, "w") as f:
        f.write(conf.replace("path = %s" % server.db, "path = /nonexistent/users.db"))
    server.proc.send_signal(signal.SIGHUP)
    server.wait_log("event=generation_failed gen=2", timeout=15)
    assert "event=draining" not in server.log()
    p = server.pop3s()
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK"), "the old generation still serves"
    p.quit()
    # A good reload then takes over, and only then is the old one drained.
    with open(server.conf_path, "w") as f:
        f.write(conf)
    server.proc.send_signal(signal.SIGHUP)
    server.wait_log("event=generation_ready gen=3", timeout=15)
    server.wait_log("event=draining")


def test_systemd_notify_ready_reload_stop(make_server, tmp_path, monkeypatch):
    """Type=notify: READY=1 once the first generation serves, RELOADING=1 then READY=1 around a
    reload, STOPPING=1 at SIGTERM, on the socket systemd names in NOTIFY_SOCKET."""
    import socket
    path = str(tmp_path / "notify.sock")
    sk = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sk.bind(path)
    sk.settimeout(15)
    monkeypatch.setenv("NOTIFY_SOCKET", path)
    s = make_server()
    s.add_user(USER, PASSWORD)
    s.start()

    def next_msg():
        return sk.recv(4096).decode()

    assert next_msg().startswith("READY=1\nSTATUS=serving (generation 1)")
    os.kill(s.proc.pid, signal.SIGHUP)
    assert next_msg().startswith("RELOADING=1")
    assert next_msg().startswith("READY=1\nSTATUS=serving (generation 2)")
    os.kill(s.proc.pid, signal.SIGTERM)
    assert next_msg() == "STOPPING=1"
    s.proc.wait(timeout=15)
    sk.close()


def thread_nices(pid):
    """{tid: nice} of a process's threads (field 19 of /proc/PID/task/TID/stat)."""
    out = {}
    for tid in os.listdir("/proc/%d/task" % pid):
        try:
            with open("/proc/%d/task/%s/stat" % (pid, tid)) as f:
                out[int(tid)] = int(f.read().rsplit(")", 1)[1].split()[16])
        except OSError:
            continue
    return out


def thread_cpu_s(pid, tid):
    with open("/proc/%d/task/%d/stat" % (pid, tid)) as f:
        f_ = f.read().rsplit(")", 1)[1].split()
    return (int(f_[11]) + int(f_[12])) / os.sysconf("SC_CLK_TCK")


def test_hashing_threads_run_below_the_loop_and_never_hold_up_cached_logins(make_server):
    """Full password hashes run on their own threads, 10 nice levels below authd's loop and login
    threads. With one hashing thread busy on a slow Argon2id verification, a polling login that the
    verified-credential cache answers still goes through at once (it used to wait for the hash)."""
    import threading
    s = make_server(extra_userdb="threads = 1")
    s.add_user(USER, PASSWORD)
    s.add_user("slow@example.com", PASSWORD)
    # slow@ gets a hash that takes a noticeable time to verify (64 MiB, 8 passes: about a second).
    env = dict(os.environ, POPSD_ARGON2_M_KIB="65536", POPSD_ARGON2_T="8")
    subprocess.run([POPSCTL, "--db", s.db, "user", "passwd", "slow@example.com"], input=(PASSWORD + "\n").encode(),
                   env=env, check=True, capture_output=True, timeout=120)
    s.start()
    authd = [p for p, r in s.children().items() if r == "authd"][0]
    nices = thread_nices(authd)
    base = nices[authd]
    assert sorted(nices.values()) == [base, base, base, base + 10], nices  # loop, 2 login threads, 1 hashing

    def login(user):
        t0 = time.monotonic()
        c = s.pop3s(timeout=60)
        c.user(user)
        c.pass_(PASSWORD)
        c.quit()
        return time.monotonic() - t0

    login(USER)  # now in the verified-credential cache
    slow = {}
    t = threading.Thread(target=lambda: slow.setdefault("s", login("slow@example.com")))
    t.start()
    hasher = [tid for tid, n in nices.items() if n == base + 10][0]
    cpu0 = thread_cpu_s(authd, hasher)
    deadline = time.monotonic() + 10
    while thread_cpu_s(authd, hasher) - cpu0 < 0.1:  # the slow hash is under way
        assert time.monotonic() < deadline, "the hashing thread never started on the slow login"
        time.sleep(0.01)
    cached = login(USER)
    t.join()
    assert slow["s"] > 0.4, "the slow hash was too fast to show anything (%.3f s)" % slow["s"]
    assert cached < slow["s"] / 2, "a cached login (%.3f s) waited for the hash (%.3f s)" % (cached, slow["s"])
    assert "hash_priority" not in s.log()
