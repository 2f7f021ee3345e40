"""Bounds on every input: line length, bad bytes, bad-command counter, timeouts, connection caps."""
import socket
import time

from conftest import PASSWORD

USER = "alice@example.com"


def test_long_line_refused_and_session_continues(server):
    r = server.raw()
    r.line()
    assert r.cmd("NOOP " + "x" * 300).startswith("-ERR")
    # An AUTH line may be longer than 255 (tokens), but not beyond the frame limit.
    assert r.cmd("AUTH PLAIN " + "A" * 9000).startswith("-ERR")
    assert r.cmd("CAPA").startswith("+OK")
    r.multiline()


def test_255_octet_command_line_accepted(server):
    r = server.raw()
    r.line()
    name = "u" * (255 - len("USER ") - 2)
    assert r.cmd("USER " + name).startswith("+OK")
    assert r.cmd("USER " + name + "u").startswith("-ERR")


def test_nul_and_bare_cr(server):
    r = server.raw()
    r.line()
    r.send(b"CA\x00PA\r\n")
    assert r.line().startswith("-ERR")
    r.send(b"NO\rOP\r\n")
    assert r.line().startswith("-ERR")
    # Bare LF line ends are tolerated (telnet-style clients).
    r.send(b"CAPA\n")
    assert r.line().startswith("+OK")
    r.multiline()


def test_bad_command_counter_disconnects(server):
    r = server.raw()
    r.line()
    for i in range(9):
        assert r.cmd("BOGUS%d" % (i % 10))[:4] == "-ERR"
    last = r.cmd("XYZZY")
    assert "too many bad commands" in last
    assert r.closed()


def test_login_timeout(make_server):
    s = make_server(extra_server="timeout_login = 2s")
    s.add_user(USER, PASSWORD)
    s.start()
    r = s.raw()
    r.line()
    t0 = time.time()
    assert r.closed(timeout=10)
    assert 1.5 < time.time() - t0 < 8
    s.wait_log("reason=idle_timeout")
    # A TLS client that never finishes its handshake is cut too.
    raw = socket.create_connection(("127.0.0.1", s.pop3s_port))
    raw.settimeout(10)
    assert raw.recv(100) == b""
    s.wait_log("reason=tls_handshake_timeout")


def test_idle_timeout_below_10_minutes_rejected(make_server):
    import subprocess
    from popsd_harness import POPSD
    s = make_server(extra_server="timeout_idle = 5m")
    r = subprocess.run([POPSD, "-t", "-c", s.conf_path], capture_output=True, text=True)
    assert r.returncode != 0
    assert "popsd.conf:" in r.stderr and "at least" in r.stderr


def test_per_source_cap(make_server):
    s = make_server(extra_server="max_connections_per_source = 3")
    s.add_user(USER, PASSWORD)
    s.start()
    held = [s.raw(tls=False) for _ in range(3)]
    for h in held:
        assert h.line().startswith("+OK")
    extra = socket.create_connection(("127.0.0.1", s.pop3_port))
    extra.settimeout(5)
    data = extra.recv(200)
    assert data.startswith(b"-ERR [SYS/TEMP]"), data
    s.wait_log("reason=max_connections_per_source")
    held[0].close()
    s.wait_log("event=disconnect")
    ok = s.raw(tls=False)
    assert ok.line().startswith("+OK"), "a slot frees when a session ends"


def test_global_cap(make_server):
    s = make_server(extra_server="max_connections = 2")
    s.add_user(USER, PASSWORD)
    s.start()
    held = [s.raw(tls=False) for _ in range(2)]
    for h in held:
        h.line()
    extra = socket.create_connection(("127.0.0.1", s.pop3_port))
    extra.settimeout(5)
    assert extra.recv(200).startswith(b"-ERR [SYS/TEMP]")
    s.wait_log("reason=max_connections")


def test_garbage_instead_of_client_hello(server):
    c = socket.create_connection(("127.0.0.1", server.pop3s_port))
    c.settimeout(5)
    c.sendall(b"USER alice\r\n" * 10)
    try:
        data = c.recv(100)
    except ConnectionResetError:
        data = b""
    assert not data.startswith(b"+OK")
    server.wait_log("event=tls_failed")
    p = server.pop3s()
    assert p.getwelcome().startswith(b"+OK"), "others are still served"


def test_slow_reader_does_not_block_others(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    s.add_user("bob@example.com", PASSWORD)
    s.deliver(USER, b"Subject: big\n\n" + (b"x" * 1023 + b"\n") * 20 * 1024)  # 20 MiB
    s.start()
    r = s.raw()
    r.login(USER, PASSWORD)
    r.send("RETR 1\r\n")  # and never read it
    time.sleep(0.5)
    t0 = time.time()
    p = s.pop3s()
    p.user("bob@example.com")
    p.pass_(PASSWORD)
    p.stat()
    p.quit()
    assert time.time() - t0 < 5
    # The front's memory stays bounded while the client does not read.
    front = [pid for pid, role in s.children().items() if role == "front"][0]
    with open("/proc/%d/status" % front) as f:
        rss_kb = int([l for l in f if l.startswith("VmRSS")][0].split()[1])
    assert rss_kb < 64 * 1024, rss_kb
