"""Starts a real popsd on loopback with its own CA, certificates, users and Maildirs.

Every server a test starts is stopped by its PID; ports are free loopback ports.
"""
import grp
import os
import pwd
import random
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = os.environ.get("POPSD_BUILD", os.path.join(REPO, "build"))
POPSD = os.path.join(BUILD, "popsd")
POPSCTL = os.path.join(BUILD, "popsctl")
# Cheap Argon2 for tests; the production default is 64 MiB.
TEST_ARGON2_KIB = 1024


_ports_given = set()


def free_port():
    """A free loopback port below the kernel's ephemeral range, never the same twice in a run. A
    port the kernel picked (bind to 0) could be taken by some outgoing connection's ephemeral port
    before the daemon binds it ("Address already in use", seen once in the suite)."""
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            top = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        top = 32768
    for _ in range(1000):
        port = random.randrange(10000, max(top, 10001))
        if port in _ports_given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        _ports_given.add(port)
        return port
    raise RuntimeError("no free port below %d" % top)


def run(cmd, **kw):
    return subprocess.run(cmd, check=True, capture_output=True, **kw)


class PKI:
    """A test CA and server certificates (ECDSA and RSA), made once per test session."""

    def __init__(self, d):
        self.dir = d
        os.makedirs(d, exist_ok=True)
        os.chmod(d, 0o755)
        self.ca_key = os.path.join(d, "ca.key")
        self.ca = os.path.join(d, "ca.crt")
        run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", self.ca_key, "-out", self.ca, "-days", "30", "-subj", "/CN=popsd test CA"])

    def issue(self, name, sans, key="ec", days=90, start=None):
        """Returns (cert_path, key_path); the cert file holds leaf + CA (full chain)."""
        k = os.path.join(self.dir, name + ".key")
        csr = os.path.join(self.dir, name + ".csr")
        crt = os.path.join(self.dir, name + ".crt")
        ext = os.path.join(self.dir, name + ".ext")
        newkey = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"] if key == "ec" else ["-newkey", "rsa:2048"]
        run(["openssl", "req", *newkey, "-nodes", "-keyout", k, "-out", csr, "-subj", "/CN=" + sans[0]])
        with open(ext, "w") as f:
            alt = ",".join(("IP:" + s) if s[0].isdigit() or ":" in s else ("DNS:" + s) for s in sans)
            f.write("subjectAltName=%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n" % alt)
        run(["openssl", "x509", "-req", "-in", csr, "-CA", self.ca, "-CAkey", self.ca_key, "-CAcreateserial",
             "-out", crt, "-days", str(days), "-extfile", ext])
        with open(crt, "a") as out, open(self.ca) as ca:
            out.write(ca.read())
        os.chmod(k, 0o600)
        return crt, k


def memory_tls_client(ctx, server_hostname="localhost"):
    """A TLS client over MemoryBIOs with its ClientHello already written, for tests
    that move the bytes themselves: returns (sslobj, incoming BIO, outgoing BIO)."""
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(incoming, outgoing, server_hostname=server_hostname)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    return obj, incoming, outgoing


