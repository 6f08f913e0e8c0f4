"""Whether a Dask scheduler is there, found out in bounded time before dask connects.

distributed's `Client` reads the scheduler's handshake with no time limit: a server that
accepts the connection and stays silent (any HTTP server, a plain listener) keeps it waiting
forever, and one that sends other bytes makes it allocate whatever length they spell. A Dask
scheduler speaks first: on accepting a connection it sends its handshake, one message of a few
hundred bytes after an 8-byte little-endian length. So a plain socket connects (within the
connect timeout), waits `HANDSHAKE_SECONDS` for that length and message, and names what it
found instead; a silent server is asked for ``GET /`` and named an HTTP server if it answers so.

Standard library only: no dask import, nothing allocated from what the server says.
"""

from __future__ import annotations

import socket
import struct
import time

from softreg.errors import ClusterError
from softreg.escape import visible

HANDSHAKE_SECONDS = 10.0  # for the scheduler's handshake, once the connection is accepted
HTTP_SECONDS = 3.0  # for an answer to GET / from a server that sent nothing
MAX_HANDSHAKE_BYTES = 1 << 16  # a Dask handshake is a few hundred bytes
DEFAULT_PORT = 8786
NOT_DASK = "not a Dask scheduler (is the port right? a scheduler listens on 8786 unless told otherwise)"


def check_scheduler(address: str, connect_seconds: float) -> None:
    """Raise ClusterError (exit 2) unless a Dask scheduler answers at ``tcp://host:port`` ``address``.

    Waits at most ``connect_seconds`` to connect, then `HANDSHAKE_SECONDS` for the handshake
    (and `HTTP_SECONDS` more when nothing came, to name an HTTP server).
    """
    scheme, separator, location = address.partition("://")
    if not separator:
        scheme, location = "tcp", address
    if scheme != "tcp":
        raise ClusterError(
            f"engine.scheduler {address}: softreg reaches Dask schedulers over tcp:// only, not {scheme}:// "
            "(give tcp://HOST:PORT)"
        )
    host, port = _host_port(location.rstrip("/"))
    try:
        connection = socket.create_connection((host, port), timeout=connect_seconds)
    except (OSError, ValueError, OverflowError):  # refused, unreachable, unknown host, port out of range
        raise ClusterError(
            f"engine.scheduler {address}: cannot reach the Dask scheduler within {connect_seconds:g} s "
            "(start one with: dask scheduler)"
        ) from None
    with connection:
        _check_handshake(connection, address)


def _host_port(location: str) -> tuple[str, int]:
    """``host:port``, ``[::1]:port`` or a bare host (Dask's port 8786)."""
    if location.startswith("["):
        host, _, rest = location[1:].partition("]")
        return host, int(rest[1:]) if rest.startswith(":") and rest[1:].isdigit() else DEFAULT_PORT
    host, _, port = location.partition(":")
    return host, int(port) if port.isdigit() else DEFAULT_PORT


def _check_handshake(connection: socket.socket, address: str) -> None:
    head, closed = _receive(connection, 8, HANDSHAKE_SECONDS)
    where = f"engine.scheduler {address}"
    if not head:
        if closed:
            raise ClusterError(f"{where}: the server closed the connection without a word: {NOT_DASK}")
        if _answers_http(connection):
            raise ClusterError(f"{where}: an HTTP server answers there: {NOT_DASK}")
        raise ClusterError(
            f"{where}: the server accepted the connection but sent nothing within {HANDSHAKE_SECONDS:g} s: {NOT_DASK}"
        )
    if _text(head):
        raise ClusterError(f"{where}: the server greeted with text ({visible(repr(head.decode('ascii')))}): {NOT_DASK}")
    if len(head) < 8:
        raise ClusterError(f"{where}: the server sent {len(head)} bytes and no more: {NOT_DASK}")
    (length,) = struct.unpack("<Q", head)
    if not 0 < length <= MAX_HANDSHAKE_BYTES:
        raise ClusterError(
            f"{where}: the server's first message claims {length} bytes, where a Dask handshake takes a few "
            f"hundred: {NOT_DASK}"
        )
    body, _ = _receive(connection, length, HANDSHAKE_SECONDS)
    if len(body) < length:
        raise ClusterError(
            f"{where}: the server sent {len(body)} of the {length} bytes its first message claims within "
            f"{HANDSHAKE_SECONDS:g} s: {NOT_DASK}"
        )


def _receive(connection: socket.socket, size: int, seconds: float) -> tuple[bytes, bool]:
    """Up to ``size`` bytes, read until they are all there, the peer closes (then True), or ``seconds`` pass."""
    deadline = time.monotonic() + seconds
    received = bytearray()
    while len(received) < size:
        left = deadline - time.monotonic()
        if left <= 0:
            return bytes(received), False
        connection.settimeout(left)
        try:
            chunk = connection.recv(size - len(received))
        except TimeoutError:
            return bytes(received), False
        except OSError:
            return bytes(received), True
        if not chunk:
            return bytes(received), True
        received += chunk
    return bytes(received), False


def _answers_http(connection: socket.socket) -> bool:
    try:
        connection.sendall(b"GET / HTTP/1.0\r\n\r\n")
    except OSError:
        return False
    answer, _ = _receive(connection, 5, HTTP_SECONDS)
    return answer == b"HTTP/"


def _text(head: bytes) -> bool:
    """Whether the first bytes are printable ASCII (an SSH or SMTP banner, an HTTP answer): never a length."""
    return len(head) >= 4 and all(32 <= byte < 127 or byte in (9, 10, 13) for byte in head)
