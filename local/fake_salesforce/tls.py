"""A throwaway certificate authority and server certificate for `127.0.0.1`/`localhost`.

Clients trust the fake by pointing `REQUESTS_CA_BUNDLE` / `NODE_EXTRA_CA_CERTS` at the
CA certificate. A separate CA (rather than one self-signed leaf) keeps strict verifiers
such as Python 3.13's `VERIFY_X509_STRICT` happy.
"""

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = timedelta(days=30)


@dataclass(frozen=True)
class TlsFiles:
    """PEM files: the CA certificate to trust, and the server's chain and key."""

    ca_cert_path: Path
    cert_chain_path: Path
    key_path: Path


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def write_tls_files(directory: Path) -> TlsFiles:
    """Create a CA and a server certificate (SAN 127.0.0.1, localhost) in `directory`."""
    now = datetime.now(UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("sfbroker fake Salesforce CA")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    server_cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca_name)
        .public_key(server_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), False
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(server_key.public_key()), False)
        .sign(ca_key, hashes.SHA256())
    )
    files = TlsFiles(
        ca_cert_path=directory / "ca.pem",
        cert_chain_path=directory / "server.pem",
        key_path=directory / "server.key",
    )
    ca_pem = ca_cert.public_bytes(serialization.Encoding.PEM)
    files.ca_cert_path.write_bytes(ca_pem)
    files.cert_chain_path.write_bytes(server_cert.public_bytes(serialization.Encoding.PEM) + ca_pem)
    files.key_path.touch(mode=0o600)
    files.key_path.write_bytes(
        server_key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return files


def server_ssl_context(files: TlsFiles) -> ssl.SSLContext:
    """A TLS server context serving the generated chain."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(files.cert_chain_path, files.key_path)
    return context
