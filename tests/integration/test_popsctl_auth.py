"""popsctl's strong-authentication commands against a real SQLite database: TOTP enrolment,
app passwords gated by TOTP, per-user policy, and password quality (length, libpwquality,
the breached list) with SCRAM keys stored beside the Argon2id hash.

TOTP codes are computed here with hmac (RFC 6238), independently of liboath."""
import base64
import hashlib
import hmac
import os
import re
import shutil
import sqlite3
import struct
import subprocess
import time
from urllib.parse import parse_qs, unquote, urlparse

import pytest

from conftest import PASSWORD
from popsd_harness import POPSCTL, TEST_ARGON2_KIB

USER = "alice@example.com"
APPPW_RE = re.compile(r"^app password: ([a-z2-7]{5}(?:-[a-z2-7]{5}){4})$", re.M)


def totp(secret, step):
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    h = hmac.new(key, struct.pack(">Q", step), hashlib.sha1).digest()
    o = h[-1] & 15
    return "%06d" % ((struct.unpack(">I", h[o:o + 4])[0] & 0x7FFFFFFF) % 1000000)


def fresh_step():
    """The current time step, with at least 8 s of it left, so that this step's code and the
    next one's both stay inside popsctl's ±1 window for the next 38 s."""
    if 30 - time.time() % 30 < 8:
        time.sleep(30 - time.time() % 30 + 0.1)
    return int(time.time() // 30)


def ctl(s, *args, input=None, conf=False):
    """popsctl against the server's database (and its config with conf=True); never raises."""
    env = dict(os.environ, POPSD_ARGON2_M_KIB=str(TEST_ARGON2_KIB), POPSD_ARGON2_T="1")
    pre = ["-c", s.conf_path] if conf else []
    if isinstance(input, str):
        input = input.encode()
    r = subprocess.run([POPSCTL, *pre, "--db", s.db, *args], input=input, capture_output=True, env=env,
                       timeout=60)
    r.out, r.err = r.stdout.decode(), r.stderr.decode()
    return r


def ok(s, *args, **kw):
    r = ctl(s, *args, **kw)
    assert r.returncode == 0, "popsctl %s: rc=%d\n%s%s" % (" ".join(args), r.returncode, r.out, r.err)
    return r


def refused(s, *args, rc=1, why=None, **kw):
    r = ctl(s, *args, **kw)
    assert r.returncode == rc, "popsctl %s: rc=%d (want %d)\n%s%s" % (" ".join(args), r.returncode, rc, r.out, r.err)
    assert r.err.startswith("popsctl"), r.err
    if why is not None:
        assert why in r.err, "%r not in %r" % (why, r.err)
    return r


def db(s):
    return sqlite3.connect(s.db)


def enrol(s, user, **kw):
    """Enrols user (--no-qr) and returns the secret from the printed URI."""
    r = ok(s, "totp", "enroll", user, "--no-qr", **kw)
    uri = [l for l in r.out.splitlines() if l.startswith("otpauth://")]
    assert len(uri) == 1, r.out
    q = parse_qs(urlparse(uri[0]).query)
    return q["secret"][0], uri[0]


def confirmed_user(s, user):
    """A user with a confirmed TOTP secret; returns (secret, step used to confirm)."""
    s.add_user(user, PASSWORD)
    secret, _ = enrol(s, user)
    t = fresh_step()
    ok(s, "totp", "confirm", user, totp(secret, t))
    return secret, t


def test_user_add_stores_scram_keys(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    row = db(s).execute("select password, scram from users where name=?", (USER,)).fetchone()
    assert row[0].startswith("{ARGON2ID}$argon2id$")
    assert row[1].startswith("{SCRAM-SHA-256}10000,")
    assert PASSWORD not in row[1]
    # iterations,salt,StoredKey,ServerKey: 16-byte salt, 32-byte keys
    it, salt, stored, server = row[1][len("{SCRAM-SHA-256}"):].split(",")
    assert len(base64.b64decode(salt)) == 16 and len(base64.b64decode(stored)) == 32
    assert len(base64.b64decode(server)) == 32
    ok(s, "user", "passwd", USER, input="a brand new password\n")
    row2 = db(s).execute("select scram from users where name=?", (USER,)).fetchone()
    assert row2[0].startswith("{SCRAM-SHA-256}10000,") and row2[0] != row[1]
    # A generated password gets keys too.
    gen = ok(s, "user", "add", "gen@example.com", "--generate")
    assert "password:" in gen.out
    assert db(s).execute("select scram from users where name='gen@example.com'").fetchone()[0].startswith(
        "{SCRAM-SHA-256}10000,")


def test_user_scram_iterations_from_config(make_server):
    s = make_server(extra_conf="")
    with open(s.conf_path) as f:
        conf = f.read().replace("[userdb]\n", "[userdb]\nscram_iterations = 4096\n")
    with open(s.conf_path, "w") as f:
        f.write(conf)
    ok(s, "user", "add", USER, input=PASSWORD + "\n", conf=True)
    assert db(s).execute("select scram from users").fetchone()[0].startswith("{SCRAM-SHA-256}4096,")


def test_weak_passwords_refused(make_server):
    s = make_server()
    refused(s, "user", "add", USER, input="short\n", why="too short: 5 characters, at least 12")
    # Twelve bytes but six characters: NIST counts characters.
    refused(s, "user", "add", USER, input="\u00e9" * 6 + "\n", why="too short: 6 characters")
    refused(s, "user", "add", USER, input="alice-in-wonderland-9\n", why="user name")
    refused(s, "user", "add", USER, input="123456789012\n", why="too weak")
    refused(s, "user", "add", USER, input="abcdefgggfedcba\n", why="palindrome")
    assert db(s).execute("select count(*) from users").fetchone()[0] == 0
    # The same rules for passwd.
    s.add_user(USER, PASSWORD)
    refused(s, "user", "passwd", USER, input="short\n", why="too short")
    refused(s, "user", "passwd", USER, input="Alice-Example-Com-9\n", why="user name")
    # A generated password is not checked, and would pass anyway.
    gen = ok(s, "user", "add", "gen@example.com", "--generate")
    pw = gen.out.split("password:")[1].strip()
    ok(s, "user", "passwd", USER, input=pw + "\n")


def test_dictionary_password_refused(make_server):
    # libpwquality's dictionary check needs cracklib's dictionary (Debian: cracklib-runtime).
    if not os.path.exists("/var/cache/cracklib/cracklib_dict.pwd"):
        pytest.skip("no cracklib dictionary")
    s = make_server()
    refused(s, "user", "add", USER, input="password123456\n", why="dictionary")


def test_min_length_and_quality_from_config(make_server):
    s = make_server()
    with open(s.conf_path, "a") as f:
        f.write("\n[passwords]\nmin_length = 25\nmin_quality = 0\n")
    r = refused(s, "user", "add", USER, input=PASSWORD + "\n", conf=True, why="at least 25")
    ok(s, "user", "add", USER, input="correct horse battery staple\n", conf=True)


def test_breached_password_refused(make_server, tmp_path):
    s = make_server()
    breached = ["password", "Tr0ub4dor&3-horse-battery", "dragonfly-meadow-42"]
    lines = sorted(hashlib.sha1(p.encode()).hexdigest().upper() for p in breached + ["x%d" % i for i in range(5000)])
    path = tmp_path / "pwned.txt"
    path.write_text("".join("%s:%d\r\n" % (h, i + 1) for i, h in enumerate(lines)), newline="")
    with open(s.conf_path, "a") as f:
        f.write("\n[passwords]\nbreached_list = %s\n" % path)
    ok(s, "user", "add", USER, input="dragonfly-meadow-42\n")  # --db alone: no list configured
    r = refused(s, "user", "add", "bob@example.com", input="dragonfly-meadow-42\n", conf=True, why="breached")
    refused(s, "user", "passwd", USER, input="Tr0ub4dor&3-horse-battery\n", conf=True, why="breached")
    ok(s, "user", "passwd", USER, input=PASSWORD + "\n", conf=True)
    # A list that cannot be read refuses (fail closed), saying why.
    path.unlink()
    refused(s, "user", "passwd", USER, input=PASSWORD + "\n", conf=True, why="pwned.txt")
    # A corrupt list too.
    path.write_text("not a hash list\n")
    refused(s, "user", "passwd", USER, input=PASSWORD + "\n", conf=True, why="malformed")


def test_totp_enrol_confirm_and_app_passwords(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    # No TOTP yet: an app password needs no code.
    r = ok(s, "app-password", "add", USER, "--label", "phone")
    m = APPPW_RE.search(r.out)
    assert m, r.out
    phone_pw = m.group(1)
    assert "will not be shown again" in r.out
    assert "totp:         none" in ok(s, "totp", "status", USER).out
    refused(s, "app-password", "add", USER, "--label", "x", "--totp", "123456", rc=2, why="no confirmed TOTP")

    secret, uri = enrol(s, USER)
    assert len(secret) == 32 and re.fullmatch(r"[A-Z2-7]{32}", secret)
    u = urlparse(uri)
    assert u.scheme == "otpauth" and u.netloc == "totp" and unquote(u.path) == "/popsd:" + USER
    assert "%40" in u.path  # the label is percent-encoded
    q = parse_qs(u.query)
    assert q == {"secret": [secret], "issuer": ["popsd"], "algorithm": ["SHA1"], "digits": ["6"], "period": ["30"]}
    st = ok(s, "totp", "status", USER).out
    assert "pending" in st and secret not in st
    # Pending: app passwords still need no code, and the pending secret is not asked for.
    ok(s, "app-password", "add", USER, "--label", "tablet")

    t = fresh_step()
    refused(s, "totp", "confirm", USER, "%06d" % ((int(totp(secret, t)) + 1) % 1000000), why="wrong TOTP code")
    refused(s, "totp", "confirm", USER, "12ab56", rc=2, why="6 digits")
    refused(s, "totp", "confirm", USER, "12345", rc=2, why="6 digits")
    ok(s, "totp", "confirm", USER, totp(secret, t))
    st = ok(s, "totp", "status", USER).out
    assert "confirmed" in st and secret not in st
    refused(s, "totp", "confirm", USER, totp(secret, t + 1), why="already has a confirmed")
    refused(s, "totp", "enroll", USER, why="remove it first")
    refused(s, "app-password", "add", USER, "--label", "laptop", why="code is required")
    refused(s, "app-password", "add", USER, "--label", "laptop", "--totp", totp(secret, t), why="already used")
    refused(s, "app-password", "add", USER, "--label", "laptop", "--totp", totp(secret, t + 5), why="wrong TOTP")
    # The next step's code, from stdin, with the space apps show; a taken label is refused before it is spent.
    code = totp(secret, t + 1)
    refused(s, "app-password", "add", USER, "--label", "phone", "--totp", code, why="already exists")
    r = ok(s, "app-password", "add", USER, "--label", "laptop", "--expires", "30", "--networks",
           "10.0.0.0/8,192.0.2.7", "--totp", "-", input=code[:3] + " " + code[3:] + "\n")
    laptop_pw = APPPW_RE.search(r.out).group(1)
    assert r.out.count(laptop_pw) == 1
    refused(s, "app-password", "add", USER, "--label", "other", "--totp", code, why="already used")

    lst = ok(s, "app-password", "list", USER).out
    for label in ("phone", "tablet", "laptop"):
        assert label in lst
    assert "10.0.0.0/8 192.0.2.7" in lst and "never" in lst
    assert phone_pw not in lst and laptop_pw not in lst and "sha256:" not in lst
    rows = db(s).execute("select label, hash, expires, networks from app_passwords where user=? order by id",
                         (USER,)).fetchall()
    assert [r[0] for r in rows] == ["phone", "tablet", "laptop"]
    assert rows[0][1] == "sha256:" + hashlib.sha256(phone_pw.encode()).hexdigest()
    assert all(phone_pw not in r[1] and laptop_pw not in r[1] for r in rows)
    assert abs(rows[2][2] - (time.time() + 30 * 86400)) < 120 and rows[0][2] == 0
    assert rows[2][3] == "10.0.0.0/8 192.0.2.7"

    ok(s, "app-password", "revoke", USER, "tablet")
    ok(s, "app-password", "revoke", USER, "#%d" % db(s).execute(
        "select id from app_passwords where label='phone'").fetchone()[0])
    refused(s, "app-password", "revoke", USER, "tablet", why="no app password")
    refused(s, "app-password", "revoke", USER, "#99999", why="no app password")
    lst = ok(s, "app-password", "list", USER).out
    assert "laptop" in lst and "phone" not in lst and "tablet" not in lst


def test_totp_remove(make_server):
    s = make_server()
    secret, t = confirmed_user(s, USER)
    refused(s, "totp", "remove", USER, why="needs a current code")
    refused(s, "totp", "remove", USER, "--code", totp(secret, t), why="already used")
    refused(s, "totp", "remove", USER, "--code", "000000" if totp(secret, t + 1) != "000000" else "000001",
            why="wrong TOTP")
    ok(s, "totp", "remove", USER, "--code", "-", input=totp(secret, t + 1) + "\n")
    assert "totp:         none" in ok(s, "totp", "status", USER).out
    assert db(s).execute("select totp_secret from users").fetchone()[0] == ""
    refused(s, "totp", "remove", USER, why="no TOTP")
    ok(s, "app-password", "add", USER, "--label", "phone")
    # A pending enrolment is replaced by a new one and can be dropped without a code.
    a, _ = enrol(s, USER)
    b, _ = enrol(s, USER)
    assert a != b
    ok(s, "totp", "remove", USER)


def test_require_mfa(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    r = ok(s, "policy", "set", USER, "--require-mfa", "yes")
    assert "no confirmed TOTP" in r.err
    refused(s, "app-password", "add", USER, "--label", "phone", why="enrol TOTP first")
    secret, _ = enrol(s, USER)
    refused(s, "app-password", "add", USER, "--label", "phone", why="enrol TOTP first")  # pending is not enough
    t = fresh_step()
    ok(s, "totp", "confirm", USER, totp(secret, t))
    refused(s, "app-password", "add", USER, "--label", "phone", why="code is required")
    r = ok(s, "app-password", "add", USER, "--label", "phone", "--totp", totp(secret, t + 1))
    assert APPPW_RE.search(r.out)


def test_policy_set_and_show(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    sh = ok(s, "policy", "show", USER).out
    assert "methods:       default (password,app,oauth,scram)" in sh
    assert "networks:      any" in sh and "require-mfa:   no" in sh and "pop3:          on" in sh
    r = ok(s, "policy", "set", USER, "--methods", "app,scram", "--networks", "192.0.2.0/24,2001:db8::/32",
           "--pop3", "off")
    assert "methods:       app,scram" in r.out
    row = db(s).execute("select methods, networks, require_mfa, pop3_enabled from users").fetchone()
    assert row == (2 | 8, "192.0.2.0/24 2001:db8::/32", 0, 0)
    sh = ok(s, "policy", "show", USER).out
    assert "192.0.2.0/24 2001:db8::/32" in sh and "pop3:          off" in sh
    ok(s, "policy", "set", USER, "--methods", "default", "--networks", "any", "--pop3", "on", "--require-mfa", "yes")
    assert db(s).execute("select methods, networks, require_mfa, pop3_enabled from users").fetchone() == (0, "", 1, 1)
    r = ok(s, "policy", "set", USER, "--methods", "password")
    assert "cannot log in" in r.err  # require-mfa with only the account password
    # Bad values change nothing.
    before = db(s).execute("select methods, networks, require_mfa, pop3_enabled from users").fetchone()
    refused(s, "policy", "set", USER, "--methods", "password,telepathy", rc=2, why="telepathy")
    refused(s, "policy", "set", USER, "--methods", "", rc=2)
    refused(s, "policy", "set", USER, "--networks", "10.0.0.0/33", rc=2, why="--networks")
    refused(s, "policy", "set", USER, "--require-mfa", "maybe", rc=2, why="yes or no")
    refused(s, "policy", "set", USER, "--pop3", "sometimes", rc=2, why="on or off")
    refused(s, "policy", "set", USER, rc=2, why="nothing to change")
    refused(s, "policy", "set", USER, "--bogus", "1", rc=2, why="unknown option")
    refused(s, "policy", "show", "nobody@example.com", why="no such user")
    refused(s, "policy", "set", "nobody@example.com", "--pop3", "off", why="no such user")
    assert db(s).execute("select methods, networks, require_mfa, pop3_enabled from users").fetchone() == before


def test_argument_errors(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    refused(s, "app-password", "add", USER, rc=2, why="--label")
    refused(s, "app-password", "add", USER, "--label", "#1", rc=2, why="not starting with '#'")
    refused(s, "app-password", "add", USER, "--label", "x" * 65, rc=2)
    refused(s, "app-password", "add", USER, "--label", "a", "--expires", "0", rc=2, why="DAYS")
    refused(s, "app-password", "add", USER, "--label", "a", "--expires", "ten", rc=2, why="DAYS")
    refused(s, "app-password", "add", USER, "--label", "a", "--expires", "99999", rc=2, why="DAYS")
    refused(s, "app-password", "add", USER, "--label", "a", "--networks", "not-an-address", rc=2)
    refused(s, "app-password", "add", USER, "--label", "a", "--totp", "12345", rc=2, why="6 digits")
    refused(s, "app-password", "add", USER, "--label", "a", "--totp", "-", input="abcdef\n", rc=2)
    refused(s, "app-password", "add", "nobody@example.com", "--label", "a", why="no such user")
    refused(s, "app-password", "list", "nobody@example.com")
    refused(s, "app-password", "frobnicate", USER, rc=2, why="unknown command")
    refused(s, "app-password", "revoke", USER, rc=2, why="LABEL")
    refused(s, "totp", "enroll", USER, "--issuer", "a:b", rc=2, why="--issuer")
    refused(s, "totp", "enroll", "nobody@example.com", why="no such user")
    refused(s, "totp", "confirm", USER, rc=2, why="CODE")
    refused(s, "totp", "confirm", USER, "123456", why="no TOTP enrolment")
    refused(s, "totp", "frobnicate", rc=2)
    refused(s, "policy", "frobnicate", USER, rc=2)
    assert db(s).execute("select count(*) from app_passwords").fetchone()[0] == 0
    for cmd in ("totp", "app-password", "policy"):
        r = ctl(s, cmd, "--help")
        assert r.returncode == 0 and "usage: popsctl" in r.out
    top = subprocess.run([POPSCTL, "--help"], capture_output=True, text=True).stdout
    for word in ("totp enroll", "app-password add", "policy set"):
        assert word in top


def test_enroll_qr_code_scans(make_server, tmp_path):
    """The QR code printed by totp enroll decodes (zbarimg) to the printed URI."""
    zbarimg = shutil.which("zbarimg")
    s = make_server()
    s.add_user(USER, PASSWORD)
    r = ok(s, "totp", "enroll", USER, "--issuer", "Example Co")
    uri = [l for l in r.out.splitlines() if l.startswith("otpauth://")][0]
    assert uri.startswith("otpauth://totp/Example%20Co:alice%40example.com?")
    art = [l for l in r.out.splitlines() if l and set(l) <= set("\u2588\u2580\u2584 ")]
    assert len(art) > 10 and len({len(l) for l in art}) == 1
    if zbarimg is None:
        pytest.skip("zbarimg (zbar-tools) not installed")
    cells = {"\u2588": (0, 0), "\u2580": (0, 1), "\u2584": (1, 0), " ": (1, 1)}  # (top, bottom) dark?
    rows = []
    for l in art:
        rows.append([cells[c][0] for c in l])
        rows.append([cells[c][1] for c in l])
    scale = 6
    pbm = tmp_path / "qr.pbm"
    with open(pbm, "w") as f:
        f.write("P1\n%d %d\n" % (len(rows[0]) * scale, len(rows) * scale))
        for row in rows:
            line = " ".join(str(v) for v in row for _ in range(scale))
            for _ in range(scale):
                f.write(line + "\n")
    out = subprocess.run([zbarimg, "-q", "--raw", str(pbm)], capture_output=True, text=True, timeout=30)
    assert out.stdout.strip() == uri
    assert "\u2588" not in ok(s, "totp", "enroll", USER, "--no-qr").out
