"""RFC 1939 / 2449 / 3206 / 5034 behaviour against the running daemon, with Python's poplib and a raw client."""
import base64
import poplib

import pytest

from conftest import PASSWORD

USER = "alice@example.com"


def test_full_session_with_poplib(server):
    p = server.pop3s()
    assert p.getwelcome().startswith(b"+OK")
    assert "<" not in p.getwelcome().decode(), "no APOP timestamp in the greeting"
    p.user(USER)
    p.pass_(PASSWORD)
    count, size = p.stat()
    assert count == 3
    resp, listing, _ = p.list()
    sizes = [int(l.split()[1]) for l in listing]
    assert sum(sizes) == size
    disk = server.messages(USER)
    uidls = [l.split()[1].decode() for l in p.uidl()[1]]
    assert sorted(uidls) == sorted(disk)
    for i, uid in enumerate(uidls, 1):
        resp, lines, octets = p.retr(i)
        # poplib strips the terminator and undoes dot-stuffing: lines are the message.
        want = disk[uid].replace(b"\r\n", b"\n").split(b"\n")
        if want[-1] == b"":
            want.pop()
        assert lines == want
        # LIST size is the message with CRLF line ends, exactly.
        assert sizes[i - 1] == len(disk[uid].replace(b"\r\n", b"\n").replace(b"\n", b"\r\n"))
    p.quit()


def test_capa_tls_port(server):
    r = server.raw()
    r.line()
    assert r.cmd("CAPA").startswith("+OK")
    caps = r.multiline()
    for c in ("TOP", "UIDL", "RESP-CODES", "AUTH-RESP-CODE", "PIPELINING", "USER", "SASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN", "EXPIRE NEVER"):
        assert c in caps, caps
    assert "STLS" not in caps
    assert not any(c.startswith("IMPLEMENTATION") for c in caps), "version must not leak by default"
    assert any(c.startswith("LOGIN-DELAY") for c in caps)


def test_implementation_only_when_configured(make_server):
    s = make_server(extra_server="implementation = ExampleMail")
    s.add_user(USER, PASSWORD)
    s.start()
    r = s.raw()
    r.line()
    r.cmd("CAPA")
    assert "IMPLEMENTATION ExampleMail" in r.multiline()


def test_capa_after_login_drops_auth_caps(server):
    r = server.raw()
    r.login(USER, PASSWORD)
    r.cmd("CAPA")
    caps = r.multiline()
    assert "USER" not in caps and not any(c.startswith("SASL") for c in caps)
    assert "TOP" in caps and "UIDL" in caps


def test_plain_port_refuses_credentials_before_tls(server):
    r = server.raw(tls=False)
    assert r.line().startswith("+OK")
    r.cmd("CAPA")
    caps = r.multiline()
    assert "STLS" in caps
    assert "USER" not in caps and not any(c.startswith("SASL") for c in caps)
    assert r.cmd("USER " + USER).startswith("-ERR [AUTH]")
    assert r.cmd("PASS " + PASSWORD).startswith("-ERR [AUTH]")
    plain = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()
    assert r.cmd("AUTH PLAIN " + plain).startswith("-ERR [AUTH]")
    r.cmd("AUTH")
    assert r.multiline() == [], "no mechanism that reveals a password is listed in clear"
    r.starttls()
    r.cmd("CAPA")
    caps = r.multiline()
    assert "USER" in caps and "SASL SCRAM-SHA-256-PLUS SCRAM-SHA-256 PLAIN" in caps and "STLS" not in caps
    assert r.cmd("USER " + USER).startswith("+OK")
    assert r.cmd("PASS " + PASSWORD).startswith("+OK")
    assert r.cmd("STAT").startswith("+OK 3 ")
    r.close()


def test_stls_injection_refused(server):
    """Bytes pipelined behind STLS must never be executed as if they came through TLS."""
    r = server.raw(tls=False)
    r.line()
    r.send("STLS\r\nCAPA\r\n")
    reply = r.line()
    assert reply.startswith("-ERR"), reply
    assert r.closed()
    server.wait_log("event=stls_injection")


def test_stls_twice_and_on_tls_port(server):
    r = server.raw(tls=False)
    r.line()
    r.starttls()
    assert r.cmd("STLS").startswith("-ERR")
    r2 = server.raw()
    r2.line()
    assert r2.cmd("STLS").startswith("-ERR")


