"""Alerts (webhook and exec hook) and the Prometheus endpoint, against the running daemon.
Everything is on loopback; every wait is bounded."""
import base64
import json
import os
import pwd
import re
import signal
import socket
import ssl
import stat
import subprocess
import threading
import time
import urllib.error
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import PASSWORD
from popsd_harness import POPSD, free_port

USER = "alice@example.com"
FAST = "auth_fail_delay = 40ms\nmax_auth_attempts = 3"
DEFENCE = "delay_max = 80ms\nban_prefix_failures = 1000\n"


class Receiver:
    """A webhook endpoint on 127.0.0.1: answers with `statuses` in turn, then 200."""

    def __init__(self, statuses=()):
        self.requests = []
        self.statuses = list(statuses)
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(min(n, 65536))
                with outer.lock:
                    outer.requests.append({"path": self.path, "headers": dict(self.headers), "body": body,
                                           "at": time.time()})
                    code = outer.statuses.pop(0) if outer.statuses else 200
                self.send_response(code)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.url = "http://127.0.0.1:%d/hook" % self.port
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def wait(self, n, timeout=10):
        deadline = time.time() + timeout
        while time.time() < deadline:
            with self.lock:
                if len(self.requests) >= n:
                    return list(self.requests)
            time.sleep(0.05)
        raise AssertionError("webhook got %d requests, wanted %d" % (len(self.requests), n))

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def receiver():
    made = []

    def make(statuses=()):
        r = Receiver(statuses)
        made.append(r)
        return r
    yield make
    for r in made:
        r.close()


def attempt(server, source, user, password):
    r = server.raw(source=source)
    r.line()
    r.cmd("USER " + user)
    reply = r.cmd("PASS " + password)
    r.close()
    return reply


def start(make_server, extra_conf, defence="", **kw):
    s = make_server(extra_server=FAST, extra_defence=DEFENCE + defence, extra_conf=extra_conf, **kw)
    s.add_user(USER, PASSWORD)
    s.start()
    return s


# ---- webhook ----

def test_webhook_ban_json_and_retry(make_server, receiver):
    hook = receiver(statuses=[500])  # the first delivery fails, the retry succeeds
    s = start(make_server, "[alerts]\nwebhook_url = %s\nwebhook_retry_delay = 200ms\nwebhook_retries = 3\n"
                           "events = ban\n" % hook.url, "ban_failures = 3\nban_time = 30s")
    for i in range(3):
        assert attempt(s, "127.0.20.2", USER, "secret-guess-%d" % i).startswith("-ERR")
    s.wait_log("event=ban subject=127.0.20.2/32")
    reqs = hook.wait(2)
    assert reqs[0]["body"] == reqs[1]["body"], "the retry carries the same event"
    assert reqs[1]["at"] - reqs[0]["at"] >= 0.15, "retried after the configured delay"
    assert reqs[0]["path"] == "/hook"
    assert reqs[0]["headers"]["Content-Type"] == "application/json"
    ev = json.loads(reqs[0]["body"])
    assert ev["event"] == "ban"
    assert ev["subject"] == "127.0.20.2/32"
    assert ev["remote"] == "127.0.20.2"
    assert ev["reason"] == "brute_force"
    assert ev["seconds"] == 30 and ev["count"] == 1
    assert ev["user"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", ev["time"])
    assert abs(time.mktime(time.strptime(ev["time"], "%Y-%m-%dT%H:%M:%SZ")) - time.mktime(time.gmtime())) < 60
    assert set(ev) == {"event", "time", "host", "subject", "user", "remote", "reason", "seconds", "count"}
    assert b"secret-guess" not in reqs[0]["body"]
    s.wait_log("event=alert_webhook_retry alert=ban try=1 status=500")
    # Only the chosen events: a login from a new source is not sent.
    assert attempt(s, "127.0.20.3", USER, PASSWORD).startswith("+OK")
    s.wait_log("event=new_source")
    time.sleep(0.5)
    assert len(hook.requests) == 2


def test_webhook_gives_up_after_retries(make_server, receiver):
    hook = receiver(statuses=[503, 503, 503, 503])
    s = start(make_server, "[alerts]\nwebhook_url = %s\nwebhook_retry_delay = 100ms\nwebhook_retries = 2\n"
                           "events = new_source\n" % hook.url)
    assert attempt(s, "127.0.21.1", USER, PASSWORD).startswith("+OK")
    reqs = hook.wait(3)
    # 100 ms, then 200 ms: the delay doubles.
    assert reqs[2]["at"] - reqs[1]["at"] >= 0.18
    s.wait_log("event=alert_webhook_failed alert=new_source tries=3 status=503")
    ev = json.loads(reqs[0]["body"])
    assert ev["event"] == "new_source" and ev["user"] == USER and ev["remote"] == "127.0.21.1"
    time.sleep(0.5)
    assert len(hook.requests) == 3, "no fourth try"


# ---- metrics ----

def metrics_conf(port):
    return "[metrics]\naddress = %d\n" % port


def fetch(port, path="/metrics", method="GET"):
    req = urllib.request.Request("http://127.0.0.1:%d%s" % (port, path), method=method,
                                 data=b"x" if method == "POST" else None)
    with urllib.request.urlopen(req, timeout=5) as r:
        return r.status, r.headers, r.read().decode()


def parse(text):
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            out[name] = float(value)
    return out


def wait_metrics(s, port, timeout=10):
    s.wait_log("role=metrics event=started", timeout=timeout)
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            return parse(fetch(port)[2])
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.05)
    raise AssertionError("metrics endpoint never answered")


