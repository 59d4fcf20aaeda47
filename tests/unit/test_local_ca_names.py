"""The local CA re-issues its leaf when the served names change (a data directory made by an
older Keyless, whose leaf lacks a host added since, e.g. graph.microsoft.com)."""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from keyless.edge.ca import SERVED_DNS_NAMES, LocalCA


def _names(path: Path) -> set[str]:
    leaf = x509.load_pem_x509_certificate(path.read_bytes())
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san.get_values_for_type(x509.DNSName))


def test_a_leaf_without_a_served_name_is_reissued(tmp_path: Path) -> None:
    ca = LocalCA(tmp_path / "ca")
    ca.ensure()
    assert "graph.microsoft.com" in SERVED_DNS_NAMES
    assert _names(ca.leaf_cert_file) == set(SERVED_DNS_NAMES)
    ca_pem = ca.cert_file.read_bytes()
    # An older leaf: valid for a year, signed by this CA, without graph.microsoft.com.
    ca_key = serialization.load_pem_private_key(ca.key_file.read_bytes(), password=None)
    assert isinstance(ca_key, ec.EllipticCurvePrivateKey)
    key = ec.generate_private_key(ec.SECP256R1())
    now = dt.datetime.now(dt.UTC)
    old_names = [n for n in SERVED_DNS_NAMES if n != "graph.microsoft.com"]
    old = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, old_names[0])]))
        .issuer_name(x509.load_pem_x509_certificate(ca_pem).subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=365))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName(n) for n in old_names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca.leaf_cert_file.write_bytes(old.public_bytes(serialization.Encoding.PEM))
    assert "graph.microsoft.com" not in _names(ca.leaf_cert_file)
    ca.ensure()
    assert _names(ca.leaf_cert_file) == set(SERVED_DNS_NAMES)
    assert ca.cert_file.read_bytes() == ca_pem  # the CA itself (trusted by clients) is kept
