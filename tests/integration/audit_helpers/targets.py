"""Certificates, openssl s_server and Dovecot targets for the audit tests, and
parsers for the reference tools (nmap ssl-enum-ciphers, testssl.sh).

Every server binds 127.0.0.1 on a free port and is stopped by its PID; every
wait loop has a deadline.
"""
import json
import os
import shutil
import signal
import socket
import subprocess
import time
import xml.etree.ElementTree as ET

from popsd_harness import free_port  # noqa: F401 (one port picker for the whole suite)




def wait_port(port, proc=None, timeout=10.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("target exited with status %s" % proc.returncode)
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError("nothing listening on 127.0.0.1:%d" % port)


def stop_pid(proc, timeout=10):
    if proc is None or proc.poll() is not None:
        return
    os.kill(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=timeout)


def _run(*cmd, cwd=None):
    subprocess.run(cmd, check=True, capture_output=True, cwd=cwd, timeout=60)


class AuditPKI:
    """A test CA; a good server certificate (localhost, 127.0.0.1); an expired
    one; a self-signed one; one for another name. One RSA key serves all."""

    def __init__(self, d):
        self.dir = d
        p = lambda n: os.path.join(d, n)  # noqa: E731
        self.ca, self.ca_key, self.key = p("ca.pem"), p("ca.key"), p("server.key")
        _run("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", self.ca_key, "-out", self.ca,
             "-days", "3650", "-subj", "/CN=popsctl audit test CA")
        _run("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", self.key)
        self.good = self._issue("good", ["localhost", "127.0.0.1"])
        self.other_name = self._issue("other", ["mail.example.net"])
        self.expired = self._issue_dated("expired", ["localhost", "127.0.0.1"], "20200101000000Z", "20210101000000Z")
        self.self_signed = p("selfsigned.pem")
        _run("openssl", "req", "-x509", "-new", "-key", self.key, "-out", self.self_signed, "-days", "365",
             "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1")

    def _csr_ext(self, name, sans):
        csr = os.path.join(self.dir, name + ".csr")
        ext = os.path.join(self.dir, name + ".ext")
        _run("openssl", "req", "-new", "-key", self.key, "-out", csr, "-subj", "/CN=" + sans[0])
        alt = ",".join(("IP:" if s[0].isdigit() else "DNS:") + s for s in sans)
        with open(ext, "w") as f:
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" % alt)
        return csr, ext

    def _issue(self, name, sans):
        csr, ext = self._csr_ext(name, sans)
        crt = os.path.join(self.dir, name + ".pem")
        _run("openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
             "-out", crt, "-days", "365", "-extfile", ext)
        return crt

    def _issue_dated(self, name, sans, start, end):
        """`openssl ca` is the CLI that sets arbitrary validity dates."""
        csr, ext = self._csr_ext(name, sans)
        cadir = os.path.join(self.dir, "ca-" + name)
        os.makedirs(cadir)
        open(os.path.join(cadir, "index.txt"), "w").close()
        with open(os.path.join(cadir, "serial"), "w") as f:
            f.write("1000\n")
        cnf = os.path.join(cadir, "ca.cnf")
        with open(cnf, "w") as f:
            f.write("[ca]\ndefault_ca = d\n[d]\ndatabase = %s/index.txt\nnew_certs_dir = %s\nserial = %s/serial\n"
                    "default_md = sha256\npolicy = p\n[p]\ncommonName = supplied\n" % (cadir, cadir, cadir))
        crt = os.path.join(self.dir, name + ".pem")
        _run("openssl", "ca", "-batch", "-config", cnf, "-cert", self.ca, "-keyfile", self.ca_key, "-in", csr,
             "-out", crt, "-startdate", start, "-enddate", end, "-extfile", ext, "-notext")
        return crt


class SServer:
    """openssl s_server on 127.0.0.1. stdin stays an open pipe: s_server reads
    it and would end the connection (or echo bytes) on EOF or data."""

    def __init__(self, cert, key, *args):
        self.port = free_port()
        self.proc = subprocess.Popen(
            ["openssl", "s_server", "-accept", "127.0.0.1:%d" % self.port, "-cert", cert, "-key", key, "-quiet",
             *args], stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_port(self.port, self.proc)
        except Exception:
            self.stop()
            raise

    def stop(self):
        stop_pid(self.proc)
        if self.proc.stdin:
            self.proc.stdin.close()


DOVECOT_CONF = """\
# Written by tests/integration/test_audit.py; no system configuration is read.
base_dir = {d}/run
state_dir = {d}/state
log_path = {d}/dovecot.log
protocols = pop3
listen = 127.0.0.1
ssl = required
ssl_cert = <{cert}
ssl_key = <{key}
auth_failure_delay = 2 secs
mail_location = maildir:{d}/mail/%u
default_login_user = dovenull
default_internal_user = dovecot
passdb {{
  driver = static
  args = password=not-the-probe-password-{port}
}}
userdb {{
  driver = static
  args = uid=nobody gid=nogroup home={d}/mail/%u
}}
service pop3-login {{
  inet_listener pop3 {{
    port = {port}
  }}
  inet_listener pop3s {{
    port = {sport}
    ssl = yes
  }}
}}
"""


class Dovecot:
    """Debian's Dovecot as a third-party POP3 server: `dovecot -F -c CONF`."""

    def __init__(self, d, cert, key):
        self.dir = d
        self.port, self.sport = free_port(), free_port()
        for sub in ("run", "state", "mail"):
            os.makedirs(os.path.join(d, sub), exist_ok=True)
        self.conf = os.path.join(d, "dovecot.conf")
        with open(self.conf, "w") as f:
            f.write(DOVECOT_CONF.format(d=d, cert=cert, key=key, port=self.port, sport=self.sport))
        self.proc = subprocess.Popen([shutil.which("dovecot") or "/usr/sbin/dovecot", "-F", "-c", self.conf],
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT)
        try:
            wait_port(self.port, self.proc)
            wait_port(self.sport, self.proc)
        except Exception:
            self.stop()
            raise

    def log(self):
        try:
            with open(os.path.join(self.dir, "dovecot.log"), errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def stop(self):
        # The master takes its children down with it.
        stop_pid(self.proc)


# ---- reference tools ----

def nmap_ciphers(port, timeout=120):
    """{protocol: [IANA suite names]} from nmap's ssl-enum-ciphers ('+' forces
    the script on a port nmap does not know as TLS)."""
    out = subprocess.run(["nmap", "-sT", "-Pn", "-n", "-p", str(port), "--script", "+ssl-enum-ciphers", "-oX", "-",
                          "127.0.0.1"], check=True, capture_output=True, timeout=timeout).stdout
    result = {}
    root = ET.fromstring(out)
    for script in root.iter("script"):
        if script.get("id") != "ssl-enum-ciphers":
            continue
        for proto in script.findall("table"):
            names = []
            for ciphers in proto.findall("table"):
                if ciphers.get("key") != "ciphers":
                    continue
                for c in ciphers.findall("table"):
                    for e in c.findall("elem"):
                        if e.get("key") == "name":
                            # nmap spells TLS 1.3 suites TLS_AKE_WITH_*; IANA names have no AKE part.
                            names.append(e.text.replace("TLS_AKE_WITH_", "TLS_"))
            result[proto.get("key")] = names
    return result


TESTSSL_IDS = {"SSLv3": "SSLv3", "TLS1": "TLSv1.0", "TLS1_1": "TLSv1.1", "TLS1_2": "TLSv1.2", "TLS1_3": "TLSv1.3"}


def protocols_by_testssl(port, jsonfile, starttls=False, timeout=120):
    """{protocol: offered?} from `testssl -p` (protocols only: keeps it short)."""
    exe = shutil.which("testssl") or shutil.which("testssl.sh")
    cmd = [exe, "-p", "--jsonfile", jsonfile, "--connect-timeout", "5", "--openssl-timeout", "5",
           "--warnings", "batch", "--quiet", "--color", "0"]
    if starttls:
        cmd += ["--starttls", "pop3"]
    subprocess.run(cmd + ["127.0.0.1:%d" % port], capture_output=True, timeout=timeout)
    with open(jsonfile) as f:
        found = json.load(f)
    return {TESTSSL_IDS[x["id"]]: x["finding"].startswith("offered") for x in found if x["id"] in TESTSSL_IDS}
