"""PROXY protocol v2 behind a real HAProxy, and the header's edge cases from a raw socket."""
import os
import socket
import ssl
import struct
import subprocess
import time

import pytest

from conftest import PASSWORD
from popsd_harness import POPSD, free_port, memory_tls_client

USER = "alice@example.com"
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2_header(src_ip, src_port=51000, dst_ip=None, dst_port=995, command=0x21, tlvs=b""):
    """A PROXY v2 header naming a TCP client (IPv4 or IPv6)."""
    if ":" in src_ip:
        dst_ip = dst_ip or "::1"
        addrs = socket.inet_pton(socket.AF_INET6, src_ip) + socket.inet_pton(socket.AF_INET6, dst_ip)
        fam = 0x21
    else:
        dst_ip = dst_ip or "127.0.0.1"
        addrs = socket.inet_pton(socket.AF_INET, src_ip) + socket.inet_pton(socket.AF_INET, dst_ip)
        fam = 0x11
    body = addrs + struct.pack("!HH", src_port, dst_port) + tlvs
    return SIG + bytes([command, fam]) + struct.pack("!H", len(body)) + body


def balanced(make_server, trusted="127.0.0.1", extra_server="", tls="implicit"):
    """A popsd with one more listener that takes PROXY v2 headers; .proxy_port is its port."""
    port = free_port()
    s = make_server(extra_server=extra_server, extra_conf=f"""
[listener balanced]
address = 127.0.0.1:{port}
tls = {tls}
proxy_protocol = yes
proxy_trusted = {trusted}
""")
    s.proxy_port = port
    s.add_user(USER, PASSWORD)
    s.deliver(USER, b"From: bob@example.com\nSubject: one\n\nfirst message\n")
    s.start()
    return s


def assert_closed(sock):
    """The server hung up: EOF, or a reset when it left our bytes unread."""
    try:
        assert sock.recv(100) == b"", "the server answered"
    except ConnectionResetError:
        pass
    sock.close()


def tls_after(sock, s):
    return s.ctx().wrap_socket(sock, server_hostname="localhost")


def login_stat(f_sock):
    """USER/PASS/STAT/QUIT over a connected (TLS or plain-after-STLS) socket."""
    f = f_sock.makefile("rb")
    lines = []

    def cmd(t):
        f_sock.sendall(t.encode() + b"\r\n")
        lines.append(f.readline())
        return lines[-1]

    assert cmd("USER " + USER).startswith(b"+OK")
    assert cmd("PASS " + PASSWORD).startswith(b"+OK")
    assert cmd("STAT").startswith(b"+OK 1 ")
    assert cmd("QUIT").startswith(b"+OK")
    return f


