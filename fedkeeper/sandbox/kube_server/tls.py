"""TLS for the fake API server (opt-in): a cluster CA, a serving certificate, a rogue one.

A real API server presents a serving certificate signed by the cluster CA, and clients
trust the CA named by kubeconfig's ``certificate-authority-data``. In TLS mode the fake
does the same with keys made at start (EC P-256, so it is quick). ``rogue`` is a serving
certificate for the same address signed by a different CA: what a client meets behind a
re-issued cluster CA, a wrong CA in its kubeconfig, or an intercepting proxy.
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import ssl
import tempfile
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

_HOST = "127.0.0.1"


@dataclass(frozen=True)
class ServerTLS:
    ca_pem: str  # the cluster CA certificate clients are given
    context: ssl.SSLContext  # serves a certificate signed by that CA
    rogue: ssl.SSLContext  # serves a certificate signed by another CA


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _ca(common_name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(common_name))
        .issuer_name(_name(common_name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
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
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _serving_context(
    name: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey
) -> ssl.SSLContext:
    """A server-side context presenting a certificate for 127.0.0.1 signed by ``ca``."""
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(f"kube-apiserver-{name}"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.IPAddress(ipaddress.ip_address(_HOST)), x509.DNSName("localhost")]
            ),
            critical=False,
        )
        .add_extension(
            x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False
        )
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    # load_cert_chain reads files only: write them to a private directory, then remove it.
    with tempfile.TemporaryDirectory(prefix="fake-kube-tls-") as tmp:
        cert_path = os.path.join(tmp, "tls.crt")
        key_path = os.path.join(tmp, "tls.key")
        with open(cert_path, "wb") as f:
            f.write(cert.public_bytes(serialization.Encoding.PEM))
        with open(key_path, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
        context.load_cert_chain(cert_path, key_path)
    return context


def make_server_tls(name: str) -> ServerTLS:
    ca, ca_key = _ca(f"fake-kube-{name}-ca")
    rogue_ca, rogue_key = _ca(f"fake-kube-{name}-ca")  # same name, different key
    return ServerTLS(
        ca_pem=ca.public_bytes(serialization.Encoding.PEM).decode(),
        context=_serving_context(name, ca, ca_key),
        rogue=_serving_context(name, rogue_ca, rogue_key),
    )
