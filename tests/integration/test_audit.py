"""popsctl audit against targets the tests start on 127.0.0.1: openssl s_server
(strong, weak, expired, self-signed, wrong name), a toy POP3 server (with and
without the classic STLS mistakes), Dovecot from Debian, and popsd itself; and
the same targets through nmap's ssl-enum-ciphers and testssl.sh, which must
agree on protocols and suites.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile

import pytest

from audit_helpers.targets import AuditPKI, Dovecot, SServer, free_port, nmap_ciphers, protocols_by_testssl
from audit_helpers.toypop3 import ToyPop3

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("POPSD_BUILD", os.path.join(REPO, "build"))
POPSCTL = os.environ.get("POPSCTL", os.path.join(BUILD, "popsctl"))

pytestmark = pytest.mark.skipif(not os.access(POPSCTL, os.X_OK), reason="popsctl is not built")

GRADES = ["F", "E", "D", "C", "B", "A-", "A", "A+"]

STRONG = ["-min_protocol", "TLSv1.2", "-cipher", "ECDHE+AESGCM:ECDHE+CHACHA20",
          "-ciphersuites", "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"]
# TLS 1.0-1.2 with CBC suites and static RSA key exchange, at security level 0.
WEAK = ["-min_protocol", "TLSv1", "-max_protocol", "TLSv1.2",
        "-cipher", "AES128-SHA:AES256-SHA:ECDHE-RSA-AES128-SHA:DHE-RSA-AES256-SHA:@SECLEVEL=0"]


def audit(*args, timeout=150):
    return subprocess.run([POPSCTL, "audit", *args], capture_output=True, timeout=timeout)


def audit_json(*args):
    p = audit(*args, "--json")
    assert p.returncode in (0, 1), p.stderr.decode()
    return p.returncode, json.loads(p.stdout)


def finding(report, fid):
    for f in report["findings"]:
        if f["id"] == fid:
            return f
    raise AssertionError("no finding %s in %s" % (fid, [f["id"] for f in report["findings"]]))


def accepted(report):
    return {p["name"] for p in report["protocols"] if p["accepted"]}


def suites(report):
    return {p["name"]: sorted(c["name"] for c in p["ciphers"]) for p in report["protocols"] if p["accepted"]}


def grade_at_least(report, g):
    return GRADES.index(report["grade"]) >= GRADES.index(g)


@pytest.fixture(scope="module")
def apki():
    d = tempfile.mkdtemp(prefix="popsctl-audit-")
    os.chmod(d, 0o755)
    yield AuditPKI(d)
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="module")
def strong(apki):
    s = SServer(apki.good, apki.key, *STRONG)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def weak(apki):
    s = SServer(apki.good, apki.key, *WEAK)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def dovecot(apki):
    if shutil.which("dovecot") is None and not os.path.exists("/usr/sbin/dovecot"):
        pytest.skip("dovecot-pop3d is not installed")
    d = tempfile.mkdtemp(prefix="popsctl-dovecot-")
    os.chmod(d, 0o755)
    dv = Dovecot(d, apki.good, apki.key)
    yield dv
    dv.stop()
    shutil.rmtree(d, ignore_errors=True)


def tls_args(apki, port, *extra):
    # HOST is the address (the targets listen on 127.0.0.1 only); the name is checked through SNI.
    return ["127.0.0.1", "--port", str(port), "--sni", "localhost", "--ca", apki.ca, "--timeout", "2", *extra]


# ---- command line ----

@pytest.mark.parametrize("args", [
    [], ["--port", "0", "h"], ["--port", "70000", "h"], ["--port", "1x", "h"], ["h", "--min-grade", "Z"],
    ["h", "--timeout", "soon"], ["h", "--bogus"], ["h", "other"], ["h", "--sni"], ["h", "--ca", "/nonexistent"],
])
def test_usage_errors_exit_2(args):
    p = audit(*args)
    assert p.returncode == 2, p
    assert p.stdout == b""


def test_unreachable_exits_3():
    p = audit("127.0.0.1", "--port", str(free_port()), "--timeout", "2")
    assert p.returncode == 3
    assert b"cannot reach" in p.stderr and p.stdout == b""
    p = audit("[::1]", "--port", str(free_port()), "--timeout", "2")
    assert p.returncode == 3


# ---- openssl s_server targets ----

def test_strong_target_grades_a(apki, strong):
    rc, r = audit_json(*tls_args(apki, strong.port, "--min-grade", "A"))
    assert rc == 0 and grade_at_least(r, "A"), r["grade_rule"]
    assert accepted(r) == {"TLSv1.2", "TLSv1.3"}
    for p in r["protocols"]:
        for c in p["ciphers"]:
            assert c["forward_secrecy"] and c["aead"], c
    for fid in ("protocol.tls1_0", "protocol.tls1_1", "protocol.sslv3", "cert.chain", "cert.name", "cert.expiry",
                "cert.key", "cert.signature", "tls.renegotiation", "tls.compression", "ciphers.forward_secrecy"):
        assert finding(r, fid)["status"] == "PASS", finding(r, fid)
    assert r["certificate"]["trusted"] and r["certificate"]["days_left"] > 300
    assert {g["name"] for g in r["groups"]} >= {"x25519", "secp256r1"}
    assert r["connections"] <= 400


def test_human_report_without_colour_on_a_pipe(apki, strong):
    p = audit(*tls_args(apki, strong.port))
    assert p.returncode == 0
    out = p.stdout.decode()
    assert "\x1b[" not in out
    for needle in ("Protocols", "Cipher suites", "Certificate", "Findings", "Grade A"):
        assert needle in out
    assert p.stderr == b""


def test_weak_target_fails_protocols_and_ciphers(apki, weak):
    rc, r = audit_json(*tls_args(apki, weak.port, "--min-grade", "B"))
    assert rc == 1
    assert not grade_at_least(r, "B"), r["grade"]
    assert accepted(r) == {"TLSv1.0", "TLSv1.1", "TLSv1.2"}
    assert finding(r, "protocol.tls1_0")["status"] == "FAIL"
    assert finding(r, "protocol.tls1_1")["status"] == "FAIL"
    assert finding(r, "protocol.tls1_3")["status"] == "WARN"
    assert finding(r, "ciphers.forward_secrecy")["status"] == "FAIL"
    assert "TLS_RSA_WITH_AES_128_CBC_SHA" in finding(r, "ciphers.forward_secrecy")["detail"]
    assert finding(r, "ciphers.cbc")["status"] == "WARN"
    assert finding(r, "ciphers.aead")["status"] == "FAIL"
    assert all(f["fix"] for f in r["findings"] if f["status"] in ("WARN", "FAIL"))


@pytest.mark.parametrize("which,fid,needle", [
    ("expired", "cert.expiry", "expired"),
    ("self_signed", "cert.chain", "self-signed"),
    ("other_name", "cert.name", "does not match localhost"),
])
def test_certificate_problems_fail(apki, which, fid, needle):
    s = SServer(getattr(apki, which), apki.key, *STRONG)
    try:
        rc, r = audit_json(*tls_args(apki, s.port, "--min-grade", "C"))
    finally:
        s.stop()
    f = finding(r, fid)
    assert f["status"] == "FAIL" and needle in f["detail"], f
    assert r["grade"] == "F" and rc == 1
    assert fid in r["grade_rule"]


@pytest.mark.slow  # external scanners: agreement, not memory safety; skipped in the sanitizer run
@pytest.mark.parametrize("target", ["strong", "weak"])
def test_nmap_agrees_on_protocols_and_suites(apki, request, target):
    if shutil.which("nmap") is None:
        pytest.skip("nmap is not installed")
    s = request.getfixturevalue(target)
    _, r = audit_json(*tls_args(apki, s.port))
    theirs = {k: sorted(v) for k, v in nmap_ciphers(s.port).items()}
    assert suites(r) == theirs


@pytest.mark.slow  # external scanners: agreement, not memory safety; skipped in the sanitizer run
def test_testssl_agrees_on_protocols(apki, weak, tmp_path):
    if shutil.which("testssl") is None and shutil.which("testssl.sh") is None:
        pytest.skip("testssl.sh is not installed")
    _, r = audit_json(*tls_args(apki, weak.port))
    theirs = protocols_by_testssl(weak.port, str(tmp_path / "testssl.json"))
    ours = {p["name"]: p["accepted"] for p in r["protocols"]}
    assert set(theirs) == set(ours)
    assert theirs == ours


# ---- POP3: a toy with the classic mistakes, and one without ----

def test_toy_cleartext_login_and_stls_injection_flagged(apki):
    toy = ToyPop3(apki.good, apki.key, vulnerable=True).start()
    try:
        rc, r = audit_json(*tls_args(apki, toy.port, "--starttls", "--probe-auth", "bob", "--min-grade", "F"))
    finally:
        toy.stop()
    assert rc == 0  # F >= F
    p = r["pop3"]
    assert p["stls_offered"] and p["user_before_tls"] and p["user_accepted_before_tls"]
    assert p["sasl_cleartext_before_tls"] == "PLAIN"
    assert p["stls_injection"] == "vulnerable"
    assert finding(r, "pop3.cleartext_auth")["status"] == "FAIL"
    assert finding(r, "pop3.stls_injection")["status"] == "FAIL"
    assert finding(r, "pop3.apop")["status"] == "WARN"
    assert finding(r, "pop3.version")["status"] == "WARN"
    assert r["grade"] == "F" and "pop3.stls_injection" in r["grade_rule"]
    # No delay, no disconnect: the auth probe must say so.
    a = r["auth_probe"]
    assert len(a["attempts"]) == 4 and not a["throttled"]
    assert finding(r, "auth.throttling")["status"] == "WARN"


def test_toy_done_right_passes_pop3_checks(apki):
    toy = ToyPop3(apki.good, apki.key, vulnerable=False, fail_delay=0.6).start()
    try:
        rc, r = audit_json(*tls_args(apki, toy.port, "--starttls", "--probe-auth", "bob"))
    finally:
        toy.stop()
    assert r["pop3"]["stls_injection"] == "refused"
    for fid in ("pop3.stls", "pop3.cleartext_auth", "pop3.stls_injection", "pop3.apop", "pop3.version",
                "auth.throttling"):
        assert finding(r, fid)["status"] == "PASS", finding(r, fid)
    assert all(a["delay_ms"] >= 500 for a in r["auth_probe"]["attempts"])
    assert "USER" in r["pop3"]["capa_after_tls"] and "USER" not in r["pop3"]["capa_before_tls"]


# ---- Dovecot, a real third-party server ----

def plain_capa(port):
    """CAPA before TLS, read by hand, to check what the audit reports."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        f = s.makefile("rwb")
        f.readline()
        f.write(b"CAPA\r\n")
        f.flush()
        lines = []
        for _ in range(64):
            line = f.readline().rstrip(b"\r\n").decode()
            if line == ".":
                break
            lines.append(line)
        f.write(b"QUIT\r\n")
        f.flush()
        return lines[1:]


