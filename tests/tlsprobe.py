"""What a client meets on an HTTPS port: the certificate it presents under a name, and what a
plain HTTP request gets (the container, swarm and process tests of the gateway's TLS)."""

from __future__ import annotations

import socket
import ssl
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding


def presented(port: int, trust: ssl.SSLContext, name: str, host: str = "127.0.0.1") -> bytes:
    """The DER certificate the server on `port` presents, verified by `trust` under `name`."""
    with socket.create_connection((host, port), timeout=5) as raw, \
            trust.wrap_socket(raw, server_hostname=name) as secure:
        certificate = secure.getpeercert(binary_form=True)
    assert certificate is not None
    return certificate


def der(pem_file: Path) -> bytes:
    """The certificate in `pem_file` (its first), as DER."""
    return x509.load_pem_x509_certificate(pem_file.read_bytes()).public_bytes(Encoding.DER)


def plain_http_answer(port: int, host: str = "127.0.0.1") -> bytes:
    """Whatever comes back to a plain HTTP GET /health on `port` until the server closes."""
    with socket.create_connection((host, port), timeout=5) as plain:
        plain.sendall(b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        received = b""
        try:
            while chunk := plain.recv(4096):
                received += chunk
        except ConnectionResetError:
            pass
    return received
