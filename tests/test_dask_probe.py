"""Bounded waits for a Dask scheduler: a server that is not one (silent, HTTP, a text banner, huge
frame lengths, other protocols) is named as such in one line, exit 2, within the stated timeouts,
and a run that could not start leaves no directory, even when SIGTERM ends the wait."""

import contextlib
import http.server
import os
import signal
import socket
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from softreg.engine import probe
from tests.strategies import default_sigint, run

REPO = Path(__file__).resolve().parent.parent
NOT_DASK = "not a Dask scheduler (is the port right? a scheduler listens on 8786 unless told otherwise)"


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        f"data:\n  source: builtin:iris\n  cache: {tmp_path / 'cache'}\n  shards: 2\n"
        "optim:\n  epochs: 2\noutput:\n  plots: false\nengine:\n  kind: dask\n"
    )
    return path


@pytest.fixture
def quick(monkeypatch):
    """Short waits: the facts checked do not depend on their length."""
    monkeypatch.setattr(probe, "HANDSHAKE_SECONDS", 0.5)
    monkeypatch.setattr(probe, "HTTP_SECONDS", 5.0)


@pytest.fixture
def silent():
    """A listener on 127.0.0.1 that never accepts: the kernel completes connections, nobody speaks."""
    with socket.create_server(("127.0.0.1", 0)) as listener:
        yield listener


def serve_once(send: bytes):
    """A server that accepts one connection and sends ``send`` at once; its address."""
    listener = socket.create_server(("127.0.0.1", 0))

    def answer():
        with listener, listener.accept()[0] as connection, contextlib.suppress(OSError):
            connection.sendall(send)
            connection.recv(1)  # until the client hangs up (or resets)

    threading.Thread(target=answer, daemon=True).start()
    return listener.getsockname()[1]


class Quiet(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):  # stderr belongs to the command under test
        pass


class QuietServer(http.server.ThreadingHTTPServer):
    def handle_error(self, request, client_address):  # the probe hangs up once it has read "HTTP/"
        pass


def assert_refused(code, stderr, address, reason, run_dir):
    assert code == 2, stderr
    assert stderr == f"softreg: error: engine.scheduler {address}: {reason}\n"
    assert not run_dir.exists()


def test_a_silent_listener_is_not_a_scheduler(config, quick, silent, tmp_path):
    """A listener that accepts and says nothing: exit 2 after the handshake timeout, no run directory."""
    address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", "--quiet",
                          "--set", f"engine.scheduler={address}")
    reason = f"the server accepted the connection but sent nothing within 0.5 s: {NOT_DASK}"
    assert_refused(code, stderr, address, reason, tmp_path / "run")


def test_an_http_server_is_named(config, quick, tmp_path):
    """An HTTP server (silent until asked, then answering GET /) is named an HTTP server."""
    server = QuietServer(("127.0.0.1", 0), Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        address = f"tcp://127.0.0.1:{server.server_address[1]}"
        code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", "--quiet",
                              "--set", f"engine.scheduler={address}")
    finally:
        server.shutdown()
        server.server_close()
    assert_refused(code, stderr, address, f"an HTTP server answers there: {NOT_DASK}", tmp_path / "run")


@pytest.mark.parametrize(
    "send, reason",
    [
        ((2**62).to_bytes(8, "little") * 2,
         f"the server's first message claims {2**62} bytes, where a Dask handshake takes a few hundred: {NOT_DASK}"),
        (b"SSH-2.0-OpenSSH_9.6\r\n", f"the server greeted with text ('SSH-2.0-'): {NOT_DASK}"),
        (b"\x00\x01", f"the server sent 2 bytes and no more: {NOT_DASK}"),
    ],
    ids=["huge-length", "ssh-banner", "short"],
)
def test_servers_that_speak_otherwise_are_refused_at_once(config, quick, tmp_path, send, reason):
    """Huge frame lengths are not "out of memory"; a banner is shown escaped; nothing is allocated."""
    address = f"tcp://127.0.0.1:{serve_once(send)}"
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", "--quiet",
                          "--set", f"engine.scheduler={address}")
    assert_refused(code, stderr, address, reason, tmp_path / "run")


@pytest.mark.parametrize("scheme", ["ucx", "ws", "tls"])
def test_other_protocols_are_one_line(config, tmp_path, scheme):
    """ucx://, ws:// and tls:// schedulers: one line naming the protocol softreg speaks, exit 2."""
    address = f"{scheme}://127.0.0.1:8786"
    code, _, stderr = run("train", "--config", config, "--out", tmp_path / "run", "--quiet",
                          "--set", f"engine.scheduler={address}")
    reason = f"softreg reaches Dask schedulers over tcp:// only, not {scheme}:// (give tcp://HOST:PORT)"
    assert_refused(code, stderr, address, reason, tmp_path / "run")


def test_sigterm_while_waiting_leaves_no_directory(config, silent, tmp_path):
    """SIGTERM while the handshake is awaited: exit 130, "nothing was written", and truly no
    directory, so the same command can run again."""
    address = f"tcp://127.0.0.1:{silent.getsockname()[1]}"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    process = subprocess.Popen(
        [sys.executable, "-m", "softreg", "train", "--config", str(config), "--out", str(tmp_path / "run"),
         "--quiet", "--set", f"engine.scheduler={address}"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, preexec_fn=default_sigint,
    )
    silent.settimeout(120)
    connection, _ = silent.accept()  # the command is now waiting for the handshake
    with connection:
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    assert process.returncode == 130 and stderr == "softreg: interrupted; nothing was written\n"
    assert not (tmp_path / "run").exists()