def test_dovecot_starttls(apki, dovecot):
    rc, r = audit_json(*tls_args(apki, dovecot.port, "--starttls", "--timeout", "3", "--probe-auth", "alice"))
    assert accepted(r) == {"TLSv1.2", "TLSv1.3"}, dovecot.log()[-2000:]
    assert r["certificate"]["trusted"] and r["certificate"]["name_match"]
    assert r["pop3"]["stls_offered"]
    assert r["pop3"]["stls_injection"] in ("refused", "ignored")
    assert finding(r, "pop3.stls_injection")["status"] == "PASS"
    # Dovecot treats a client whose address equals the server's (loopback) as
    # secured, so it offers USER before TLS here; the audit must report what
    # the server actually sent.
    assert r["pop3"]["capa_before_tls"] == plain_capa(dovecot.port)
    assert r["pop3"]["user_before_tls"] == ("USER" in plain_capa(dovecot.port))
    # auth_failure_delay = 2 secs: the probe must see failures slowed down.
    assert finding(r, "auth.throttling")["status"] == "PASS", r["auth_probe"]
    assert r["grade"] != "F", r["grade_rule"]


@pytest.mark.slow  # external scanners: agreement, not memory safety; skipped in the sanitizer run
def test_dovecot_implicit_tls_agrees_with_nmap(apki, dovecot):
    _, r = audit_json(*tls_args(apki, dovecot.sport))
    assert accepted(r) == {"TLSv1.2", "TLSv1.3"}
    assert r["pop3"]["greeting"].startswith("+OK")
    if shutil.which("nmap") is None:
        pytest.skip("nmap is not installed")
    assert suites(r) == {k: sorted(v) for k, v in nmap_ciphers(dovecot.sport).items()}


