"""How the provider adapter reports each way a call can go wrong, on real sockets: a provider
that refuses the connection, one that accepts and never answers, one that answers 5xx or
something that is not JSON. Only a refusal is known to have sent nothing."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from decimal import Decimal

import pytest

from service.providers.contract import (
    ChargeRequest,
    ProviderRefused,
    ProviderTimeout,
    ProviderUnavailable,
)
from service.providers.http_adapter import HttpAdapter
from service.providers.registry import ProviderHttp
from service.settings import ProviderCredentials
from tests.servers import free_port

TIMEOUT = 0.5
CHARGE = ChargeRequest("NC-TEST", Decimal("150.00"), "SDG", None, "x", "http://127.0.0.1:9/cb")


def _adapter(port: int) -> HttpAdapter:
    credentials = ProviderCredentials("key", "secret" * 4, "M-1", f"http://127.0.0.1:{port}")
    return HttpAdapter("visa", credentials, ProviderHttp(TIMEOUT))


@contextmanager
def _server(answer: Callable[[socket.socket], None]) -> Iterator[tuple[int, list[int]]]:
    """A one-thread TCP server on 127.0.0.1 that hands each connection to `answer`; yields
    its port and the count of connections it accepted."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(0.1)
    accepted = [0]
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except TimeoutError:
                continue
            accepted[0] += 1
            with connection:
                answer(connection)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield listener.getsockname()[1], accepted
    finally:
        stop.set()
        thread.join(5)
        listener.close()


def _reply(status: str, body: bytes) -> Callable[[socket.socket], None]:
    def answer(connection: socket.socket) -> None:
        connection.recv(65536)
        connection.sendall(f"HTTP/1.1 {status}\r\nContent-Length: {len(body)}\r\n"
                           "Connection: close\r\n\r\n".encode() + body)

    return answer


def test_a_refused_connection_is_unavailable_not_a_timeout() -> None:
    with pytest.raises(ProviderUnavailable) as raised:
        _adapter(free_port()).initiate(CHARGE)
    assert not isinstance(raised.value, ProviderTimeout)


def test_a_provider_that_never_answers_times_out_once_within_the_timeout() -> None:
    def silent(connection: socket.socket) -> None:
        connection.recv(65536)
        time.sleep(TIMEOUT * 3)

    with _server(silent) as (port, accepted):
        started = time.monotonic()
        with pytest.raises(ProviderTimeout):
            _adapter(port).initiate(CHARGE)
        assert time.monotonic() - started < TIMEOUT * 2.5
        time.sleep(TIMEOUT * 3)
        assert accepted[0] == 1  # never sent again: a second charge could take the money twice


@pytest.mark.parametrize(("status", "body", "error", "says"), [
    ("502 Bad Gateway", b"{}", ProviderUnavailable, "HTTP 502"),
    ("200 OK", b"<html>not json</html>", ProviderUnavailable, "not JSON"),
    ("401 Unauthorized", b"{}", ProviderRefused, "rejected our credentials"),
])
def test_an_answer_we_cannot_use_says_why(status: str, body: bytes,
                                         error: type[Exception], says: str) -> None:
    with _server(_reply(status, body)) as (port, accepted), pytest.raises(error) as raised:
        _adapter(port).initiate(CHARGE)
    assert type(raised.value) is error and says in str(raised.value), raised.value
    assert accepted[0] == 1