class Server:
    def __init__(self, pki, base, userdb="sqlite", extra_server="", extra_conf="", certs=None, workers=1,
                 extra_defence="", extra_userdb=""):
        self.pki = pki
        self.base = base
        os.makedirs(base, exist_ok=True)
        os.chmod(base, 0o755)
        self.mail_root = os.path.join(base, "mail")
        os.makedirs(self.mail_root, exist_ok=True)
        vm = pwd.getpwnam("vmail")
        os.chown(self.mail_root, vm.pw_uid, vm.pw_gid)
        self.vmail = vm
        self.db = os.path.join(base, "users.db")
        self.passwd = os.path.join(base, "passwd")
        self.conf_path = os.path.join(base, "popsd.conf")
        self.log_path = os.path.join(base, "popsd.log")
        self.pop3s_port = free_port()
        self.pop3_port = free_port()
        self.proc = None
        self.userdb = userdb
        if certs is None:
            certs = [pki.issue("server-" + os.path.basename(base), ["localhost", "127.0.0.1"])]
        self.certs = certs
        self.extra_server = extra_server
        self.extra_conf = extra_conf
        self.extra_defence = extra_defence
        self.extra_userdb = extra_userdb
        self.control = os.path.join(base, "control.sock")
        self.workers = workers
        self.write_conf()

    def write_conf(self):
        certs = "".join("[certificate c%d]\ncert = %s\nkey = %s\n\n" % (i, c, k) for i, (c, k) in enumerate(self.certs))
        conf = f"""[server]
workers = {self.workers}
log_level = debug
auth_fail_delay = 100ms
timeout_login = 30s
{self.extra_server}

{certs}
[userdb]
driver = {"sqlite" if self.userdb == "sqlite" else "passwd-file"}
path = {self.db if self.userdb == "sqlite" else self.passwd}
argon2_memory_kib = {TEST_ARGON2_KIB}
{self.extra_userdb}

[defence]
control_socket = {self.control}
{self.extra_defence}

[mail]
root = {self.mail_root}
location = {self.mail_root}/%d/%n/Maildir
create = yes

[listener pop3s]
address = 127.0.0.1:{self.pop3s_port}
tls = implicit

[listener pop3]
address = 127.0.0.1:{self.pop3_port}
tls = starttls
{self.extra_conf}
"""
        with open(self.conf_path, "w") as f:
            f.write(conf)
        os.chmod(self.conf_path, 0o644)

    # ---- users and mail ----
    def popsctl(self, *args, input=None, check=True):
        env = dict(os.environ, POPSD_ARGON2_M_KIB=str(TEST_ARGON2_KIB), POPSD_ARGON2_T="1")
        return subprocess.run([POPSCTL, "--db", self.db, *args], input=input, capture_output=True, env=env,
                              check=check, timeout=60)

    def ctl(self, *args, check=True):
        """popsctl against the running daemon (through its control socket)."""
        return subprocess.run([POPSCTL, "-c", self.conf_path, *args], capture_output=True, text=True,
                              check=check, timeout=30)

    def add_user(self, name, password):
        self.popsctl("user", "add", name, input=(password + "\n").encode())
        # authd runs as _popsd-auth and needs to read the database.
        g = grp.getgrnam("_popsd-auth").gr_gid
        os.chown(self.db, 0, g)
        os.chmod(self.db, 0o640)
        self.maildir(name)

    def write_passwd(self, lines):
        with open(self.passwd, "w") as f:
            f.write("\n".join(lines) + "\n")
        os.chmod(self.passwd, 0o644)

    def maildir(self, user):
        local, _, domain = user.partition("@")
        path = os.path.join(self.mail_root, domain, local, "Maildir")
        for sub in ("cur", "new", "tmp"):
            os.makedirs(os.path.join(path, sub), exist_ok=True)
        for root, dirs, files in os.walk(self.mail_root):
            os.chown(root, self.vmail.pw_uid, self.vmail.pw_gid)
        return path

    def deliver(self, user, data, name=None, sub="new"):
        """Writes a message the way a delivery agent does: tmp/ then rename. Returns its base name."""
        md = self.maildir(user)
        if name is None:
            Server._seq = getattr(Server, "_seq", 0) + 1
            name = "%d.M%dP%d.testhost" % (1700000000 + Server._seq, Server._seq, os.getpid())
        tmp = os.path.join(md, "tmp", name)
        with open(tmp, "wb") as f:
            f.write(data)
        os.chown(tmp, self.vmail.pw_uid, self.vmail.pw_gid)
        os.rename(tmp, os.path.join(md, sub, name))
        return name.split(":")[0]

    def messages(self, user):
        md = self.maildir(user)
        out = {}
        for sub in ("new", "cur"):
            for n in os.listdir(os.path.join(md, sub)):
                with open(os.path.join(md, sub, n), "rb") as f:
                    out[n.split(":")[0]] = f.read()
        return out

    # ---- process ----
    def start(self, wait=True):
        self.logf = open(self.log_path, "ab")
        env = dict(os.environ)
        # Leak checking needs /proc, which the chrooted front cannot see; leaks are
        # covered by the unit tests under ASan. Every other sanitizer report fails the test.
        env["ASAN_OPTIONS"] = "detect_leaks=0:abort_on_error=0"
        env["UBSAN_OPTIONS"] = "print_stacktrace=1:halt_on_error=1"
        self.proc = subprocess.Popen([POPSD, "-c", self.conf_path], stdout=self.logf, stderr=self.logf, env=env)
        if wait:
            self.wait_ready()
        return self

    def wait_ready(self, timeout=15):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("popsd exited: " + self.log())
            if "role=front event=started" in self.log() and "role=authd event=started" in self.log():
                return
            time.sleep(0.05)
        raise RuntimeError("popsd did not start: " + self.log())

    def log(self):
        with open(self.log_path, "rb") as f:
            return f.read().decode(errors="replace")

    def wait_log(self, needle, timeout=10, count=1):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.log().count(needle) >= count:
                return True
            time.sleep(0.05)
        raise AssertionError("log never showed %r:\n%s" % (needle, self.log()[-3000:]))

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.proc:
            self.logf.close()
            self.check_sanitizers()
        self.proc = None

    def check_sanitizers(self):
        log = self.log()
        markers = ["ERROR: AddressSanitizer", "runtime error:", "ERROR: LeakSanitizer"]
        if not getattr(self, "allow_fatal", False):
            markers.append("event=fatal")
        for marker in markers:
            assert marker not in log, "popsd reported %r:\n%s" % (marker, log[-5000:])

    def children(self):
        """{pid: role} of the running children, from /proc."""
        out = {}
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                with open("/proc/%s/stat" % pid) as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
                with open("/proc/%s/cmdline" % pid, "rb") as f:
                    cmd = f.read().split(b"\0")
            except OSError:
                continue
            if ppid == self.proc.pid and len(cmd) > 2 and cmd[1] == b"-x":
                out[int(pid)] = cmd[2].decode()
        return out

    # ---- clients ----
    def ctx(self):
        c = ssl.create_default_context(cafile=self.pki.ca)
        return c

    def pop3s(self, timeout=10):
        import poplib
        return poplib.POP3_SSL("127.0.0.1", self.pop3s_port, context=self.ctx(), timeout=timeout)

    def pop3(self, timeout=10):
        import poplib
        return poplib.POP3("127.0.0.1", self.pop3_port, timeout=timeout)

    def raw(self, tls=True, timeout=10, source=None):
        """A line-level client for exact protocol checks; source picks a loopback address (127.0.0.2, ...)."""
        return RawClient(self, tls, timeout, source)


