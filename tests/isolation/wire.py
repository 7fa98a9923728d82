"""A TCP proxy that reads the PostgreSQL protocol a client sends and counts its round trips.

A client waits for the server at a simple ``Query`` message and at a ``Sync`` (the end of an
extended-protocol exchange, or of a pipeline batch): the number of those is the number of round
trips. The proxy passes every byte on unchanged, in both directions, and records the type of each
message the client sends (``Q`` query, ``P`` parse, ``B`` bind, ``E`` execute, ``S`` sync, ...),
and the text of each ``Q`` and ``P``, so that a test can say what went in which round trip.
Connect through it with ``sslmode=disable`` (the proxy reads clear text only).
"""

from __future__ import annotations

import socket
import struct
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from typing import Any

_WAITS = frozenset("QS")
_TEXT = frozenset("QP")
_CHUNK = 65536


@dataclass
class Trip:
    """One round trip: the messages sent before the client waited, with the SQL they carried."""

    kinds: str = ""
    sql: list[str] = field(default_factory=list)


@dataclass
class Wire:
    """What clients sent through the proxy, in order, as round trips of all connections."""

    port: int
    trips: list[Trip] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def clear(self) -> None:
        with self._lock:
            self.trips.clear()

    def taken(self) -> list[Trip]:
        """The round trips recorded so far (complete ones), and start afresh."""
        with self._lock:
            done = [trip for trip in self.trips if trip.kinds[-1:] in _WAITS]
            self.trips.clear()
        return done

    def _record(self, pending: Trip, kind: str, body: bytes) -> Trip:
        """Add a message to ``pending``; a waiting message closes it and starts the next one."""
        pending.kinds += kind
        if kind in _TEXT:
            pending.sql.append(_sql_of(kind, body))
        if kind in _WAITS:
            with self._lock:
                self.trips.append(pending)
            return Trip()
        return pending


def _sql_of(kind: str, body: bytes) -> str:
    """The SQL text of a ``Q`` (the body) or ``P`` (after the statement name) message."""
    if kind == "P":
        body = body[body.index(b"\0") + 1 :]
    return body[: body.index(b"\0")].decode()


def _read_exactly(source: socket.socket, size: int) -> bytes:
    """``size`` bytes from ``source``."""
    data = b""
    while len(data) < size:
        chunk = source.recv(min(_CHUNK, size - len(data)))
        if not chunk:
            raise EOFError
        data += chunk
    return data


def _client_to_server(wire: Wire, client: socket.socket, server: socket.socket) -> None:
    """Pass the startup packet, then each typed message, recorded before it is passed on.

    Recording first means a round trip is on record before the server can answer it, so a
    client that got its answer never finds its last round trip missing.
    """
    startup = _read_exactly(client, 4)
    (length,) = struct.unpack("!i", startup)
    server.sendall(startup + _read_exactly(client, length - 4))
    pending = Trip()
    while True:
        header = _read_exactly(client, 5)
        kind, length = chr(header[0]), struct.unpack("!i", header[1:])[0]
        body = _read_exactly(client, length - 4)
        pending = wire._record(pending, kind, body)  # the proxy's own helper
        server.sendall(header + body)


def _server_to_client(server: socket.socket, client: socket.socket) -> None:
    while chunk := server.recv(_CHUNK):
        client.sendall(chunk)


def _pump(work: Callable[..., None], *args: Any) -> None:
    """Run one direction until either side closes, then shut both down (the other pump ends)."""
    with suppress(OSError, EOFError):
        work(*args)
    for end in args[-2:]:
        with suppress(OSError):
            end.shutdown(socket.SHUT_RDWR)


def _relay(wire: Wire, client: socket.socket, target: tuple[str, int]) -> None:
    """Both directions of one client connection; its sockets are closed when both end."""
    with client, socket.create_connection(target) as server:
        for sock in (client, server):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        back = threading.Thread(target=_pump, args=(_server_to_client, server, client))
        back.start()
        _pump(_client_to_server, wire, client, server)
        back.join()


def _serve(
    wire: Wire, listener: socket.socket, target: tuple[str, int], relays: list[threading.Thread]
) -> None:
    while True:
        try:
            client, _ = listener.accept()
        except OSError:
            return
        relay = threading.Thread(target=_relay, args=(wire, client, target))
        relays.append(relay)
        relay.start()


@contextmanager
def wire_proxy(host: str, port: int) -> Iterator[Wire]:
    """A proxy on a free port of 127.0.0.1 in front of ``host:port``, closed at the end."""
    listener = socket.create_server(("127.0.0.1", 0))
    wire = Wire(listener.getsockname()[1])
    relays: list[threading.Thread] = []
    thread = threading.Thread(target=_serve, args=(wire, listener, (host, port), relays))
    thread.start()
    try:
        yield wire
    finally:
        with suppress(OSError):
            listener.shutdown(socket.SHUT_RDWR)
        listener.close()
        thread.join()
        for relay in relays:  # the clients closed their connections before this
            relay.join(timeout=10)
