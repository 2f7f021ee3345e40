"""TLS policy, checked with openssl s_client."""
import os
import signal
import socket
import ssl
import subprocess
import time

from conftest import PASSWORD
from popsd_harness import memory_tls_client

USER = "alice@example.com"


def s_client(server, *args, port=None, stdin=b"QUIT\n", timeout=15):
    # -ign_eof: keep reading after our input ends, until the server closes (after QUIT).
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % (port or server.pop3s_port), "-CAfile",
           server.pki.ca, "-verify_return_error", "-servername", "localhost", "-crlf", "-ign_eof", *args]
    r = subprocess.run(cmd, input=stdin, capture_output=True, timeout=timeout)
    return r.returncode, r.stdout.decode(errors="replace") + r.stderr.decode(errors="replace")


def test_tls13_accepted(server):
    rc, out = s_client(server, "-tls1_3")
    assert rc == 0, out
    assert "TLSv1.3" in out and "+OK" in out
    assert "Verify return code: 0 (ok)" in out


def test_tls12_aead_only(server):
    rc, out = s_client(server, "-tls1_2")
    assert rc == 0 and "ECDHE" in out
    rc, out = s_client(server, "-tls1_2", "-cipher", "ECDHE-ECDSA-AES128-SHA256:ECDHE-RSA-AES256-SHA:AES128-GCM-SHA256")
    assert rc != 0, "CBC and non-ECDHE suites are refused"


def test_tls11_and_10_refused(server):
    for v in ("-tls1_1", "-tls1"):
        rc, out = s_client(server, v, "-cipher", "DEFAULT:@SECLEVEL=0")
        assert rc != 0, out
        assert "+OK" not in out


def test_groups(server):
    rc, out = s_client(server, "-groups", "X25519")
    assert rc == 0
    rc, out = s_client(server, "-groups", "ffdhe2048")
    assert rc != 0, "finite-field groups are not offered"


def test_alpn(server):
    rc, out = s_client(server, "-alpn", "pop3")
    assert rc == 0 and "ALPN protocol: pop3" in out
    rc, out = s_client(server, "-alpn", "http/1.1,h2")
    assert rc != 0 and "+OK" not in out, "ALPACA: a client speaking another protocol is refused"
    rc, out = s_client(server, "-alpn", "h2,pop3")
    assert rc == 0


def test_no_renegotiation_no_compression(server):
    # Without -ign_eof, s_client reads "R" on its own line as "renegotiate".
    cmd = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % server.pop3s_port, "-CAfile", server.pki.ca,
           "-servername", "localhost", "-tls1_2"]
    p = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    time.sleep(1)
    p.stdin.write(b"R\n")
    p.stdin.flush()
    time.sleep(1.5)
    p.stdin.close()
    p.wait(timeout=15)
    out = p.stdout.read().decode(errors="replace")
    assert "Compression: NONE" in out
    assert "+OK POP3 server ready" in out
    assert "RENEGOTIATING" in out, "the client asked"
    assert out.count("depth=0 CN = localhost") == 1, "but no second handshake happened"


def test_starttls_with_s_client(server):
    rc, out = s_client(server, "-starttls", "pop3", port=server.pop3_port, stdin=b"CAPA\nQUIT\n")
    assert rc == 0, out
    assert "USER" in out and "SASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN" in out


def test_sni_ecdsa_and_rsa(make_server, pki):
    ec = pki.issue("sni-ec", ["localhost", "127.0.0.1"])
    rsa = pki.issue("sni-rsa", ["localhost", "127.0.0.1"], key="rsa")
    other = pki.issue("sni-other", ["mail.example.test"])
    s = make_server(certs=[ec, rsa, other])
    s.add_user(USER, PASSWORD)
    s.start()
    rc, out = s_client(s, "-tls1_2", "-sigalgs", "RSA-PSS+SHA256:RSA+SHA256")
    assert rc == 0 and "Server public key is 2048 bit" in out, out
    rc, out = s_client(s, "-tls1_3", "-sigalgs", "ECDSA+SHA256")
    assert rc == 0 and "Server public key is 256 bit" in out
    rc, out = s_client(s, "-servername", "mail.example.test", "-verify_hostname", "mail.example.test")
    assert rc == 0 and "CN = mail.example.test" in out, out
    rc, out = s_client(s, "-servername", "unknown.example.test")
    assert "CN = localhost" in out, "unknown names get the default certificate"


def test_key_file_permissions_refused(make_server, pki):
    crt, key = pki.issue("loose", ["localhost"])
    os.chmod(key, 0o640)
    s = make_server(certs=[(crt, key)])
    from popsd_harness import POPSD
    r = subprocess.run([POPSD, "-t", "-c", s.conf_path], capture_output=True, text=True)
    assert r.returncode != 0 and "group- or world-accessible" in r.stderr


