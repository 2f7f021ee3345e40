"""Real clients from Debian against the running daemon: curl and fetchmail over verified TLS,
and byte-for-byte comparison of what they download with what is on disk."""
import os
import subprocess

import pytest

from conftest import PASSWORD

USER = "alice@example.com"


def wire(data):
    """What RETR carries for a message (before dot-stuffing): CRLF line ends."""
    return data.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")


def curl(server, path, *extra):
    url = "pop3s://127.0.0.1:%d/%s" % (server.pop3s_port, path)
    r = subprocess.run(["curl", "-sS", "--cacert", server.pki.ca, "--user", "%s:%s" % (USER, PASSWORD),
                        "--connect-to", "localhost:%d:127.0.0.1:%d" % (server.pop3s_port, server.pop3s_port),
                        *extra, url.replace("127.0.0.1", "localhost")], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def test_curl_list_and_retr(server):
    listing = curl(server, "")
    lines = listing.decode().split("\r\n")
    assert lines[0].startswith("1 ") and lines[2].startswith("3 ")
    disk = server.messages(USER)
    names = sorted(disk)
    for i, name in enumerate(names, 1):
        got = curl(server, str(i))
        assert got == wire(disk[name]), "curl download %d differs from the file on disk" % i


def test_curl_starttls_required(server):
    url = "pop3://localhost:%d/" % server.pop3_port
    r = subprocess.run(["curl", "-sS", "--ssl-reqd", "--cacert", server.pki.ca, "--user", "%s:%s" % (USER, PASSWORD),
                        "--connect-to", "localhost:%d:127.0.0.1:%d" % (server.pop3_port, server.pop3_port), url],
                       capture_output=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith(b"1 ")


@pytest.mark.slow  # 50 MiB: minutes under ASan; the streaming code is the same as for small messages
def test_curl_large_message_byte_for_byte(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    # 50 MiB with bare LFs, CRLFs, dot lines and a last line without a newline.
    chunk = b"Line with LF\n.dot at start\r\n..two dots\nend of chunk\r\n" * 1000
    data = b"Subject: big\n\n" + chunk * (50 * 1024 * 1024 // len(chunk)) + b"no newline at end"
    s.deliver(USER, data)
    s.start()
    got = curl(s, "1")
    # curl strips nothing but the terminator; the final unterminated line gains the CRLF before ".".
    assert got == wire(data) + b"\r\n"


def test_fetchmail_sslcertck(server, workdir):
    out = os.path.join(workdir, "fetched")
    os.makedirs(out)
    rc = os.path.join(workdir, "fetchmailrc")
    mda = os.path.join(workdir, "mda.sh")
    with open(mda, "w") as f:
        f.write('#!/bin/sh\nn=$(ls %s | wc -l)\ncat > %s/msg.$n\n' % (out, out))
    os.chmod(mda, 0o755)
    with open(rc, "w") as f:
        f.write('poll localhost service %d protocol POP3 auth password\n'
                '  user "%s" password "%s" is "root" here\n'
                '  ssl sslcertck sslcertfile "%s" sslproto TLS1.2+\n'
                '  mda "%s" nokeep\n' % (server.pop3s_port, USER, PASSWORD, server.pki.ca, mda))
    os.chmod(rc, 0o600)
    disk = server.messages(USER)
    env = dict(os.environ, HOME=workdir, FETCHMAILHOME=workdir)
    r = subprocess.run(["fetchmail", "-f", rc, "--nosyslog", "-v", "--nodetach", "--pidfile",
                        os.path.join(workdir, "fm.pid")], capture_output=True, env=env, timeout=120)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    fetched = sorted(os.listdir(out))
    assert len(fetched) == 3
    assert server.messages(USER) == {}, "nokeep: fetchmail deleted them after QUIT"
    bodies = []
    for name in fetched:
        with open(os.path.join(out, name), "rb") as f:
            bodies.append(f.read())
    for orig in disk.values():
        body = orig.replace(b"\r\n", b"\n")
        assert any(b.endswith(body) for b in bodies), "fetchmail delivered every message intact"


def fetched_maildir(root):
    for sub in ("cur", "new", "tmp"):
        os.makedirs(os.path.join(root, sub), exist_ok=True)
    return root


def read_maildir(root):
    out = []
    for sub in ("new", "cur"):
        for n in sorted(os.listdir(os.path.join(root, sub))):
            with open(os.path.join(root, sub, n), "rb") as f:
                out.append(f.read())
    return out


def test_mpop_implicit_tls_and_starttls(server, workdir):
    disk = server.messages(USER)
    dest = fetched_maildir(os.path.join(workdir, "mpop-md"))
    common = ["mpop", "--host=localhost", "--auth=user", "--user=" + USER, "--passwordeval=echo '%s'" % PASSWORD,
              "--tls=on", "--tls-trust-file=" + server.pki.ca, "--delivery=maildir," + dest,
              "--received-header=off"]
    # STLS on the plain port first, keeping the mail...
    r = subprocess.run(common + ["--port=%d" % server.pop3_port, "--tls-starttls=on", "--keep=on",
                                 "--only-new=off"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    # ...then implicit TLS, deleting it.
    r = subprocess.run(common + ["--port=%d" % server.pop3s_port, "--tls-starttls=off", "--keep=off",
                                 "--only-new=off"], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    got = read_maildir(dest)
    assert len(got) == 6
    for orig in disk.values():
        # mpop stores with local (LF) line ends: each message, kept once and fetched again, intact.
        assert got.count(orig.replace(b"\r\n", b"\n")) == 2, "mpop stored each message intact"
    assert server.messages(USER) == {}


def test_getmail_ssl(server, workdir):
    disk = server.messages(USER)
    dest = fetched_maildir(os.path.join(workdir, "getmail-md"))
    gdir = os.path.join(workdir, "getmail")
    os.makedirs(gdir)
    rc = os.path.join(gdir, "getmailrc")
    with open(rc, "w") as f:
        f.write("[retriever]\ntype = SimplePOP3SSLRetriever\nserver = localhost\nport = %d\nusername = %s\n"
                "password = %s\nca_certs = %s\n\n[destination]\ntype = Maildir\npath = %s/\n\n"
                "user = vmail\n\n[options]\ndelete = true\nreceived = false\ndelivered_to = false\nread_all = true\n"
                % (server.pop3s_port, USER, PASSWORD, server.pki.ca, dest))
    # getmail refuses to deliver as root; it switches to the destination's "user".
    for root, dirs, files in os.walk(dest):
        os.chown(root, server.vmail.pw_uid, server.vmail.pw_gid)
    r = subprocess.run(["getmail", "--rcfile", rc, "--getmaildir", gdir], capture_output=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    got = read_maildir(dest)
    assert len(got) == 3
    # getmail adds a Return-Path header line and stores LF line ends; the rest is the message, intact.
    got = [g.split(b"\n", 1)[1] if g.startswith(b"Return-Path:") else g for g in got]
    for orig in disk.values():
        assert orig.replace(b"\r\n", b"\n") in got
    assert server.messages(USER) == {}
