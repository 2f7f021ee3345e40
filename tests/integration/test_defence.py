"""The defence engine against the running daemon. Distinct loopback source addresses
(127.0.x.y) play the attackers and the real user. Every loop is bounded."""
import math
import os
import re
import signal
import subprocess
import time

import pytest

from conftest import PASSWORD

USER = "alice@example.com"
# Small delays so the suite stays fast; the growth and caps are what is checked.
FAST = """auth_fail_delay = 40ms
max_auth_attempts = 3"""


def attempt(server, source, user, password):
    """One USER/PASS attempt on a fresh connection. Returns (reply, seconds it took)."""
    r = server.raw(source=source)
    r.line()
    r.cmd("USER " + user)
    t0 = time.time()
    reply = r.cmd("PASS " + password)
    dt = time.time() - t0
    r.close()
    return reply, dt


def failures_logged(server, remote):
    return [int(m) for m in re.findall(r"event=auth_failure .*remote=%s .*delay_ms=(\d+)" % re.escape(remote),
                                       server.log())]


@pytest.fixture
def defended(make_server):
    def make(defence="", **kw):
        s = make_server(extra_server=FAST, extra_defence="delay_max = 320ms\n" + defence, **kw)
        s.add_user(USER, PASSWORD)
        s.add_user("bob@example.com", PASSWORD)
        s.start()
        return s
    return make


def test_brute_force_slowed_then_banned(defended):
    s = defended("ban_failures = 8\nban_prefix_failures = 1000\nban_time = 30s")
    for i in range(12):
        reply, _ = attempt(s, "127.0.0.2", USER, "guess-%d" % i)
        assert reply == "-ERR [AUTH] Authentication failed."
    delays = failures_logged(s, "127.0.0.2")
    # 40, 80, 160, 320, 320, ... ms, each within the +-25% jitter.
    # Refused attempts after the ban get the longest delay.
    expect = [min(40 * 2 ** i, 320) for i in range(8)] + [320] * 4
    assert len(delays) == 12, delays
    for got, want in zip(delays, expect):
        assert 0.75 * want <= got <= 1.25 * want + 1, (delays, expect)
    s.wait_log("event=ban subject=127.0.0.2/32 remote=127.0.0.2 reason=brute_force")
    # Banned: even the right password is refused, without a password check.
    reply, _ = attempt(s, "127.0.0.2", USER, PASSWORD)
    assert reply.startswith("-ERR [AUTH]")
    s.wait_log("event=auth_refused")
    assert "127.0.0.2/32" in s.ctl("bans").stdout
    # Others are not affected.
    reply, _ = attempt(s, "127.0.0.3", USER, PASSWORD)
    assert reply.startswith("+OK")
    # popsctl lifts it.
    assert s.ctl("unban", "127.0.0.2/32").returncode == 0
    reply, _ = attempt(s, "127.0.0.2", USER, PASSWORD)
    assert reply.startswith("+OK")


def test_ban_expires_and_repeat_offender_gets_longer(defended):
    s = defended("ban_failures = 3\nban_prefix_failures = 1000\nban_time = 2s\nban_time_max = 8s")
    for i in range(3):
        attempt(s, "127.0.0.4", USER, "x%d" % i)
    s.wait_log("subject=127.0.0.4/32 remote=127.0.0.4 reason=brute_force seconds=2 level=1")
    assert attempt(s, "127.0.0.4", USER, PASSWORD)[0].startswith("-ERR")
    time.sleep(2.3)
    assert attempt(s, "127.0.0.4", USER, PASSWORD)[0].startswith("+OK"), "the ban expired"
    for i in range(3):
        attempt(s, "127.0.0.4", USER, "y%d" % i)
    s.wait_log("subject=127.0.0.4/32 remote=127.0.0.4 reason=brute_force seconds=4 level=2")


