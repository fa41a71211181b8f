"""The gateway's TLS material: a development pair made here, and the contexts that serve and
check it.

Where the gateway's port leaves its host (compose, Pulumi, the swarm's edge) it serves HTTPS
with a certificate and key read from secret files. Production supplies a certificate its CA
issued; for development and tests `make secrets` (and every test that deploys) writes a
pair made by `development_pair`: a private CA valid for ten years and a gateway certificate
it signed, naming the gateway inside the stack and on this host. The NileCare processes that
call the gateway (healthchecks, the simulator's webhooks, Prometheus, the edge) trust the CA
file and check the name `INTERNAL_NAME`, the gateway's name on the stack's networks, so the
certificate an operator supplies must name it as well as the public host.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The gateway's service name on the stack's networks: every certificate must carry it.
INTERNAL_NAME = "payment-gateway-service"
# What the development certificate names besides: the swarm's edge, this host.
DEVELOPMENT_NAMES = (INTERNAL_NAME, "payment-edge", "localhost", "127.0.0.1")
# The secret files, as the deployment model names them (names, not values).
CERT_SECRET = "gateway_tls_cert"  # noqa: S105
KEY_SECRET = "gateway_tls_key"  # noqa: S105
CA_SECRET = "gateway_tls_ca"  # noqa: S105
# The TLS 1.2 suites the gateway and the edge offer (TLS 1.3's are all strong); both read this.
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
# How long a development CA and certificate are valid (service/tls.py and Pulumi's dev pair).
VALIDITY_DAYS = 3650


class TlsConfigError(ValueError):
    """A certificate, key or CA file is missing, unreadable or does not fit the other."""


@dataclass(frozen=True)
class TlsPair:
    """PEM text: the CA certificate clients trust, the gateway's certificate and its key."""

    ca: str
    cert: str
    key: str

    def files(self) -> dict[str, str]:
        """The three secret files' contents, by secret name."""
        return {CA_SECRET: self.ca, CERT_SECRET: self.cert, KEY_SECRET: self.key}


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "NileCare development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def split_names(names: tuple[str, ...]) -> tuple[list[str], list[str]]:
    """`names` as a certificate carries them: DNS names, and IP addresses."""
    return ([n for n in names if not _is_address(n)], [n for n in names if _is_address(n)])


def _alternative(name: str) -> x509.GeneralName:
    if _is_address(name):
        return x509.IPAddress(ipaddress.ip_address(name))
    return x509.DNSName(name)


def development_pair(names: tuple[str, ...] = DEVELOPMENT_NAMES, *,
                     days: int = VALIDITY_DAYS) -> TlsPair:
    """A private CA and a server certificate it signed for `names` (DNS names or IPs).

    P-256 keys, SHA-256 signatures, subject and authority key identifiers: what OpenSSL's
    strict verification (Python 3.13's default) and HAProxy ask of a chain."""
    if not names:
        raise ValueError("a certificate needs at least one name")
    now = datetime.datetime.now(datetime.UTC)
    start, end = now - datetime.timedelta(minutes=5), now + datetime.timedelta(days=days)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("NileCare development CA")
    ca = (x509.CertificateBuilder()
          .subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                       crl_sign=True, content_commitment=False,
                                       key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False,
                                       decipher_only=False), critical=True)
          .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()),
                         critical=False)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (x509.CertificateBuilder()
            .subject_name(_name(names[0])).issuer_name(ca_name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(start).not_valid_after(end)
            .add_extension(x509.SubjectAlternativeName([_alternative(n) for n in names]),
                           critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=False,
                                         content_commitment=False, data_encipherment=False,
                                         key_agreement=True, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    return TlsPair(
        ca=ca.public_bytes(pem).decode(),
        cert=cert.public_bytes(pem).decode(),
        key=key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()).decode(),
    )


def write_pair(pair: TlsPair, directory: Path) -> dict[str, Path]:
    """The pair's three files in `directory`, by secret name; the key is created 0600 (for
    a process of the same user: the tests and the drills)."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, text in pair.files().items():
        path = directory / name
        mode = 0o600 if name == KEY_SECRET else 0o644
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        written[name] = path
    return written


def check_pair(cert_file: Path, key_file: Path) -> None:
    """Raise TlsConfigError naming what is wrong unless the files load as a certificate chain
    and its key (read at start-up, so a bad file stops the process with one line instead of
    failing every handshake)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    for label, path in (("certificate", cert_file), ("key", key_file)):
        if not path.is_file():
            raise TlsConfigError(f"the TLS {label} file {path} does not exist")
    try:
        context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(
            f"the TLS certificate {cert_file} and key {key_file} do not load together "
            f"(PEM certificate chain and its unencrypted private key): {exc}") from None


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context that trusts `ca_file` (or the system's roots when None)."""
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"the CA file {ca_file} is not a PEM certificate bundle: "
                             f"{exc}") from None
