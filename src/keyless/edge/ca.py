"""The local certificate authority and the leaf certificate for every emulated host.

One leaf covers all served names (wildcards for per-vault and per-account hosts), so the
HTTPS listener and the proxy's TLS termination share a single SSL context.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import certifi
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from keyless.sealing import write_private_file

# The DNS names every leaf carries. Later services add their wildcard here.
SERVED_DNS_NAMES: tuple[str, ...] = (
    "management.azure.com",
    "login.microsoftonline.com",
    "graph.microsoft.com",
    "*.vault.azure.net",
    "*.blob.core.windows.net",
    "*.streaming.media.azure.net",
    "localhost",
)
SERVED_IPS: tuple[str, ...] = ("127.0.0.1",)
_LEAF_RENEW_BEFORE = dt.timedelta(days=30)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


@dataclass(frozen=True)
class LocalCA:
    directory: Path

    @property
    def cert_file(self) -> Path:
        return self.directory / "ca.pem"

    @property
    def key_file(self) -> Path:
        return self.directory / "ca.key"

    @property
    def leaf_cert_file(self) -> Path:
        return self.directory / "leaf.pem"

    @property
    def leaf_key_file(self) -> Path:
        return self.directory / "leaf.key"

    @property
    def bundle_file(self) -> Path:
        return self.directory / "bundle.pem"

    def ensure(self) -> None:
        """Create the CA on first start; (re)issue the leaf when missing, expiring or stale."""
        self.directory.mkdir(parents=True, exist_ok=True)
        if not self.cert_file.exists() or not self.key_file.exists():
            self._create_ca()
        if self._leaf_needs_issuing():
            self._issue_leaf()
        self._write_bundle()

    def _create_ca(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Keyless"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"Keyless Local CA {_now():%Y-%m-%d %H%M%S}"),
            ]
        )
        ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(minutes=5))
            .not_valid_after(_now() + dt.timedelta(days=3650))
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
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256())
        )
        write_private_file(self.key_file, _key_pem(key))
        self.cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
        # A new CA invalidates any leaf signed by a previous one.
        self.leaf_cert_file.unlink(missing_ok=True)

    def _leaf_needs_issuing(self) -> bool:
        if not self.leaf_cert_file.exists() or not self.leaf_key_file.exists():
            return True
        leaf = x509.load_pem_x509_certificate(self.leaf_cert_file.read_bytes())
        if leaf.not_valid_after_utc - _now() < _LEAF_RENEW_BEFORE:
            return True
        san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        names = set(san.get_values_for_type(x509.DNSName))
        ips = {str(ip) for ip in san.get_values_for_type(x509.IPAddress)}
        return names != set(SERVED_DNS_NAMES) or ips != set(SERVED_IPS)

    def _issue_leaf(self) -> None:
        ca_key = serialization.load_pem_private_key(self.key_file.read_bytes(), password=None)
        assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
        ca_cert = x509.load_pem_x509_certificate(self.cert_file.read_bytes())
        key = ec.generate_private_key(ec.SECP256R1())
        san = x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in SERVED_DNS_NAMES]
            + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVED_IPS]
        )
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, SERVED_DNS_NAMES[0])]))
            .issuer_name(ca_cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(_now() - dt.timedelta(minutes=5))
            .not_valid_after(_now() + dt.timedelta(days=397))
            .add_extension(san, critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=True,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
            )
            .sign(ca_key, hashes.SHA256())
        )
        write_private_file(self.leaf_key_file, _key_pem(key))
        self.leaf_cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    def _write_bundle(self) -> None:
        system = Path(ssl.get_default_verify_paths().openssl_cafile or "")
        base = system.read_bytes() if system.is_file() else Path(certifi.where()).read_bytes()
        self.bundle_file.write_bytes(base.rstrip(b"\n") + b"\n" + self.cert_file.read_bytes())

    def server_context(self) -> ssl.SSLContext:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(self.leaf_cert_file, self.leaf_key_file)
        ctx.set_alpn_protocols(["http/1.1"])
        return ctx
