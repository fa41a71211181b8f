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


def _alternative(name: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(name))
    except ValueError:
        return x509.DNSName(name)


def development_pair(names: tuple[str, ...] = DEVELOPMENT_NAMES, *, days: int = 3650) -> TlsPair:
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
    """The pair's three files in `directory` (the key 0600), by secret name."""
    directory.mkdir(parents=True, exist_ok=True)
    written = {}
    for name, text in pair.files().items():
        path = directory / name
        path.write_text(text, encoding="utf-8")
        path.chmod(0o600 if name == KEY_SECRET else 0o644)
        written[name] = path
    return written


def server_context(cert_file: Path, key_file: Path) -> ssl.SSLContext:
    """The gateway's server context, or TlsConfigError naming what is wrong (read at start-up,
    so a bad file stops the process with one line instead of failing every handshake)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    for label, path in (("certificate", cert_file), ("key", key_file)):
        if not path.is_file():
            raise TlsConfigError(f"the TLS {label} file {path} does not exist")
    try:
        context.load_cert_chain(cert_file, key_file)
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(
            f"the TLS certificate {cert_file} and key {key_file} do not load together "
            f"(PEM certificate chain and its unencrypted private key): {exc}") from None
    return context


def client_context(ca_file: Path | None) -> ssl.SSLContext:
    """A client context that trusts `ca_file` (or the system's roots when None)."""
    if ca_file is None:
        return ssl.create_default_context()
    try:
        return ssl.create_default_context(cafile=str(ca_file))
    except (ssl.SSLError, OSError) as exc:
        raise TlsConfigError(f"the CA file {ca_file} is not a PEM certificate bundle: "
                             f"{exc}") from None
