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