def test_sighup_reloads_certificate_without_dropping_sessions(make_server, pki):
    first = pki.issue("reload1", ["localhost", "127.0.0.1"])
    s = make_server(certs=[first])
    s.add_user(USER, PASSWORD)
    s.deliver(USER, b"Subject: x\n\nbody\n")
    s.start()
    r = s.raw()
    r.login(USER, PASSWORD)
    second = pki.issue("reload2", ["localhost", "127.0.0.1", "reloaded.example.test"])
    s.certs = [second]
    s.write_conf()
    s.proc.send_signal(signal.SIGHUP)
    s.wait_log("gen=2", timeout=10)
    s.wait_log("event=draining")
    # The old session goes on.
    assert r.cmd("STAT").startswith("+OK 1")
    assert r.cmd("RETR 1").startswith("+OK")
    r.multiline()
    # New sessions get the new certificate, from the new generation's front.
    s.wait_log("role=front event=started", count=2)
    rc, out = s_client(s, "-servername", "reloaded.example.test", "-verify_hostname", "reloaded.example.test")
    assert rc == 0, out
    assert r.cmd("QUIT").startswith("+OK")



def test_mismatched_key_caught_by_config_check(make_server, pki):
    crt, _ = pki.issue("mismatch-a", ["localhost"])
    _, key = pki.issue("mismatch-b", ["localhost"])
    s = make_server(certs=[(crt, key)])
    from popsd_harness import POPSD
    r = subprocess.run([POPSD, "-t", "-c", s.conf_path], capture_output=True, text=True)
    assert r.returncode != 0 and "[certificate c0]" in r.stderr, r.stderr


def tls13_poll(server, ctx, session=None):
    """One TLS 1.3 connection: greeting, QUIT; returns (session, whether it was resumed)."""
    with socket.create_connection(("127.0.0.1", server.pop3s_port), timeout=10) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            assert s.recv(512).startswith(b"+OK")  # any ticket arrives before the greeting
            s.sendall(b"QUIT\r\n")
            assert s.recv(512).startswith(b"+OK")
            return s.session, s.session_reused


def tls13_client_ctx(server):
    ctx = ssl.create_default_context(cafile=server.pki.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    return ctx


def test_no_session_tickets_by_default(server):
    sess, reused = tls13_poll(server, tls13_client_ctx(server))
    assert not reused
    assert not sess.has_ticket, "a ticket was issued although session_tickets defaults to no"


def test_session_tickets_when_enabled(make_server):
    s = make_server(extra_conf="\n[tls]\nsession_tickets = yes\n")
    s.add_user(USER, PASSWORD)
    s.start()
    ctx = tls13_client_ctx(s)
    sess, reused = tls13_poll(s, ctx)
    assert sess.has_ticket and not reused
    sess2, reused = tls13_poll(s, ctx, session=sess)
    assert reused, "the ticket was not accepted for resumption"


def handshake_until_server_flight(server, ctx):
    """Drives a client through MemoryBIOs up to its Finished, which it never
    sends: returns (sslobj, its incoming BIO, sock)."""
    sock = socket.create_connection(("127.0.0.1", server.pop3s_port), timeout=10)
    obj, incoming, outgoing = memory_tls_client(ctx)
    sock.sendall(outgoing.read())  # ClientHello
    while True:
        data = sock.recv(65536)
        assert data, "server closed during the handshake"
        incoming.write(data)
        try:
            obj.do_handshake()
            break
        except ssl.SSLWantReadError:
            continue
    outgoing.read()  # our Finished: withheld
    return obj, incoming, sock


def test_greeting_leaves_with_the_tls13_flight(server):
    # The greeting goes out with the server's first flight (0.5-RTT data), so a
    # client has it a round trip earlier. Read it without ever sending our Finished.
    ctx = ssl.create_default_context(cafile=server.pki.ca)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    obj, incoming, sock = handshake_until_server_flight(server, ctx)
    try:
        sock.settimeout(2)
        got = b""
        while not got.endswith(b"\r\n"):
            try:
                got += obj.read(1024)
            except ssl.SSLWantReadError:
                try:
                    data = sock.recv(65536)
                except socket.timeout:
                    raise AssertionError("no greeting before the client's Finished: %r" % got)
                assert data, "server closed before sending the greeting"
                incoming.write(data)
        assert got.startswith(b"+OK"), got
    finally:
        sock.close()


def test_greeting_after_a_hello_retry_request(server):
    # The client's first key share (ffdhe2048) is not one we take: HelloRetryRequest,
    # a second ClientHello, then the real flight. The greeting must wait for that
    # flight's Finished (sent after the HRR it broke the handshake: "unexpected message").
    rc, out = s_client(server, "-tls1_3", "-groups", "ffdhe2048:X25519", "-msg", stdin=b"CAPA\nQUIT\n")
    assert out.count("ServerHello") == 2, "no HelloRetryRequest happened:\n" + out
    assert rc == 0 and "+OK POP3 server ready." in out and "+OK Capability list follows" in out, out


def test_tls12_greeting_after_the_handshake(server):
    # TLS 1.2 has no 0.5-RTT data: the greeting must still come, once the
    # handshake is done (writing it early would fail the connection).
    ctx = ssl.create_default_context(cafile=server.pki.ca)
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    with ctx.wrap_socket(socket.create_connection(("127.0.0.1", server.pop3s_port), timeout=10),
                         server_hostname="localhost") as s:
        assert s.version() == "TLSv1.2"
        f = s.makefile("rb")
        assert f.readline().startswith(b"+OK")
        s.sendall(b"QUIT\r\n")
        assert f.readline().startswith(b"+OK")