def wait_value(port, key, want, timeout=5):
    deadline = time.time() + timeout
    while time.time() < deadline:
        m = parse(fetch(port)[2])
        if m.get(key) == want:
            return m
        time.sleep(0.05)
    raise AssertionError("%s is %r, wanted %r" % (key, m.get(key), want))


def promtool(text):
    out = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stdout + out.stderr


def tls12_login(s, user, password):
    ctx = ssl.create_default_context(cafile=s.pki.ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    sock = ctx.wrap_socket(socket.create_connection(("127.0.0.1", s.pop3s_port), timeout=10),
                           server_hostname="localhost")
    f = sock.makefile("rb")
    assert f.readline().startswith(b"+OK")
    sock.sendall(("USER %s\r\n" % user).encode())
    assert f.readline().startswith(b"+OK")
    sock.sendall(("PASS %s\r\n" % password).encode())
    reply = f.readline()
    sock.sendall(b"QUIT\r\n")
    f.readline()
    sock.close()
    return reply


L = 'popsd_logins_total{result="%s",mechanism="%s"}'


def test_metrics_count_sessions_and_pass_promtool(make_server):
    port = free_port()
    s = start(make_server, metrics_conf(port), "ban_failures = 3\nban_time = 30s")
    before = wait_metrics(s, port)
    assert before["popsd_sessions"] == 0
    # Two USER/PASS logins over TLS 1.3, one AUTH PLAIN, one over TLS 1.2, one wrong password.
    for _ in range(2):
        p = s.pop3s()
        p.user(USER)
        p.pass_(PASSWORD)
        p.quit()
    r = s.raw()
    r.line()
    creds = base64.b64encode(("\0%s\0%s" % (USER, PASSWORD)).encode()).decode()
    assert r.cmd("AUTH PLAIN " + creds).startswith("+OK")
    r.cmd("QUIT")
    r.close()
    assert tls12_login(s, USER, PASSWORD).startswith(b"+OK")
    assert attempt(s, "127.0.22.1", USER, "wrong").startswith("-ERR")
    # Three more failures from one source: banned, then refused.
    for i in range(3):
        attempt(s, "127.0.22.2", USER, "wrong-%d" % i)
    s.wait_log("event=ban subject=127.0.22.2/32")
    assert attempt(s, "127.0.22.2", USER, PASSWORD).startswith("-ERR")
    after = wait_value(port, "popsd_sessions", 0)
    d = {k: after[k] - before.get(k, 0) for k in after}
    assert d["popsd_connections_accepted_total"] == 9
    assert d[L % ("success", "USER")] == 3
    assert d[L % ("success", "PLAIN")] == 1
    assert d[L % ("failure", "USER")] == 4
    assert d[L % ("refused", "USER")] == 1
    assert d[L % ("failure", "PLAIN")] == 0
    assert d['popsd_tls_handshakes_total{version="1.3"}'] == 8
    assert d['popsd_tls_handshakes_total{version="1.2"}'] == 1
    assert d["popsd_auth_delays_total"] == 5
    assert 0.1 < d["popsd_auth_delay_seconds_total"] < 1.0
    assert d["popsd_bans_total"] == 1
    assert d["popsd_new_source_logins_total"] == 1
    # The defence tables are published every second.
    m = wait_value(port, 'popsd_defence_table_entries{table="bans"}', 1)
    assert m['popsd_defence_table_capacity{table="bans"}'] == 65536
    status, headers, text = fetch(port)
    assert status == 200 and headers["Content-Type"].startswith("text/plain; version=0.0.4")
    promtool(text)
    assert PASSWORD not in text and "alice" not in text


def test_metrics_process_is_unprivileged_and_http_is_strict(make_server):
    port = free_port()
    s = start(make_server, metrics_conf(port))
    wait_metrics(s, port)
    pids = [p for p, r in s.children().items() if r == "metrics"]
    assert len(pids) == 1
    with open("/proc/%d/status" % pids[0]) as f:
        uids = re.search(r"^Uid:\s+(\d+)\s+(\d+)\s+(\d+)", f.read(), re.M).groups()
    assert {int(u) for u in uids} == {pwd.getpwnam("_popsd").pw_uid}
    assert os.readlink("/proc/%d/root" % pids[0]) == "/var/empty"
    assert os.listdir("/var/empty") == []
    # Loopback only by default.
    listening = subprocess.run(["ss", "-Htln", "sport = :%d" % port], capture_output=True, text=True).stdout
    assert "127.0.0.1:%d" % port in listening and "0.0.0.0:%d" % port not in listening
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(port, "/")
    assert e.value.code == 404
    with pytest.raises(urllib.error.HTTPError) as e:
        fetch(port, "/metrics", method="POST")
    assert e.value.code == 405
    assert fetch(port, method="HEAD")[2] == ""


def test_metrics_off_unless_configured(server):
    assert "metrics" not in server.children().values()
    assert "role=metrics" not in server.log()


def test_metrics_survive_reload_and_restart(make_server):
    port = free_port()
    s = start(make_server, metrics_conf(port))
    wait_metrics(s, port)
    for i in range(2):
        assert attempt(s, "127.0.23.1", USER, PASSWORD).startswith("+OK")
    m1 = wait_value(port, L % ("success", "USER"), 2)
    old = [p for p, r in s.children().items() if r == "metrics"]
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log("role=metrics event=started", count=2)
    s.wait_log("role=front event=started", count=2)
    deadline = time.time() + 10
    while time.time() < deadline and any(p in s.children() for p in old):
        time.sleep(0.05)
    assert not any(p in s.children() for p in old), "the old generation's metrics process exits"
    m2 = parse(fetch(port)[2])
    assert m2[L % ("success", "USER")] == 2, "counters live in the parent's region, not in a process"
    assert m2["popsd_connections_accepted_total"] == m1["popsd_connections_accepted_total"]
    assert attempt(s, "127.0.23.1", USER, PASSWORD).startswith("+OK")
    wait_value(port, L % ("success", "USER"), 3)
    # A crashed metrics process is restarted alone; the fronts keep serving.
    pid = [p for p, r in s.children().items() if r == "metrics"][0]
    fronts = {p for p, r in s.children().items() if r == "front"}
    os.kill(pid, signal.SIGKILL)
    s.wait_log("role=metrics event=started", count=3)
    wait_value(port, L % ("success", "USER"), 3)
    assert fronts == {p for p, r in s.children().items() if r == "front"}


def test_alert_queue_bounded_drops_oldest(make_server):
    # Nothing listens at the webhook: the first event waits for its retry while the queue (1) overflows.
    port, dead = free_port(), free_port()
    s = start(make_server, "[alerts]\nwebhook_url = http://127.0.0.1:%d/\nwebhook_retries = 5\n"
                           "webhook_retry_delay = 1m\nqueue_size = 1\nevents = new_source\n\n" % dead
              + metrics_conf(port))
    wait_metrics(s, port)
    for i in range(4):
        assert attempt(s, "127.0.%d.1" % (24 + i), USER, PASSWORD).startswith("+OK")
    s.wait_log("event=new_source", count=4)
    m = wait_value(port, 'popsd_alerts_total{channel="webhook",outcome="dropped"}', 2)
    assert m["popsd_alert_queue_length"] == 2  # one waiting for its retry, one queued
    assert m["popsd_webhook_retries_total"] == 1
    s.wait_log("event=alert_dropped channel=webhook reason=queue_full")


# ---- exec hook ----

def write_hook(workdir, body):
    os.chmod(workdir, 0o777)  # the hook runs as authd's user and writes its record here
    path = os.path.join(workdir, "hook.sh")
    with open(path, "w") as f:
        f.write("#!/bin/sh\n" + body)
    os.chmod(path, 0o755)
    return path


def test_exec_hook_gets_environment_and_json(make_server, workdir):
    out = os.path.join(workdir, "hook-out")
    t = os.path.join(workdir, "tmp.$$")
    hook = write_hook(workdir, 'set -e\nenv | grep "^POPSD_\\|^PATH=" | sort > %s\necho --- >> %s\n'
                               'cat >> %s\nmv %s %s.$$\n' % (t, t, t, t, out))
    port = free_port()
    s = start(make_server, "[alerts]\nexec = %s\nexec_timeout = 5s\n\n" % hook + metrics_conf(port),
              "ban_failures = 3")
    assert attempt(s, "127.0.30.5", USER, PASSWORD).startswith("+OK")
    for i in range(3):
        attempt(s, "127.0.30.6", USER, "pw-%d" % i)
    m = wait_value(port, 'popsd_alerts_total{channel="exec",outcome="sent"}', 2)
    assert m['popsd_alerts_total{channel="exec",outcome="failed"}'] == 0
    records = {}
    for name in os.listdir(workdir):
        if name.startswith("hook-out."):
            with open(os.path.join(workdir, name)) as f:
                env, _, stdin = f.read().partition("---\n")
            env = dict(l.split("=", 1) for l in env.splitlines())
            records[env["POPSD_EVENT"]] = (env, json.loads(stdin))
    assert set(records) == {"new_source", "ban"}
    env, ev = records["new_source"]
    assert env["POPSD_USER"] == USER and env["POPSD_REMOTE"] == "127.0.30.5"
    assert ev["event"] == "new_source" and ev["user"] == USER and ev["remote"] == "127.0.30.5"
    assert env["POPSD_TIME"] == ev["time"] and env["PATH"] == "/usr/local/bin:/usr/bin:/bin"
    env, ev = records["ban"]
    assert env["POPSD_SUBJECT"] == "127.0.30.6/32" and env["POPSD_REASON"] == "brute_force"
    assert env["POPSD_USER"] == "" and ev["user"] is None
    assert env["POPSD_SECONDS"] == str(ev["seconds"]) and env["POPSD_COUNT"] == "1"
    for name in os.listdir(workdir):
        if name.startswith("hook-out"):
            with open(os.path.join(workdir, name)) as f:
                text = f.read()
            assert PASSWORD not in text and "pw-" not in text
            assert os.stat(os.path.join(workdir, name)).st_uid == pwd.getpwnam("_popsd-auth").pw_uid


def test_exec_hook_timeout_and_max_running(make_server, workdir):
    marker = os.path.join(workdir, "running")
    hook = write_hook(workdir, "echo $$ >> %s\nexec sleep 30\n" % marker)
    port = free_port()
    s = start(make_server, "[alerts]\nexec = %s\nexec_timeout = 500ms\nexec_max_running = 1\n\n" % hook
              + metrics_conf(port))
    for i in range(2):
        assert attempt(s, "127.0.%d.1" % (31 + i), USER, PASSWORD).startswith("+OK")
    s.wait_log("event=alert_exec_timeout", count=2, timeout=10)
    wait_value(port, 'popsd_alerts_total{channel="exec",outcome="failed"}', 2)
    log = s.log()
    # One at a time: the second started only after the first was killed.
    starts = [m.start() for m in re.finditer(r"event=alert_exec_started", log)]
    first_timeout = log.index("event=alert_exec_timeout")
    assert len(starts) == 2 and starts[0] < first_timeout < starts[1]
    assert "signal=9 timed_out=yes" in log
    with open(marker) as f:
        pids = [int(p) for p in f.read().split()]
    assert len(pids) == 2
    for p in pids:
        assert not os.path.exists("/proc/%d" % p) or open("/proc/%d/stat" % p).read().split()[2] == "Z"


def test_alerts_and_metrics_config_is_strict(make_server, workdir):
    bad_hook = write_hook(workdir, "exit 0\n")
    os.chmod(bad_hook, 0o775)
    cases = [
        ("[alerts]\nwebhook_url = ftp://example.com/\n", "expected an http:// or https:// URL"),
        ("[alerts]\nwebhook_url = http://example.com/a b\n", "printable ASCII without spaces"),
        ("[alerts]\nevents = ban logins\n", "'logins' is not an event"),
        ("[alerts]\nretries = 3\n", "unknown key 'retries' in [alerts]"),
        ("[alerts]\nqueue_size = 0\n", "expected an integer in 1..100000"),
        ("[alerts]\nexec = relative/hook\n", "expected an absolute path"),
        ("[alerts]\nexec = %s\n" % bad_hook, "writable by its owner only"),
        ("[metrics]\naddress = 99999\n", "expected a port 1..65535 or HOST:PORT"),
        ("[metrics]\nport = 9154\n", "unknown key 'port' in [metrics]"),
    ]
    for i, (extra, msg) in enumerate(cases):
        s = make_server(name="c%d" % i, extra_conf=extra)
        out = subprocess.run([POPSD, "-t", "-c", s.conf_path], capture_output=True, text=True, timeout=30)
        assert out.returncode != 0 and msg in out.stderr, (extra, out.stderr)
        if "owner only" not in msg:  # a whole-file check names no line
            assert re.search(r"popsd\.conf:\d+: ", out.stderr), out.stderr
    s = make_server(name="ok", extra_conf="[alerts]\nwebhook_url = https://hooks.example/x\nevents = ban, new_source\n"
                                          "\n[metrics]\naddress = 127.0.0.1:9154\n")
    out = subprocess.run([POPSD, "-n", "-c", s.conf_path], capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    assert "events = ban new_source\n" in out.stdout and "address = 127.0.0.1:9154\n" in out.stdout