class RawClient:
    def __init__(self, server, tls, timeout, source=None):
        s = socket.create_connection(("127.0.0.1", server.pop3s_port if tls else server.pop3_port), timeout=timeout,
                                     source_address=(source, 0) if source else None)
        if tls:
            s = server.ctx().wrap_socket(s, server_hostname="localhost")
        self.sock = s
        self.server = server
        self.buf = b""

    def send(self, data):
        self.sock.sendall(data if isinstance(data, bytes) else data.encode())

    def line(self):
        while b"\r\n" not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed; buffered %r" % self.buf)
            self.buf += chunk
        line, self.buf = self.buf.split(b"\r\n", 1)
        return line.decode(errors="replace")

    def cmd(self, text):
        self.send(text + "\r\n")
        return self.line()

    def multiline(self):
        lines = []
        while True:
            l = self.line()
            if l == ".":
                return lines
            lines.append(l)

    def starttls(self):
        assert self.cmd("STLS").startswith("+OK")
        self.sock = self.server.ctx().wrap_socket(self.sock, server_hostname="localhost")

    def closed(self, timeout=5):
        """True if the server closes the connection (after any pending lines)."""
        self.sock.settimeout(timeout)
        try:
            while True:
                d = self.sock.recv(65536)
                if not d:
                    return True
                self.buf += d
        except (ConnectionResetError, ssl.SSLError, BrokenPipeError):
            return True
        except socket.timeout:
            return False

    def login(self, user, password):
        assert self.line().startswith("+OK")
        assert self.cmd("USER " + user).startswith("+OK")
        r = self.cmd("PASS " + password)
        assert r.startswith("+OK"), r

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
