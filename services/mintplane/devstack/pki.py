"""Certificates and keys for the local control plane: a CA, the API server's serving cert, an admin
client cert (group system:masters) and the service-account signing key pair. Generated once per state dir.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_VALIDITY = dt.timedelta(days=3650)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey | ed25519.Ed25519PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _write(path: Path, data: bytes, *, secret: bool = False) -> None:
    path.write_bytes(data)
    path.chmod(0o600 if secret else 0o644)


def _name(common_name: str, org: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if org:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _issue(
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    ca_cert: x509.Certificate,
    ca_key: ec.EllipticCurvePrivateKey,
    *,
    usage: x509.ObjectIdentifier,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    )
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def ensure_pki(folder: Path) -> None:
    """Create every file the control plane needs, unless a previous run already did."""
    folder.mkdir(parents=True, exist_ok=True)
    if (folder / "admin.crt").exists():
        return
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("mintplane-dev-ca")
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _VALIDITY)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                key_encipherment=False, data_encipherment=False, key_agreement=False,
                encipher_only=False, decipher_only=False,
            ),
            critical=True,
        )
        .sign(ca_key, hashes.SHA256())
    )
    serving_key = ec.generate_private_key(ec.SECP256R1())
    serving = _issue(
        _name("kube-apiserver"), serving_key, ca_cert, ca_key,
        usage=ExtendedKeyUsageOID.SERVER_AUTH,
        sans=[
            x509.DNSName("localhost"),
            x509.DNSName("kubernetes"),
            x509.DNSName("kubernetes.default"),
            x509.DNSName("kubernetes.default.svc"),
            x509.DNSName("kubernetes.default.svc.cluster.local"),
            x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
        ],
    )
    admin_key = ec.generate_private_key(ec.SECP256R1())
    admin = _issue(
        _name("mintplane-admin", "system:masters"), admin_key, ca_cert, ca_key,
        usage=ExtendedKeyUsageOID.CLIENT_AUTH,
    )
    sa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = serialization.Encoding.PEM
    _write(folder / "ca.crt", ca_cert.public_bytes(pem))
    _write(folder / "ca.key", _key_pem(ca_key), secret=True)
    _write(folder / "apiserver.crt", serving.public_bytes(pem))
    _write(folder / "apiserver.key", _key_pem(serving_key), secret=True)
    _write(folder / "sa.key", _key_pem(sa_key), secret=True)
    _write(
        folder / "sa.pub",
        sa_key.public_key().public_bytes(pem, serialization.PublicFormat.SubjectPublicKeyInfo),
    )
    _write(folder / "admin.key", _key_pem(admin_key), secret=True)
    # Written last: its presence marks the set complete.
    _write(folder / "admin.crt", admin.public_bytes(pem))


def write_kubeconfig(path: Path, pki: Path, server: str) -> None:
    """A kubeconfig for the admin identity, with absolute paths so it works from any directory."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        f"""apiVersion: v1
kind: Config
clusters:
- name: mintplane-dev
  cluster:
    server: {server}
    certificate-authority: {pki / "ca.crt"}
users:
- name: mintplane-admin
  user:
    client-certificate: {pki / "admin.crt"}
    client-key: {pki / "admin.key"}
contexts:
- name: mintplane-dev
  context:
    cluster: mintplane-dev
    user: mintplane-admin
    namespace: default
current-context: mintplane-dev
"""
    )
    path.chmod(0o600)


def ensure_jwt_key(folder: Path) -> Path:
    """The dev auth service's Ed25519 signing key, kept across restarts so access tokens stay valid."""
    path = folder / "auth-jwt.pem"
    if not path.exists():
        folder.mkdir(parents=True, exist_ok=True)
        _write(path, _key_pem(ed25519.Ed25519PrivateKey.generate()), secret=True)
    return path