@pytest.fixture
def haproxy(workdir):
    """Starts HAProxy (mode tcp) in front of a port with send-proxy-v2; returns a starter."""
    procs = []

    def start(backend_port, bind="[::1]"):
        port = free_port()
        cfg = os.path.join(workdir, "haproxy-%d.cfg" % backend_port)
        with open(cfg, "w") as f:
            f.write(f"""global
    maxconn 100
defaults
    mode tcp
    timeout connect 5s
    timeout client 30s
    timeout server 30s
frontend pop3s
    bind {bind}:{port}
    default_backend popsd
backend popsd
    server p1 127.0.0.1:{backend_port} send-proxy-v2
""")
        p = subprocess.Popen(["haproxy", "-db", "-f", cfg], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        procs.append(p)
        host = bind.strip("[]")
        deadline = time.time() + 10
        while time.time() < deadline:
            assert p.poll() is None, "haproxy exited: %s" % p.stderr.read().decode(errors="replace")
            try:
                socket.create_connection((host, port), timeout=1).close()
                return host, port
            except OSError:
                time.sleep(0.05)
        raise AssertionError("haproxy did not start listening")

    yield start
    for p in procs:
        p.terminate()
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def test_haproxy_passes_the_client_address(make_server, haproxy):
    # The client reaches HAProxy over ::1, HAProxy reaches popsd from 127.0.0.1:
    # the session, its login and its defence accounting see ::1.
    s = balanced(make_server)
    host, port = haproxy(s.proxy_port)
    with tls_after(socket.create_connection((host, port), timeout=10), s) as t:
        f = t.makefile("rb")
        assert f.readline().startswith(b"+OK")
        login_stat(t)
    s.wait_log("event=proxy sid=")
    log = s.log()
    assert "remote=::1 balancer=127.0.0.1 command=proxy" in log
    assert "event=login" in log and 'user="alice@example.com" mech=USER remote=::1' in log
    import poplib
    ctx = s.ctx()
    ctx.check_hostname = False  # the certificate names localhost and 127.0.0.1, poplib checks "::1"
    p = poplib.POP3_SSL(host, port, context=ctx, timeout=10)
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    p.quit()


def test_haproxy_in_front_of_a_starttls_listener(make_server, haproxy):
    s = balanced(make_server, tls="starttls")
    host, port = haproxy(s.proxy_port)
    import poplib
    p = poplib.POP3(host, port, timeout=10)
    assert p.getwelcome().startswith(b"+OK")
    ctx = s.ctx()
    ctx.check_hostname = False  # the certificate names localhost and 127.0.0.1, poplib checks "::1"
    p.stls(context=ctx)
    p.user(USER)
    p.pass_(PASSWORD)
    assert p.stat()[0] == 1
    p.quit()
    s.wait_log("remote=::1 balancer=127.0.0.1 command=proxy")


def test_untrusted_peer_refused_at_connect(make_server):
    s = balanced(make_server, trusted="192.0.2.1 10.0.0.0/8")
    c = socket.create_connection(("127.0.0.1", s.proxy_port), timeout=10)
    c.sendall(v2_header("198.51.100.9"))
    assert_closed(c)  # an unlisted peer is not served, header or not
    s.wait_log("reason=proxy_untrusted")
    assert "198.51.100.9" not in s.log()


def test_bad_headers_refused(make_server):
    s = balanced(make_server)
    cases = [
        (b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03", "no PROXY protocol v2 header"),  # TLS straight away
        (b"PROXY TCP4 192.0.2.7 127.0.0.1 51000 995\r\n", "send-proxy-v2"),
        (SIG + b"\x21\x11\xff\xff", "too long"),
        (SIG + b"\x21\x11\x00\x10" + bytes(12) + b"\x02\x00\x09\x00", "malformed PROXY TLV"),
    ]
    for data, why in cases:
        c = socket.create_connection(("127.0.0.1", s.proxy_port), timeout=10)
        c.sendall(data)
        assert_closed(c)
        s.wait_log(why)
    assert s.log().count("event=proxy_header_invalid") == len(cases)
    assert "event=proxy sid=" not in s.log()


def test_header_in_pieces_then_clienthello_in_the_same_segment(make_server):
    # The header split over three writes, then its tail and the ClientHello in one
    # write: popsd must read exactly the header and leave the rest to TLS.
    s = balanced(make_server)
    hdr = v2_header("2001:db8::7", tlvs=b"\x04\x00\x03abc")
    c = socket.create_connection(("127.0.0.1", s.proxy_port), timeout=10)
    c.sendall(hdr[:5])
    time.sleep(0.2)
    c.sendall(hdr[5:20])
    time.sleep(0.2)
    obj, incoming, outgoing = memory_tls_client(s.ctx())
    c.sendall(hdr[20:] + outgoing.read())
    got = b""
    while not got.endswith(b"\r\n"):
        try:
            got += obj.read(1024)
        except ssl.SSLWantReadError:
            try:
                obj.do_handshake()
            except ssl.SSLWantReadError:
                pass
            out = outgoing.read()
            if out:
                c.sendall(out)
            data = c.recv(65536)
            assert data, "closed: " + s.log()[-2000:]
            incoming.write(data)
    assert got.startswith(b"+OK")
    c.close()
    s.wait_log("remote=2001:db8::7 balancer=127.0.0.1 command=proxy")


def test_local_command_keeps_the_balancer_address(make_server):
    s = balanced(make_server)
    c = socket.create_connection(("127.0.0.1", s.proxy_port), timeout=10)
    c.sendall(SIG + b"\x20\x00\x00\x00")  # LOCAL, as in a health check
    with tls_after(c, s) as t:
        f = t.makefile("rb")
        assert f.readline().startswith(b"+OK")
        t.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"+OK")
    s.wait_log("remote=127.0.0.1 balancer=127.0.0.1 command=local")


def test_per_source_limit_counts_the_named_client(make_server):
    # Behind a balancer every connection comes from it; the limit must apply to
    # the clients the headers name, not to the balancer.
    s = balanced(make_server, extra_server="max_connections_per_source = 2")
    held = []
    for _ in range(2):
        c = socket.create_connection(("127.0.0.1", s.proxy_port), timeout=10)
        c.sendall(v2_header("192.0.2.7"))
        t = tls_after(c, s)
        assert t.makefile("rb").readline().startswith(b"+OK")
        held.append(t)
    c = socket.create_connection(("127.0.0.1", s.proxy_port), timeout=10)
    c.sendall(v2_header("192.0.2.7"))
    with pytest.raises((ssl.SSLError, OSError)):
        tls_after(c, s).recv(100)
    s.wait_log("remote=192.0.2.7 reason=max_connections_per_source")
    other = socket.create_connection(("127.0.0.1", s.proxy_port), timeout=10)
    other.sendall(v2_header("192.0.2.8"))
    with tls_after(other, s) as t:
        assert t.makefile("rb").readline().startswith(b"+OK")
    for t in held:
        t.close()


def test_config_requires_trusted_balancers(make_server):
    s = make_server(extra_conf="\n[listener balanced]\naddress = 127.0.0.1:%d\nproxy_protocol = yes\n" % free_port())
    r = subprocess.run([POPSD, "-t", "-c", s.conf_path], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "proxy_protocol = yes needs proxy_trusted" in r.stderr + r.stdout
    s2 = make_server(name="s2", extra_conf="\n[listener balanced]\naddress = 127.0.0.1:%d\nproxy_protocol = yes\n"
                     "proxy_trusted = 10.0.0.0/33\n" % free_port())
    r = subprocess.run([POPSD, "-t", "-c", s2.conf_path], capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "not an address or a network" in r.stderr + r.stdout



def test_per_source_limit_on_a_starttls_listener_says_why(make_server):
    # On a STLS listener the refusal is said in clear, as at accept without a balancer.
    s = balanced(make_server, tls="starttls", extra_server="max_connections_per_source = 1")
    first = socket.create_connection(("127.0.0.1", s.proxy_port), timeout=10)
    first.sendall(v2_header("192.0.2.7"))
    assert first.makefile("rb").readline().startswith(b"+OK")
    second = socket.create_connection(("127.0.0.1", s.proxy_port), timeout=10)
    second.sendall(v2_header("192.0.2.7"))
    f = second.makefile("rb")
    assert f.readline() == b"-ERR [SYS/TEMP] Too many connections; try again later.\r\n"
    assert f.readline() == b""
    s.wait_log("remote=192.0.2.7 reason=max_connections_per_source")
    first.close()
    second.close()