def test_real_user_from_known_source_survives_account_attack(defended):
    s = defended("ban_failures = 1000\nban_prefix_failures = 1000\naccount_lock_failures = 12\n"
                 "spray_password_accounts = 1000")
    # The real user has logged in from 127.0.1.1 before: a known device.
    assert attempt(s, "127.0.1.1", USER, PASSWORD)[0].startswith("+OK")
    s.wait_log("event=new_source user=\"alice@example.com\" remote=127.0.1.1")
    # A distributed attack on the account, from many unknown sources.
    for i in range(14):
        attempt(s, "127.0.2.%d" % (i + 1), USER, "attack-%d" % i)
    s.wait_log("event=account_locked user=\"alice@example.com\"")
    # Locked for unknown sources, even with the right password...
    assert attempt(s, "127.0.5.5", USER, PASSWORD)[0].startswith("-ERR [AUTH]")
    # ...but the real user's known device gets in.
    assert attempt(s, "127.0.1.1", USER, PASSWORD)[0].startswith("+OK")
    assert USER in s.ctl("locks").stdout
    events = s.ctl("events", USER).stdout
    assert "account_locked" in events and "success" in events and "127.0.1.1" in events
    assert s.ctl("unlock", USER).returncode == 0
    assert attempt(s, "127.0.5.5", USER, PASSWORD)[0].startswith("+OK")


def test_spraying_one_source_many_accounts(defended):
    s = defended("ban_failures = 1000\nban_prefix_failures = 1000\nspray_accounts = 5")
    for i in range(50):
        reply, _ = attempt(s, "127.0.3.1", "user%d@example.com" % i, "Summer2026!")
        assert reply.startswith("-ERR")
        if i >= 6:
            break  # banned from the 5th account on; the rest would only be refused
    s.wait_log("event=spraying remote=127.0.3.1 accounts=5")
    s.wait_log("subject=127.0.3.1/32 remote=127.0.3.1 reason=spraying")


def test_distributed_same_password(defended):
    s = defended("ban_failures = 1000\nban_prefix_failures = 1000\nspray_password_accounts = 10\n"
                 "spray_accounts = 1000")
    for i in range(12):
        attempt(s, "127.0.4.%d" % (i + 1), "victim%d@example.com" % i, "Winter2026!")
    s.wait_log("event=distributed_spraying")
    assert re.search(r"event=ban subject=127\.0\.4\.\d+/32 .*reason=distributed_spraying", s.log())
    assert "Winter2026" not in s.log(), "only keyed fingerprints, never the password"


def test_stale_password_polling_client_not_banned(defended):
    s = defended("ban_failures = 5\nban_prefix_failures = 1000")
    for i in range(15):
        reply, _ = attempt(s, "127.0.6.1", USER, "the-old-password")
        assert reply.startswith("-ERR [AUTH]")
    assert "remote=127.0.6.1 reason=brute_force" not in s.log()
    assert s.log().count("event=auth_failure_repeat") >= 14
    assert attempt(s, "127.0.6.1", USER, PASSWORD)[0].startswith("+OK"), "after a password update it works"


