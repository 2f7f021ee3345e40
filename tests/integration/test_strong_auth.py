"""Strong authentication against the running daemon: SCRAM-SHA-256(-PLUS) with
both channel bindings and the downgrade rules, app passwords, per-user policy,
hash upgrade on login, and OAuth 2.0 bearer tokens (local JWT validation and
RFC 7662 introspection) — each accepted case and each refusal."""
import base64
import grp
import json
import os
import re
import sqlite3
import ssl
import subprocess
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from conftest import PASSWORD
from popsd_harness import free_port
from sasl_clients import SClient, ScramClient, auth_exchange, oauthbearer, scram_login, xoauth2

USER = "alice@example.com"
APP_RE = re.compile(r"\b[a-z2-7]{5}(?:-[a-z2-7]{5}){4}\b")


def writable_db(s):
    """Lets authd (group _popsd-auth) write the database and its journal, as a
    deployment that wants last-use records and hash upgrades must."""
    g = grp.getgrnam("_popsd-auth").gr_gid
    os.chown(s.base, 0, g)
    os.chmod(s.base, 0o775)
    os.chmod(s.db, 0o660)


def capa(raw):
    assert raw.cmd("CAPA").startswith("+OK")
    return raw.multiline()


def sasl_line(caps):
    return next((c.split()[1:] for c in caps if c.startswith("SASL")), [])


