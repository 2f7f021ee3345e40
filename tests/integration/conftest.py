import os
import shutil
import tempfile

import pytest

from popsd_harness import PKI, Server

PASSWORD = "correct horse battery"


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: long checks that the ASan/UBSan run skips (make SAN=1 integration)")


@pytest.fixture(scope="session")
def pki():
    d = tempfile.mkdtemp(prefix="popsd-pki-")
    os.chmod(d, 0o755)
    p = PKI(d)
    yield p
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def workdir():
    d = tempfile.mkdtemp(prefix="popsd-test-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def make_server(pki, workdir):
    """Factory: make_server(**kw) -> a configured (not started) Server (or cls=a subclass); all are
    stopped, and their logs checked for sanitizer reports, at teardown."""
    servers = []

    def make(name="s", cls=Server, **kw):
        s = cls(pki, os.path.join(workdir, name), **kw)
        servers.append(s)
        return s

    yield make
    for s in servers:
        s.stop()


@pytest.fixture
def server(make_server):
    """A running popsd with user alice@example.com (password PASSWORD) and three messages."""
    s = make_server()
    s.add_user("alice@example.com", PASSWORD)
    s.deliver("alice@example.com", b"From: bob@example.com\nSubject: one\n\nfirst message\n")
    s.deliver("alice@example.com", b"From: bob@example.com\nSubject: two\n\n.leading dot\n..two dots\nend\n")
    s.deliver("alice@example.com", b"From: carol@example.com\r\nSubject: three\r\n\r\ncrlf body\r\nline 2\r\n")
    s.start()
    return s