def test_auth_plain_variants(server):
    creds = base64.b64encode(b"\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()
    # initial response
    r = server.raw()
    r.line()
    assert r.cmd("AUTH PLAIN " + creds).startswith("+OK")
    r.close()
    # continuation
    r = server.raw()
    r.line()
    assert r.cmd("AUTH PLAIN") == "+ "
    assert r.cmd(creds).startswith("+OK")
    r.close()
    # cancel, bad base64, unknown mechanism, bare AUTH listing
    r = server.raw()
    r.line()
    assert r.cmd("AUTH PLAIN") == "+ "
    assert r.cmd("*").startswith("-ERR")
    assert r.cmd("AUTH PLAIN !!!!").startswith("-ERR")
    assert r.cmd("AUTH CRAM-MD5").startswith("-ERR")
    assert r.cmd("AUTH").startswith("+OK")
    assert r.multiline() == ["SCRAM-SHA-256-PLUS", "SCRAM-SHA-256", "PLAIN"]
    # authzid equal to authcid is fine; a different one is not (no proxy login)
    other = base64.b64encode(b"bob@example.com\0" + USER.encode() + b"\0" + PASSWORD.encode()).decode()
    r2 = server.raw()
    r2.line()
    assert r2.cmd("AUTH PLAIN " + other).startswith("-ERR [AUTH]")


def test_wrong_password_and_unknown_user_look_the_same(server):
    r = server.raw()
    r.line()
    assert r.cmd("USER nobody@example.com") == "+OK Send your password."
    r.cmd("USER " + USER)
    a = r.cmd("PASS wrong-password")
    r.cmd("USER nobody@example.com")
    b = r.cmd("PASS wrong-password")
    assert a == b == "-ERR [AUTH] Authentication failed."
    server.wait_log('user="nobody@example.com" mech=USER')
    log = server.log()
    assert "wrong-password" not in log, "secrets never reach the log"
    assert PASSWORD not in log


def test_auth_failure_logged_at_once_with_delay(server):
    r = server.raw()
    r.line()
    r.cmd("USER " + USER)
    r.send("PASS nope\r\n")
    # The failure is logged when it happens, before the delayed reply.
    server.wait_log("event=auth_failure", timeout=5)
    assert r.line().startswith("-ERR [AUTH]")


def test_auth_attempt_limit_disconnects(server):
    r = server.raw()
    r.line()
    for i in range(3):
        r.cmd("USER " + USER)
        assert r.cmd("PASS bad%d" % i).startswith("-ERR [AUTH]")
    assert r.closed()
    server.wait_log("event=auth_attempts_exceeded")


@pytest.mark.parametrize("arg", ["4294967297", "1x", "-1", "0", "99", "", "1 2", "00000000000000000001"])
def test_strict_message_numbers(server, arg):
    r = server.raw()
    r.login(USER, PASSWORD)
    reply = r.cmd(("RETR " + arg).rstrip())
    # "00000000000000000001": more than 10 digits is noise, not message 1.
    assert reply.startswith("-ERR"), reply
    assert r.cmd("NOOP").startswith("+OK"), "the session goes on"


def test_transaction_commands(server):
    r = server.raw()
    r.login(USER, PASSWORD)
    stat = r.cmd("STAT").split()
    assert stat[0] == "+OK" and stat[1] == "3"
    assert r.cmd("LIST 2").startswith("+OK 2 ")
    assert r.cmd("UIDL 3").startswith("+OK 3 ")
    assert r.cmd("DELE 2").startswith("+OK")
    assert r.cmd("DELE 2").startswith("-ERR")
    assert r.cmd("RETR 2").startswith("-ERR")
    assert r.cmd("LIST 2").startswith("-ERR")
    assert r.cmd("STAT").split()[1] == "2"
    r.cmd("LIST")
    assert [l.split()[0] for l in r.multiline()] == ["1", "3"]
    assert r.cmd("RSET").startswith("+OK")
    assert r.cmd("STAT").split()[1] == "3"
    assert r.cmd("TOP 2 0").startswith("+OK")
    top = r.multiline()
    assert top == ["From: bob@example.com", "Subject: two", ""]
    assert r.cmd("TOP 2 1").startswith("+OK")
    assert r.multiline()[-1] == "..leading dot", "dot-stuffed on the wire"
    assert r.cmd("TOP 2 x").startswith("-ERR")
    assert r.cmd("USER x").startswith("-ERR"), "USER is not valid in TRANSACTION"
    assert r.cmd("NOOP") == "+OK"
    assert r.cmd("QUIT").startswith("+OK")


def test_pipelining(server):
    r = server.raw()
    r.login(USER, PASSWORD)
    r.send("STAT\r\nLIST 1\r\nUIDL 1\r\nRETR 1\r\nNOOP\r\n")
    assert r.line().startswith("+OK 3")
    assert r.line().startswith("+OK 1 ")
    assert r.line().startswith("+OK 1 ")
    assert r.line().startswith("+OK")
    body = r.multiline()
    assert body[-1] == "first message"
    assert r.line().startswith("+OK")


def test_pipelined_burst_while_waiting_for_authd(server):
    """48 KB of commands sent behind PASS, while the session waits for authd: the front
    stops reading at 16 KB of input, with more already read into OpenSSL's buffer, where
    epoll cannot see it. Every command must still be answered, in order, and QUIT honoured."""
    n = 8000
    r = server.raw(timeout=20)
    assert r.line().startswith("+OK")
    assert r.cmd("USER " + USER).startswith("+OK")
    r.send("PASS " + PASSWORD + "\r\n" + "NOOP\r\n" * n + "STAT\r\nQUIT\r\n")
    assert r.line().startswith("+OK"), "PASS"
    for i in range(n):
        assert r.line() == "+OK", "NOOP %d" % i
    assert r.line().startswith("+OK 3 ")
    assert r.line().startswith("+OK")
    assert r.closed()
    server.wait_log("reason=quit")


def test_deletions_only_at_quit(server):
    before = server.messages(USER)
    p = server.pop3s()
    p.user(USER)
    p.pass_(PASSWORD)
    p.dele(1)
    p.dele(3)
    p.quit()
    after = server.messages(USER)
    assert len(after) == 1
    assert list(after.values())[0] == sorted(before.items())[1][1]


def test_drop_before_quit_deletes_nothing(server):
    before = server.messages(USER)
    r = server.raw()
    r.login(USER, PASSWORD)
    assert r.cmd("DELE 1").startswith("+OK")
    assert r.cmd("DELE 2").startswith("+OK")
    r.close()
    server.wait_log("reason=client_closed")
    assert server.messages(USER) == before


def test_uidl_stable_across_sessions(server):
    def uidls():
        p = server.pop3s()
        p.user(USER)
        p.pass_(PASSWORD)
        u = p.uidl()[1]
        p.quit()
        return u
    assert uidls() == uidls()


def test_in_use(server):
    a = server.raw()
    a.login(USER, PASSWORD)
    b = server.raw()
    b.line()
    b.cmd("USER " + USER)
    assert b.cmd("PASS " + PASSWORD).startswith("-ERR [IN-USE]")
    a.cmd("QUIT")
    a.closed()
    b.cmd("USER " + USER)
    assert b.cmd("PASS " + PASSWORD).startswith("+OK"), "the lock is released at QUIT"


def test_mail_delivered_during_session_is_not_seen_or_touched(server):
    r = server.raw()
    r.login(USER, PASSWORD)
    late = server.deliver(USER, b"Subject: late\n\nlate\n")
    assert r.cmd("STAT").split()[1] == "3"
    for i in (1, 2, 3):
        r.cmd("DELE %d" % i)
    assert r.cmd("QUIT").startswith("+OK")
    r.closed()
    assert list(server.messages(USER)) == [late]


def test_login_delay_enforced(make_server):
    s = make_server(extra_server="login_delay = 60")
    s.add_user(USER, PASSWORD)
    s.start()
    r = s.raw()
    r.login(USER, PASSWORD)
    r.cmd("QUIT")
    r2 = s.raw()
    r2.line()
    r2.cmd("USER " + USER)
    assert r2.cmd("PASS " + PASSWORD).startswith("-ERR [LOGIN-DELAY]")
    r2.cmd("CAPA")
    assert "LOGIN-DELAY 60" in r2.multiline()


def test_password_with_spaces(make_server):
    s = make_server()
    s.add_user("spaces@example.com", "with some blanks in it")
    s.start()
    p = s.pop3s()
    p.user("spaces@example.com")
    assert p.pass_("with some blanks in it").startswith(b"+OK")
