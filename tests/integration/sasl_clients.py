"""Client sides of SCRAM-SHA-256(-PLUS), OAUTHBEARER and XOAUTH2 for the tests,
written from the RFCs (5802, 7677, 9266, 7628) so they do not share code with
the server, plus a way to get a TLS 1.3 connection's tls-exporter binding from
a real, separate TLS client: openssl s_client."""
import base64
import hashlib
import hmac
import os
import re
import select
import subprocess
import time


def b64(b):
    return base64.b64encode(b).decode()


def saslname(s):
    return s.replace("=", "=3D").replace(",", "=2C")


class ScramClient:
    """One SCRAM-SHA-256 exchange. flag: 'n' (no binding), 'y' (client could bind,
    thinks the server cannot) or 'p' (binds with cb_type/cb_data)."""

    def __init__(self, user, password, flag="n", cb_type=None, cb_data=b"", authzid=""):
        self.user, self.password = user, password
        self.flag, self.cb_type, self.cb_data = flag, cb_type, cb_data
        self.cnonce = b64(os.urandom(18)).replace("=", "")
        head = "p=" + cb_type if flag == "p" else flag
        self.gs2 = head + "," + ("a=" + saslname(authzid) if authzid else "") + ","
        self.first_bare = "n=%s,r=%s" % (saslname(user), self.cnonce)

    def first(self):
        return (self.gs2 + self.first_bare).encode()

    def final(self, server_first, cb_override=None):
        self.server_first = server_first.decode()
        attrs = dict(kv.split("=", 1) for kv in self.server_first.split(","))
        nonce, salt, it = attrs["r"], base64.b64decode(attrs["s"]), int(attrs["i"])
        assert nonce.startswith(self.cnonce), "server nonce must extend ours"
        self.salt, self.iterations = salt, it
        salted = hashlib.pbkdf2_hmac("sha256", self.password.encode(), salt, it)
        client_key = hmac.new(salted, b"Client Key", hashlib.sha256).digest()
        stored = hashlib.sha256(client_key).digest()
        self.server_key = hmac.new(salted, b"Server Key", hashlib.sha256).digest()
        cb = self.gs2.encode() + (self.cb_data if self.flag == "p" else b"")
        if cb_override is not None:
            cb = cb_override
        without_proof = "c=%s,r=%s" % (b64(cb), nonce)
        self.auth_message = ",".join([self.first_bare, self.server_first, without_proof]).encode()
        sig = hmac.new(stored, self.auth_message, hashlib.sha256).digest()
        proof = bytes(a ^ b for a, b in zip(client_key, sig))
        return (without_proof + ",p=" + b64(proof)).encode()

    def check_server_final(self, data):
        want = hmac.new(self.server_key, self.auth_message, hashlib.sha256).digest()
        return data.decode() == "v=" + b64(want)


def oauthbearer(token, user=""):
    a = "a=" + saslname(user) if user else ""
    return ("n,%s,\x01host=localhost\x01port=995\x01auth=Bearer %s\x01\x01" % (a, token)).encode()


def xoauth2(user, token):
    return ("user=%s\x01auth=Bearer %s\x01\x01" % (user, token)).encode()


def auth_exchange(raw, mech, messages):
    """Drives AUTH mech over a RawClient: sends each message (bytes, or a callable
    taking the last challenge) after the previous '+' challenge; returns the list
    of challenges received (decoded) and the final line."""
    challenges = []
    first = messages[0]
    line = raw.cmd("AUTH %s %s" % (mech, b64(first) if first else "="))
    i = 1
    while line.startswith("+ ") or line == "+":
        ch = base64.b64decode(line[2:]) if len(line) > 2 else b""
        challenges.append(ch)
        if i < len(messages):
            m = messages[i]
            m = m(ch) if callable(m) else m
        else:
            m = b""
        i += 1
        line = raw.cmd(b64(m) if m else "")
    return challenges, line


def scram_login(raw, mech, client):
    """A whole SCRAM exchange; returns (final line, server-final verified?)."""
    ok = {"v": None}

    def fin(ch):
        return client.final(ch)

    def ack(ch):
        ok["v"] = client.check_server_final(ch)
        return b""

    ch, line = auth_exchange(raw, mech, [client.first(), fin, ack])
    return line, ok["v"]


class SClient:
    """openssl s_client as a POP3S client: a real TLS 1.3 stack other than
    Python's, which also prints the connection's exporter value (RFC 9266)."""

    LABEL = "EXPORTER-Channel-Binding"

    def __init__(self, port, cafile, tls13=True):
        args = ["openssl", "s_client", "-connect", "127.0.0.1:%d" % port, "-CAfile", cafile,
                "-servername", "localhost", "-verify_return_error", "-ign_eof",
                "-keymatexport", self.LABEL, "-keymatexportlen", "32", "-crlf"]
        args.append("-tls1_3" if tls13 else "-tls1_2")
        self.p = subprocess.Popen(args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        self.buf = b""
        head = self._until(lambda b: re.search(rb"\r?\n\+OK[^\n]*\n", b))
        m = re.search(rb"Keying material:\s*([0-9A-Fa-f]+)", head)
        assert m, head.decode(errors="replace")
        self.exporter = bytes.fromhex(m.group(1).decode())

    def _until(self, pred, timeout=10):
        end = time.time() + timeout
        while not pred(self.buf):
            r, _, _ = select.select([self.p.stdout], [], [], max(0.0, end - time.time()))
            if not r:
                raise TimeoutError(self.buf.decode(errors="replace"))
            d = os.read(self.p.stdout.fileno(), 65536)
            if not d:
                raise EOFError(self.buf.decode(errors="replace"))
            self.buf += d
        m = pred(self.buf)
        out, self.buf = self.buf[:m.end()], self.buf[m.end():]
        return out

    def line(self):
        return self._until(lambda b: re.search(rb"\n", b)).decode().rstrip("\r\n")

    def cmd(self, text):
        self.p.stdin.write(text.encode() + b"\n")
        self.p.stdin.flush()
        return self.line()

    def close(self):
        try:
            self.p.stdin.close()
        except OSError:
            pass
        self.p.kill()
        self.p.wait()
