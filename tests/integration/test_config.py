"""popsd -t / -n and strict configuration errors."""
import os
import subprocess

from popsd_harness import POPSD


def check(path):
    return subprocess.run([POPSD, "-t", "-c", path], capture_output=True, text=True)


def test_valid_config_and_print(make_server):
    s = make_server()
    r = check(s.conf_path)
    assert r.returncode == 0, r.stderr
    n = subprocess.run([POPSD, "-n", "-c", s.conf_path], capture_output=True, text=True)
    assert n.returncode == 0
    assert "max_connections_per_source" in n.stdout and "[listener pop3s]" in n.stdout
    assert "timeout_idle = 600s" in n.stdout


def test_unknown_key_reports_file_and_line(make_server):
    s = make_server()
    with open(s.conf_path) as f:
        lines = f.read().split("\n")
    lines.insert(2, "frobnicate = yes")
    with open(s.conf_path, "w") as f:
        f.write("\n".join(lines))
    r = check(s.conf_path)
    assert r.returncode != 0
    assert "popsd.conf:3: unknown key 'frobnicate' in [server]" in r.stderr, r.stderr


def test_bad_value(make_server):
    s = make_server(extra_server="max_bad_commands = lots")
    r = check(s.conf_path)
    assert r.returncode != 0 and "expected an integer" in r.stderr


def test_world_writable_config_refused(make_server):
    s = make_server()
    os.chmod(s.conf_path, 0o666)
    r = check(s.conf_path)
    assert r.returncode != 0 and "writable" in r.stderr


def test_missing_file(workdir):
    r = check(os.path.join(workdir, "nope.conf"))
    assert r.returncode != 0 and "No such file" in r.stderr