@pytest.mark.slow  # external scanners: agreement, not memory safety; skipped in the sanitizer run
def test_dovecot_starttls_agrees_with_testssl(apki, dovecot, tmp_path):
    if shutil.which("testssl") is None and shutil.which("testssl.sh") is None:
        pytest.skip("testssl.sh is not installed")
    _, r = audit_json(*tls_args(apki, dovecot.port, "--starttls"))
    theirs = protocols_by_testssl(dovecot.port, str(tmp_path / "testssl.json"), starttls=True)
    assert theirs == {p["name"]: p["accepted"] for p in r["protocols"]}


# ---- popsd itself ----

@pytest.mark.skipif(not os.access(os.path.join(BUILD, "popsd"), os.X_OK), reason="popsd is not built")
def test_popsd_grades_a_or_better(server):
    ca = server.pki.ca
    rc, r = audit_json("127.0.0.1", "--port", str(server.pop3s_port), "--sni", "localhost", "--ca", ca,
                       "--timeout", "3", "--min-grade", "A")
    assert rc == 0 and grade_at_least(r, "A"), (r["grade"], r["grade_rule"])
    _, r = audit_json("127.0.0.1", "--port", str(server.pop3_port), "--starttls", "--sni", "localhost", "--ca", ca,
                      "--timeout", "3")
    assert finding(r, "pop3.stls_injection")["status"] == "PASS"
    assert finding(r, "pop3.cleartext_auth")["status"] == "PASS"