@pytest.fixture
def srv(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    s.deliver(USER, b"Subject: hi\n\nbody\n")
    s.start()
    return s


# ---- mechanisms on offer ----

def test_capa_lists_mechanisms_only_after_tls(srv):
    r = srv.raw(tls=False)
    assert r.line().startswith("+OK")
    caps = capa(r)
    assert not any(c.startswith("SASL") or c == "USER" for c in caps)
    assert r.cmd("AUTH SCRAM-SHA-256 =").startswith("-ERR [AUTH]")
    r.starttls()
    caps = capa(r)
    assert sasl_line(caps) == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN"]  # no OAuth without an issuer
    assert "USER" in caps
    assert r.cmd("AUTH XOAUTH2 =").startswith("-ERR")
    r.close()


def test_listener_mechanisms_restrict_what_is_offered(make_server):
    s = make_server(extra_conf="mechanisms = SCRAM-SHA-256-PLUS SCRAM-SHA-256\n")  # the STLS listener
    s.add_user(USER, PASSWORD)
    s.start()
    r = s.raw(tls=False)
    r.line()
    r.starttls()
    caps = capa(r)
    assert sasl_line(caps) == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"] and "USER" not in caps
    assert r.cmd("USER " + USER).startswith("-ERR [AUTH]")
    assert r.cmd("AUTH PLAIN").startswith("-ERR")
    assert r.cmd("AUTH").startswith("+OK")
    assert r.multiline() == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256"]
    line, ok = scram_login(r, "SCRAM-SHA-256", ScramClient(USER, PASSWORD))
    assert line.startswith("+OK") and ok
    r.close()
    # The implicit-TLS listener still offers everything.
    r = s.raw()
    r.line()
    assert "PLAIN" in sasl_line(capa(r))
    r.close()


# ---- SCRAM ----

def test_scram_sha256_login_and_server_signature(srv):
    r = srv.raw()
    r.line()
    line, ok = scram_login(r, "SCRAM-SHA-256", ScramClient(USER, PASSWORD))
    assert line.startswith("+OK"), line
    assert ok, "server-final must carry the right ServerSignature"
    assert r.cmd("STAT").startswith("+OK 1 ")
    r.cmd("QUIT")
    assert "mech=SCRAM-SHA-256" in srv.log()
    row = sqlite3.connect(srv.db).execute("SELECT scram FROM users WHERE name=?", (USER,)).fetchone()
    assert row[0].startswith("{SCRAM-SHA-256}10000,")
    assert PASSWORD not in open(srv.db, "rb").read().decode(errors="replace")


def test_scram_wrong_password_and_unknown_user(srv):
    r = srv.raw()
    r.line()
    line, _ = scram_login(r, "SCRAM-SHA-256", ScramClient(USER, "wrong password!"))
    assert line.startswith("-ERR [AUTH]"), line
    # An unknown user gets a salt too (stable per name) and fails only at the proof.
    r.close()
    salts = []
    for _ in range(2):
        r = srv.raw()
        r.line()
        c = ScramClient("nobody@example.com", "whatever password")
        line, _ = scram_login(r, "SCRAM-SHA-256", c)
        assert line.startswith("-ERR [AUTH]")
        salts.append(c.salt)
        r.close()
    assert salts[0] == salts[1] and len(salts[0]) == 16
    srv.wait_log("user=\"nobody@example.com\"")


def test_scram_plus_tls_exporter_with_s_client(srv):
    """TLS 1.3: a separate TLS stack (openssl s_client) exports the binding; the
    server must agree byte for byte, and a wrong binding must fail."""
    c = SClient(srv.pop3s_port, srv.pki.ca, tls13=True)
    try:
        sc = ScramClient(USER, PASSWORD, flag="p", cb_type="tls-exporter", cb_data=c.exporter)
        line, ok = scram_login(c, "SCRAM-SHA-256-PLUS", sc)
        assert line.startswith("+OK") and ok, line
    finally:
        c.close()
    c = SClient(srv.pop3s_port, srv.pki.ca, tls13=True)
    try:
        bad = bytes(b ^ 1 for b in c.exporter)
        line, _ = scram_login(c, "SCRAM-SHA-256-PLUS", ScramClient(USER, PASSWORD, "p", "tls-exporter", bad))
        assert line.startswith("-ERR [AUTH]"), line
    finally:
        c.close()
    assert "channel-bindings-dont-match" in srv.log()


def test_scram_plus_tls_unique_on_tls12(srv):
    ctx = srv.ctx()
    ctx.maximum_version = ssl.TLSVersion.TLSv1_2
    import socket
    s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", srv.pop3s_port)), server_hostname="localhost")
    r = srv.raw()
    r.sock.close()
    r.sock, r.buf = s, b""
    r.line()
    cb = s.get_channel_binding("tls-unique")
    assert cb
    # TLS 1.2 has no tls-exporter binding here: asking for it fails...
    line, _ = scram_login(r, "SCRAM-SHA-256-PLUS", ScramClient(USER, PASSWORD, "p", "tls-exporter", cb))
    assert line.startswith("-ERR")
    # ... tls-unique works.
    line, ok = scram_login(r, "SCRAM-SHA-256-PLUS", ScramClient(USER, PASSWORD, "p", "tls-unique", cb))
    assert line.startswith("+OK") and ok, line
    r.close()


def test_scram_downgrade_is_refused(srv):
    """RFC 5802 6: a client that could bind says so with 'y'; since the server
    offered -PLUS, someone stripped it from the list: fail."""
    r = srv.raw()
    r.line()
    assert "SCRAM-SHA-256-PLUS" in sasl_line(capa(r))
    line, _ = scram_login(r, "SCRAM-SHA-256", ScramClient(USER, PASSWORD, flag="y"))
    assert line.startswith("-ERR [AUTH]"), line
    # Binding requested on the non-PLUS mechanism, and no binding on -PLUS: both refused.
    line, _ = scram_login(r, "SCRAM-SHA-256", ScramClient(USER, PASSWORD, "p", "tls-exporter", b"x" * 32))
    assert line.startswith("-ERR")
    r.close()
    r = srv.raw()
    r.line()
    line, _ = scram_login(r, "SCRAM-SHA-256-PLUS", ScramClient(USER, PASSWORD, flag="n"))
    assert line.startswith("-ERR")
    r.close()
    log = srv.log()
    assert "client thinks we lack channel binding (downgrade?)" in log


def test_scram_with_mpop(srv, tmp_path):
    """A real client library (GNU SASL, through mpop) speaking SCRAM-SHA-256."""
    rc = tmp_path / "mpoprc"
    rc.write_text(f"""account default
host 127.0.0.1
port {srv.pop3s_port}
tls on
tls_starttls off
tls_trust_file {srv.pki.ca}
tls_host_override localhost
auth scram-sha-256
user {USER}
password {PASSWORD}
delivery maildir {tmp_path}/md
keep on
""")
    rc.chmod(0o600)
    for sub in ("cur", "new", "tmp"):
        (tmp_path / "md" / sub).mkdir(parents=True)
    p = subprocess.run(["mpop", "-C", str(rc), "-q"], capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stderr
    assert len(os.listdir(tmp_path / "md" / "new")) == 1
    assert re.search(r"login .*mech=SCRAM-SHA-256", srv.log())


# ---- app passwords and policy ----

def add_app_password(s, user, *extra):
    p = s.popsctl("app-password", "add", user, *extra, check=False)
    assert p.returncode == 0, p.stderr
    m = APP_RE.search(p.stdout.decode())
    assert m, p.stdout
    return m.group(0)


def plain_login(s, user, pw):
    r = s.raw()
    r.line()
    assert r.cmd("USER " + user).startswith("+OK")
    line = r.cmd("PASS " + pw)
    r.close()
    return line


def test_app_password_login_last_use_and_revocation(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    writable_db(s)
    s.start()
    app = add_app_password(s, USER, "--label", "phone")
    assert plain_login(s, USER, app).startswith("+OK")
    assert plain_login(s, USER, app.upper().replace("-", " ")).startswith("+OK")  # retyped by hand
    s.wait_log("app_password_used")
    row = sqlite3.connect(s.db).execute("SELECT last_used, last_source, hash FROM app_passwords").fetchone()
    assert row[0] > 0 and row[1] == "127.0.0.1" and row[2].startswith("sha256:") and app not in row[2]
    listing = s.popsctl("app-password", "list", USER).stdout.decode()
    assert "phone" in listing and app not in listing
    s.popsctl("app-password", "revoke", USER, "phone")
    assert plain_login(s, USER, app).startswith("-ERR [AUTH]")  # at once, cache or not
    assert plain_login(s, USER, PASSWORD).startswith("+OK")


def test_app_password_expiry_and_networks(srv):
    app = add_app_password(srv, USER, "--label", "old")
    sqlite3.connect(srv.db, isolation_level=None).execute("UPDATE app_passwords SET expires = 1000")
    assert plain_login(srv, USER, app).startswith("-ERR [AUTH]")
    srv.wait_log("reason=app_password_expired")
    app2 = add_app_password(srv, USER, "--label", "office", "--networks", "10.0.0.0/8")
    assert plain_login(srv, USER, app2).startswith("-ERR [AUTH]")
    srv.wait_log("reason=app_password_network")
    app3 = add_app_password(srv, USER, "--label", "here", "--networks", "127.0.0.0/8,::1")
    assert plain_login(srv, USER, app3).startswith("+OK")


def test_policy_app_passwords_only(srv):
    app = add_app_password(srv, USER, "--label", "laptop")
    srv.popsctl("policy", "set", USER, "--methods", "app")
    assert plain_login(srv, USER, PASSWORD).startswith("-ERR [AUTH]")
    srv.wait_log("auth_policy_refused")
    assert "reason=method_not_allowed" in srv.log()
    assert plain_login(srv, USER, app).startswith("+OK")
    r = srv.raw()
    r.line()
    line, _ = scram_login(r, "SCRAM-SHA-256", ScramClient(USER, PASSWORD))
    assert line.startswith("-ERR [AUTH]")
    r.close()


def test_require_mfa_refuses_the_account_password(srv):
    srv.popsctl("policy", "set", USER, "--require-mfa", "yes")
    assert plain_login(srv, USER, PASSWORD).startswith("-ERR [AUTH]")
    srv.wait_log("reason=require_mfa")
    # The refusal looks like any failure to the client, and is logged as a failure for fail2ban.
    assert "reason=policy" in srv.log()


def test_policy_networks(srv):
    srv.popsctl("policy", "set", USER, "--networks", "192.0.2.0/24")
    assert plain_login(srv, USER, PASSWORD).startswith("-ERR [AUTH]")
    srv.wait_log("reason=network")
    srv.popsctl("policy", "set", USER, "--networks", "any")
    assert plain_login(srv, USER, PASSWORD).startswith("+OK")


def test_legacy_hash_upgraded_on_login(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    writable_db(s)
    legacy = subprocess.run(["openssl", "passwd", "-6", PASSWORD], capture_output=True, text=True).stdout.strip()
    sqlite3.connect(s.db, isolation_level=None).execute("UPDATE users SET password=? WHERE name=?",
                                                         ("{SHA512-CRYPT}" + legacy, USER))
    s.start()
    assert plain_login(s, USER, PASSWORD).startswith("+OK")
    s.wait_log("hash_upgraded")
    h = sqlite3.connect(s.db).execute("SELECT password FROM users WHERE name=?", (USER,)).fetchone()[0]
    assert h.startswith("{ARGON2ID}$argon2id$")
    assert plain_login(s, USER, PASSWORD).startswith("+OK")
    assert plain_login(s, USER, "not the password").startswith("-ERR")


# ---- OAuth 2.0 ----

ISSUER = "https://idp.example.com"
AUD = "pop3.example.com"


@pytest.fixture(scope="module")
def keys():
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    return {"RS256": rsa.generate_private_key(65537, 2048), "ES256": ec.generate_private_key(ec.SECP256R1()),
            "EdDSA": ed25519.Ed25519PrivateKey.generate()}


def jwks_of(keys):
    import jwt
    algs = {"RS256": jwt.algorithms.RSAAlgorithm, "ES256": jwt.algorithms.ECAlgorithm,
            "EdDSA": jwt.algorithms.OKPAlgorithm}
    out = []
    for alg, k in keys.items():
        j = json.loads(algs[alg].to_jwk(k.public_key()))
        j.update(kid="k-" + alg, use="sig", alg=alg)
        out.append(j)
    return {"keys": out}


def mint(keys, alg="RS256", **claims):
    import jwt
    now = int(time.time())
    body = {"iss": ISSUER, "aud": AUD, "sub": "u1", "email": USER, "scope": "openid pop3", "iat": now,
            "exp": now + 600}
    body.update(claims)
    body = {k: v for k, v in body.items() if v is not None}
    return jwt.encode(body, keys[alg], algorithm=alg, headers={"kid": "k-" + alg})


def make_oauth_srv(make_server, keys, tmp_path, extra_userdb=""):
    jwks = tmp_path / "jwks.json"
    jwks.write_text(json.dumps(jwks_of(keys)))
    jwks.chmod(0o644)
    s = make_server(extra_userdb=extra_userdb, extra_conf=f"""
[oauth idp]
issuer = {ISSUER}
audience = {AUD}
jwks_file = {jwks}
scope = pop3
openid_configuration = {ISSUER}/.well-known/openid-configuration
""")
    s.add_user(USER, PASSWORD)
    s.deliver(USER, b"Subject: hi\n\nbody\n")
    s.start()
    return s


@pytest.fixture
def oauth_srv(make_server, keys, tmp_path):
    return make_oauth_srv(make_server, keys, tmp_path)


def test_oauth_names_folded_with_lowercase_names(make_server, keys, tmp_path):
    # The issuer writes the address its own way, the client another: with
    # lowercase_names both are the account alice@example.com.
    s = make_oauth_srv(make_server, keys, tmp_path, extra_userdb="lowercase_names = yes")
    r = s.raw()
    r.line()
    _, line = auth_exchange(r, "OAUTHBEARER", [oauthbearer(mint(keys, email="Alice@Example.com"), "ALICE@example.com")])
    assert line.startswith("+OK"), line
    assert r.cmd("STAT").startswith("+OK 1 ")
    r.close()


@pytest.mark.parametrize("alg", ["RS256", "ES256", "EdDSA"])
def test_oauthbearer_valid_tokens(oauth_srv, keys, alg):
    r = oauth_srv.raw()
    r.line()
    assert sasl_line(capa(r)) == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "OAUTHBEARER", "XOAUTH2", "PLAIN"]
    ch, line = auth_exchange(r, "OAUTHBEARER", [oauthbearer(mint(keys, alg), USER)])
    assert line.startswith("+OK"), line
    r.close()


def test_xoauth2_and_curl(oauth_srv, keys):
    r = oauth_srv.raw()
    r.line()
    ch, line = auth_exchange(r, "XOAUTH2", [xoauth2(USER, mint(keys))])
    assert line.startswith("+OK"), line
    r.close()
    # curl's own SASL client, choosing OAUTHBEARER from CAPA.
    p = subprocess.run(["curl", "-sS", "--cacert", oauth_srv.pki.ca, "--resolve", f"localhost:{oauth_srv.pop3s_port}:127.0.0.1",
                        "--login-options", "AUTH=OAUTHBEARER", "-u", USER + ":", "--oauth2-bearer", mint(keys, "ES256"),
                        f"pop3s://localhost:{oauth_srv.pop3s_port}/1"], capture_output=True, timeout=30)
    assert p.returncode == 0, p.stderr
    assert b"Subject: hi" in p.stdout


@pytest.mark.parametrize("case", ["expired", "audience", "issuer", "signature", "alg_none", "hs256_confusion",
                                  "scope", "user_mismatch", "unknown_user"])
def test_oauth_refusals(oauth_srv, keys, case):
    import jwt
    tok = mint(keys)
    if case == "expired":
        tok = mint(keys, exp=int(time.time()) - 3600)
    elif case == "audience":
        tok = mint(keys, aud="other.example.com")
    elif case == "issuer":
        tok = mint(keys, iss="https://evil.example.com")
    elif case == "signature":
        h, p, sig = tok.split(".")
        sig = ("A" if sig[0] != "A" else "B") + sig[1:]
        tok = ".".join([h, p, sig])
    elif case == "alg_none":
        h = base64.urlsafe_b64encode(json.dumps({"alg": "none", "kid": "k-RS256"}).encode()).rstrip(b"=").decode()
        tok = h + "." + tok.split(".")[1] + "."
    elif case == "hs256_confusion":
        from cryptography.hazmat.primitives import serialization
        pem = keys["RS256"].public_key().public_bytes(serialization.Encoding.PEM,
                                                       serialization.PublicFormat.SubjectPublicKeyInfo)
        now = int(time.time())
        body = {"iss": ISSUER, "aud": AUD, "email": USER, "scope": "pop3", "exp": now + 600}
        import hmac as _h, hashlib
        hd = base64.urlsafe_b64encode(json.dumps({"alg": "HS256", "kid": "k-RS256"}).encode()).rstrip(b"=")
        bd = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=")
        sig = base64.urlsafe_b64encode(_h.new(pem, hd + b"." + bd, hashlib.sha256).digest()).rstrip(b"=")
        tok = (hd + b"." + bd + b"." + sig).decode()
    elif case == "scope":
        tok = mint(keys, scope="openid")
    elif case == "unknown_user":
        tok = mint(keys, email="mallory@example.com")
    user = "bob@example.com" if case == "user_mismatch" else USER
    r = oauth_srv.raw()
    r.line()
    ch, line = auth_exchange(r, "OAUTHBEARER", [oauthbearer(tok, user), b"\x01"])
    assert line.startswith("-ERR [AUTH]"), (case, line)
    # RFC 7628 3.2.2: the error status comes as a challenge before the -ERR.
    assert len(ch) == 1, ch
    status = json.loads(ch[0])
    assert status["status"] == ("insufficient_scope" if case == "scope" else "invalid_token")
    assert status.get("scope") == "pop3"
    assert status.get("openid-configuration", "").startswith(ISSUER)
    r.close()
    assert tok not in oauth_srv.log()


class Introspection(BaseHTTPRequestHandler):
    active = {}
    hits = 0

    def do_POST(self):
        Introspection.hits += 1
        n = int(self.headers.get("Content-Length", "0"))
        form = dict(kv.split("=", 1) for kv in self.rfile.read(n).decode().split("&"))
        auth = self.headers.get("Authorization", "")
        ok_auth = auth == "Basic " + base64.b64encode(b"popsd:s3cret").decode()
        tok = form.get("token", "")
        body = {"active": False}
        if ok_auth and tok in self.active:
            body = {"active": True, "iss": ISSUER, "aud": AUD, "scope": "pop3", "username": self.active[tok],
                    "exp": int(time.time()) + 300}
        data = json.dumps(body).encode()
        self.send_response(200 if ok_auth else 401)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *a):
        pass


def test_oauth_introspection_with_cache(make_server, tmp_path):
    port = free_port()
    httpd = HTTPServer(("127.0.0.1", port), Introspection)
    t = threading.Thread(target=httpd.serve_forever, daemon=True)
    t.start()
    try:
        secret = tmp_path / "client_secret"
        secret.write_text("s3cret\n")
        secret.chmod(0o600)
        s = make_server(extra_conf=f"""
[oauth corp]
issuer = {ISSUER}
audience = {AUD}
introspection_url = http://127.0.0.1:{port}/introspect
client_id = popsd
client_secret_file = {secret}
username_claim = username
scope = pop3
""")
        s.add_user(USER, PASSWORD)
        s.start()
        Introspection.active = {"opaque-token-1": USER}
        Introspection.hits = 0
        for _ in range(2):
            r = s.raw()
            r.line()
            ch, line = auth_exchange(r, "XOAUTH2", [xoauth2(USER, "opaque-token-1")])
            assert line.startswith("+OK"), line
            r.close()
        assert Introspection.hits == 1, "the second login must come from the cache"
        r = s.raw()
        r.line()
        ch, line = auth_exchange(r, "XOAUTH2", [xoauth2(USER, "opaque-token-2"), b""])
        assert line.startswith("-ERR [AUTH]") and len(ch) == 1
        r.close()
        httpd.shutdown()
        r = s.raw()
        r.line()
        ch, line = auth_exchange(r, "XOAUTH2", [xoauth2(USER, "opaque-token-3")])
        assert line.startswith("-ERR [SYS/TEMP]"), line
        r.close()
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("dir_mode,file_mode", [(0o770, 0o660), (0o750, 0o640)])
def test_new_database_takes_its_directory_group(make_server, dir_mode, file_mode):
    """`install -d -g _popsd-auth /var/lib/popsd` is all an admin does: popsctl gives a new database
    that group (authd can read it) and, if the group may write the directory, write access too."""
    s = make_server()
    d = os.path.join(s.base, "db")
    os.mkdir(d)
    g = grp.getgrnam("_popsd-auth").gr_gid
    os.chown(d, 0, g)
    os.chmod(d, dir_mode)
    path = os.path.join(d, "users.db")
    p = subprocess.run([os.path.join(os.environ["POPSD_BUILD"], "popsctl"), "--db", path, "user", "add", USER,
                        "--generate"], capture_output=True, timeout=60)
    assert p.returncode == 0, p.stderr
    st = os.stat(path)
    assert st.st_gid == g and (st.st_mode & 0o777) == file_mode


def test_authd_killed_in_the_middle_of_scram(srv):
    """The conversation lives in authd: if authd dies between the two SCRAM messages, the client gets
    [SYS/TEMP] (try again), not an authentication failure, and the next connection works."""
    import signal
    r = srv.raw()
    r.line()
    c = ScramClient(USER, PASSWORD)
    line = r.cmd("AUTH SCRAM-SHA-256 " + base64.b64encode(c.first()).decode())
    assert line.startswith("+ ")
    authd = [pid for pid, role in srv.children().items() if role == "authd"]
    assert len(authd) == 1
    os.kill(authd[0], signal.SIGKILL)
    time.sleep(0.2)
    line = r.cmd(base64.b64encode(c.final(base64.b64decode(line[2:]))).decode())
    assert line.startswith("-ERR [SYS/TEMP]"), line
    r.close()
    srv.wait_log("generation_ready gen=2", timeout=20)
    r = srv.raw()
    r.line()
    line, ok = scram_login(r, "SCRAM-SHA-256", ScramClient(USER, PASSWORD))
    assert line.startswith("+OK") and ok, line
    r.close()


def test_metrics_count_each_mechanism(make_server):
    """popsd_logins_total carries the SASL mechanism; a policy refusal counts as a failure."""
    from test_alerts_metrics import L, metrics_conf, promtool, fetch, wait_metrics, wait_value
    port = free_port()
    s = make_server(extra_conf=metrics_conf(port))
    s.add_user(USER, PASSWORD)
    s.start()
    wait_metrics(s, port)
    r = s.raw()
    r.line()
    line, ok = scram_login(r, "SCRAM-SHA-256", ScramClient(USER, PASSWORD))
    assert line.startswith("+OK") and ok
    r.close()
    wait_value(port, L % ("success", "SCRAM-SHA-256"), 1)
    s.popsctl("policy", "set", USER, "--require-mfa", "yes")
    assert plain_login(s, USER, PASSWORD).startswith("-ERR [AUTH]")
    m = wait_value(port, L % ("failure", "USER"), 1)
    assert m.get(L % ("tempfail", "USER"), 0) == 0
    promtool(fetch(port)[2])
