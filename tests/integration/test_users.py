"""popsctl user management and the passwd-file backend with Dovecot's schemes."""
import crypt
import subprocess

import pytest

from conftest import PASSWORD

USER = "alice@example.com"


def test_popsctl_user_lifecycle(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    r = s.popsctl("user", "add", USER, input=b"another long password\n", check=False)
    assert r.returncode != 0 and b"exist" in r.stderr
    r = s.popsctl("user", "add", "short@example.com", input=b"short\n", check=False)
    assert r.returncode != 0, "passwords under 12 characters are refused"
    gen = s.popsctl("user", "add", "gen@example.com", "--generate")
    pw = gen.stdout.decode().split("password:")[1].strip()
    assert len(pw) >= 16
    s.maildir("gen@example.com")
    lst = s.popsctl("user", "list").stdout.decode()
    assert USER in lst and "gen@example.com" in lst
    s.start()
    p = s.pop3s()
    p.user("gen@example.com")
    assert p.pass_(pw).startswith(b"+OK")
    p.quit()
    s.popsctl("user", "passwd", USER, input=b"a brand new password\n")
    p = s.pop3s()
    p.user(USER)
    with pytest.raises(Exception):
        p.pass_(PASSWORD)
    p = s.pop3s()
    p.user(USER)
    assert p.pass_("a brand new password").startswith(b"+OK")
    p.quit()
    s.popsctl("user", "del", "gen@example.com")
    p = s.pop3s()
    p.user("gen@example.com")
    with pytest.raises(Exception):
        p.pass_(pw)


def openssl_passwd(flag, pw):
    return subprocess.run(["openssl", "passwd", flag, pw], capture_output=True, text=True, check=True).stdout.strip()


@pytest.mark.parametrize("scheme", ["SHA512-CRYPT", "SHA256-CRYPT", "BLF-CRYPT", "CRYPT", "bare"])
def test_passwd_file_schemes(make_server, scheme):
    s = make_server(userdb="passwd")
    if scheme == "SHA512-CRYPT":
        h = "{SHA512-CRYPT}" + openssl_passwd("-6", PASSWORD)
    elif scheme == "SHA256-CRYPT":
        h = "{SHA256-CRYPT}" + openssl_passwd("-5", PASSWORD)
    elif scheme == "BLF-CRYPT":
        h = "{BLF-CRYPT}" + crypt.crypt(PASSWORD, crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))
    elif scheme == "CRYPT":
        h = "{CRYPT}" + openssl_passwd("-6", PASSWORD)
    else:
        h = openssl_passwd("-6", PASSWORD)
    s.write_passwd(["# Dovecot passwd-file", "%s:%s:::::" % (USER, h), "bob@example.com:{SHA512-CRYPT}%s::::::"
                    % openssl_passwd("-6", "bobs password here")])
    s.maildir(USER)
    s.start()
    p = s.pop3s()
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")
    p.quit()


def test_passwd_file_argon2id_from_popsctl_hash(make_server):
    # popsctl writes {ARGON2ID} hashes; the same string works in a passwd-file.
    s = make_server()
    s.add_user(USER, PASSWORD)
    import sqlite3
    h = sqlite3.connect(s.db).execute("select password from users where name=?", (USER,)).fetchone()[0]
    assert h.startswith("{ARGON2ID}$argon2id$")
    t = make_server(name="t", userdb="passwd")
    t.write_passwd(["%s:%s::::::" % (USER, h)])
    t.maildir(USER)
    t.start()
    p = t.pop3s()
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")


def test_weak_scheme_refused_unless_allowed(make_server):
    s = make_server(userdb="passwd")
    s.write_passwd(["%s:{PLAIN}%s::::::" % (USER, PASSWORD)])
    s.maildir(USER)
    s.start()
    p = s.pop3s()
    p.user(USER)
    with pytest.raises(Exception):
        p.pass_(PASSWORD)
    s.wait_log("event=bad_password_hash")
    s.stop()
    t = make_server(name="t", userdb="passwd", extra_conf="")
    t.write_passwd(["%s:{PLAIN}%s::::::" % (USER, PASSWORD)])
    with open(t.conf_path) as f:
        conf = f.read().replace("[userdb]\n", "[userdb]\nallow_weak_schemes = yes\n")
    with open(t.conf_path, "w") as f:
        f.write(conf)
    t.maildir(USER)
    t.start()
    p = t.pop3s()
    p.user(USER)
    assert p.pass_(PASSWORD).startswith(b"+OK")


def test_dummy_hash_follows_the_users_scheme(make_server):
    # With SHA512-CRYPT users, unknown users are checked against a SHA512-CRYPT dummy of the same
    # cost, not a (much slower) Argon2id one that would tell them apart.
    s = make_server(userdb="passwd")
    s.write_passwd(["%s:{SHA512-CRYPT}%s::::::" % (USER, openssl_passwd("-6", PASSWORD))])
    s.maildir(USER)
    s.start()
    s.wait_log("dummy_scheme=SHA512-CRYPT")


def test_lowercase_names(make_server):
    # [userdb] lowercase_names = yes (Dovecot's default %Lu): a client configured
    # with "Alice@Example.COM" reaches alice@example.com, by every mechanism, and
    # the defence engine counts its failures against the one account.
    from sasl_clients import ScramClient, auth_exchange, scram_login
    s = make_server(extra_userdb="lowercase_names = yes")
    s.add_user("alice@example.com", PASSWORD)
    s.deliver("alice@example.com", b"Subject: x\n\nbody\n")
    s.start()
    r = s.raw()
    r.line()
    assert r.cmd("USER Alice@Example.COM").startswith("+OK")
    assert r.cmd("PASS " + PASSWORD).startswith("+OK")
    assert r.cmd("STAT").startswith("+OK 1 ")
    r.cmd("QUIT")
    s.wait_log('event=login sid=')
    assert 'user="alice@example.com" mech=USER' in s.log()
    r = s.raw()
    r.line()
    _, line = auth_exchange(r, "PLAIN", [b"\0ALICE@example.com\0" + PASSWORD.encode()])
    assert line.startswith("+OK"), line
    r.cmd("QUIT")
    r = s.raw()
    r.line()
    line, ok = scram_login(r, "SCRAM-SHA-256", ScramClient("aLiCe@example.com", PASSWORD))
    assert line.startswith("+OK") and ok, line
    r.cmd("QUIT")
    r = s.raw()
    r.line()
    r.cmd("USER ALICE@EXAMPLE.COM")
    assert r.cmd("PASS wrong password here").startswith("-ERR")
    r.close()
    s.wait_log('event=auth_failure')
    # The front logs the name as typed; the defence engine files it under the account.
    events = s.ctl("events", "alice@example.com").stdout
    assert "fail" in events and "USER" in events, events
    other = s.ctl("events", "ALICE@EXAMPLE.COM").stdout.strip().splitlines()
    assert len(other) == 1 and other[0].startswith("time"), "a second account appeared: %r" % other


def test_names_are_exact_by_default(make_server):
    s = make_server()
    s.add_user("alice@example.com", PASSWORD)
    s.start()
    r = s.raw()
    r.line()
    r.cmd("USER Alice@Example.com")
    assert r.cmd("PASS " + PASSWORD).startswith("-ERR [AUTH]")
    r.close()