def test_tables_stay_within_caps_under_flood(defended):
    s = defended("table_size = 64\nban_failures = 1000\nban_prefix_failures = 1000\nspray_password_accounts = 1000"
                 "\naccount_lock_failures = 100000")
    for i in range(300):
        attempt(s, "127.%d.%d.%d" % (10 + i // 250, (i * 7) % 250 + 1, i % 250 + 1), "u%d@example.com" % i, "p%d" % i)
    stats = s.ctl("guard-stats").stdout.split("\n")[1:]
    seen = {}
    for line in stats:
        if line.strip():
            name, count, cap, nbytes, evictions = line.split()
            seen[name] = (int(count), int(cap), int(nbytes), int(evictions))
            assert int(count) <= int(cap), line
    assert seen["fail_source"][0] == 64 and seen["fail_source"][3] > 0, "full, and evicting"


def test_trusted_network_exempt(defended):
    s = defended("ban_failures = 3\nban_prefix_failures = 1000\ntrusted_networks = 127.0.7.0/24")
    for i in range(6):
        attempt(s, "127.0.7.7", USER, "bad%d" % i)
    assert "remote=127.0.7.7 reason=brute_force" not in s.log()
    assert attempt(s, "127.0.7.7", USER, PASSWORD)[0].startswith("+OK")


def test_state_survives_authd_restart(defended, workdir):
    state = os.path.join(workdir, "defence.state")
    s = defended("ban_failures = 3\nban_prefix_failures = 1000\nban_time = 1h\nstate_file = %s" % state)
    os.chmod(workdir, 0o777)  # authd (_popsd-auth) writes the state file beside the test's files
    for i in range(3):
        attempt(s, "127.0.8.1", USER, "z%d" % i)
    s.wait_log("subject=127.0.8.1/32")
    deadline = time.time() + 5
    while not os.path.exists(state) and time.time() < deadline:
        time.sleep(0.1)
    assert os.path.exists(state)
    assert oct(os.stat(state).st_mode & 0o777) == "0o600"
    authd = [p for p, r in s.children().items() if r == "authd"][0]
    os.kill(authd, signal.SIGKILL)
    s.wait_log("event=state_loaded", timeout=15)
    s.wait_log("role=front event=started", count=2, timeout=15)
    assert attempt(s, "127.0.8.1", USER, PASSWORD)[0].startswith("-ERR"), "still banned after the restart"
    assert "127.0.8.1/32" in s.ctl("bans").stdout


def mann_whitney_p(a, b):
    """Two-sided Mann-Whitney U test, normal approximation (no SciPy on the test machine)."""
    allv = sorted([(v, 0) for v in a] + [(v, 1) for v in b])
    ranks = {}
    i = 0
    while i < len(allv):
        j = i
        while j < len(allv) and allv[j][0] == allv[i][0]:
            j += 1
        for k in range(i, j):
            ranks.setdefault(k, (i + j + 1) / 2)
        i = j
    ra = sum(ranks[k] for k, (v, g) in enumerate(allv) if g == 0)
    n1, n2 = len(a), len(b)
    u = ra - n1 * (n1 + 1) / 2
    mu, sigma = n1 * n2 / 2, math.sqrt(n1 * n2 * (n1 + n2 + 1) / 12)
    z = abs(u - mu) / sigma
    return math.erfc(z / math.sqrt(2))


def test_unknown_user_indistinguishable_from_wrong_password(make_server):
    s = make_server(extra_server="auth_fail_delay = 30ms\nmax_auth_attempts = 100",
                    extra_defence="trusted_networks = 127.0.9.0/24\ndelay_max = 30ms")
    s.add_user(USER, PASSWORD)
    s.start()
    known, unknown, replies = [], [], set()
    r = s.raw(source="127.0.9.1")
    r.line()
    for i in range(40):
        for user, bucket in ((USER, known), ("nobody%d@example.com" % i, unknown)):
            r.cmd("USER " + user)
            t0 = time.perf_counter()
            replies.add(r.cmd("PASS wrong-%d" % i))
            bucket.append(time.perf_counter() - t0)
    assert replies == {"-ERR [AUTH] Authentication failed."}
    p = mann_whitney_p(known, unknown)
    assert p > 0.001, "timing tells unknown users apart (p=%g, medians %.4f vs %.4f)" % (
        p, sorted(known)[20], sorted(unknown)[20])
    lines = [re.sub(r'user="[^"]*"|sid=\S+|attempt=\d+|delay_ms=\d+|^\S+ popsd\[\d+\]', "", l)
             for l in s.log().splitlines() if "event=auth_failure " in l]
    assert len(set(lines)) == 1, "the log line has the same shape for both"


FILTER = os.path.join(os.path.dirname(__file__), "..", "..", "packaging", "fail2ban", "filter.d", "popsd.conf")


def test_fail2ban_filter_matches_failures_only(defended):
    s = defended("ban_failures = 4\nban_prefix_failures = 1000")
    for i in range(6):
        attempt(s, "127.0.10.1", USER, "f2b-%d" % i)
    attempt(s, "127.0.10.2", USER, PASSWORD)
    r = s.raw(tls=False, source="127.0.10.3")
    r.line()
    r.send("STLS\r\nCAPA\r\n")
    r.line()
    s.wait_log("event=stls_injection")
    s.stop()
    log = s.log()
    want = len([l for l in log.splitlines()
                if "event=auth_failure " in l or "event=auth_refused" in l or "event=stls_injection" in l])
    out = subprocess.run(["fail2ban-regex", "-v", s.log_path, FILTER], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    m = re.search(r"Lines: (\d+) lines, \d+ ignored, (\d+) matched", out.stdout)
    assert m, out.stdout
    assert int(m.group(2)) == want, out.stdout
    matched_hosts = set(re.findall(r"^\|\s+(\d+\.\d+\.\d+\.\d+)\s", out.stdout, re.M))
    # The attacker and the injector; never the user who logged in.
    assert matched_hosts == {"127.0.10.1", "127.0.10.3"}, out.stdout
