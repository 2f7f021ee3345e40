"""Maildir as delivery agents write it: sizes, names with ,S= and ,W=, cur/ with flags, caches."""
import os

from conftest import PASSWORD

USER = "alice@example.com"


def login(server):
    p = server.pop3s()
    p.user(USER)
    p.pass_(PASSWORD)
    return p


def test_dovecot_style_names_and_flags(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    body = b"Subject: w\n\nline\n"
    s.deliver(USER, body, name="1700000001.M1P1.host,S=%d,W=%d" % (len(body), len(body) + 3))
    s.deliver(USER, b"Subject: seen\n\nold\n", name="1700000002.M2P2.host:2,S", sub="cur")
    s.start()
    p = login(s)
    uidl = [l.split()[1] for l in p.uidl()[1]]
    assert uidl == [b"1700000001.M1P1.host,S=%d,W=%d" % (len(body), len(body) + 3), b"1700000002.M2P2.host"]
    assert p.list()[1][0] == b"1 %d" % (len(body) + 3), "W= is the wire size"
    assert p.retr(2)[1][-1] == b"old"
    p.quit()


def test_message_renamed_during_session(server):
    r = server.raw()
    r.login(USER, PASSWORD)
    md = server.maildir(USER)
    name = sorted(os.listdir(os.path.join(md, "new")))[0]
    os.rename(os.path.join(md, "new", name), os.path.join(md, "cur", name + ":2,S"))
    assert r.cmd("RETR 1").startswith("+OK")
    assert r.multiline()[-1] == "first message"
    assert r.cmd("DELE 1").startswith("+OK")
    assert r.cmd("QUIT").startswith("+OK")
    assert len(server.messages(USER)) == 2


def test_vanished_message(server):
    r = server.raw()
    r.login(USER, PASSWORD)
    md = server.maildir(USER)
    name = sorted(os.listdir(os.path.join(md, "new")))[0]
    os.unlink(os.path.join(md, "new", name))
    assert r.cmd("RETR 1").startswith("-ERR [SYS/PERM]")
    assert r.cmd("DELE 1").startswith("+OK")
    assert r.cmd("QUIT").startswith("+OK"), "deleting a vanished message is not an error"


def test_size_cache_is_used_and_survives_corruption(server):
    p = login(server)
    first = p.list()[1]
    p.quit()
    md = server.maildir(USER)
    cache = os.path.join(md, "popsd.sizes")
    assert os.path.exists(cache), "sizes of messages without W= are cached"
    with open(cache, "wb") as f:
        f.write(b"garbage \xff\x00 not a cache\n1 2 3 4 5\n")
    p = login(server)
    assert p.list()[1] == first
    p.quit()


def test_empty_mailbox_created(make_server):
    s = make_server()
    s.add_user(USER, PASSWORD)
    import shutil
    shutil.rmtree(s.maildir(USER))
    s.start()
    p = login(s)
    assert p.stat() == (0, 0)
    p.quit()


def test_create_builds_the_whole_path_for_a_new_domain(make_server):
    s = make_server()
    s.add_user("first@new-domain.example", PASSWORD)
    import shutil
    shutil.rmtree(os.path.join(s.mail_root, "new-domain.example"))
    s.start()
    p = s.pop3s()
    p.user("first@new-domain.example")
    p.pass_(PASSWORD)
    assert p.stat() == (0, 0)
    p.quit()
    md = os.path.join(s.mail_root, "new-domain.example", "first", "Maildir")
    assert all(os.path.isdir(os.path.join(md, d)) for d in ("cur", "new", "tmp"))
    assert os.stat(md).st_uid == s.vmail.pw_uid, "created by the mail user"
