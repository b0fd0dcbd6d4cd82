"""The emulator's TLS: a test CA made with trustme, kept in the data folder so that the CA file the
app trusts (`SALESFORCE_CA_BUNDLE`) stays valid across restarts; and the RSA key pair of the
JWT bearer flow."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import trustme
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa


@dataclass
class TlsFiles:
    ca_file: Path
    cert_chain_file: Path
    key_file: Path
    jwt_private_key_file: Path
    jwt_public_key_file: Path


def ensure_tls_files(data_dir: Path, hosts: list[str]) -> TlsFiles:
    data_dir.mkdir(parents=True, exist_ok=True)
    files = TlsFiles(
        ca_file=data_dir / "ca.pem",
        cert_chain_file=data_dir / "server-chain.pem",
        key_file=data_dir / "server-key.pem",
        jwt_private_key_file=data_dir / "jwt-private-key.pem",
        jwt_public_key_file=data_dir / "jwt-public-key.pem",
    )
    hosts_file = data_dir / "server-hosts.txt"
    wanted_hosts = ",".join(sorted(set(hosts)))
    if not (files.ca_file.exists() and files.cert_chain_file.exists() and files.key_file.exists()) or (
        not hosts_file.exists() or hosts_file.read_text() != wanted_hosts
    ):
        ca = trustme.CA(organization_name="OppSync Salesforce emulator")
        server = ca.issue_cert(*sorted(set(hosts)))
        ca.cert_pem.write_to_path(str(files.ca_file))
        server.cert_chain_pems[0].write_to_path(str(files.cert_chain_file))
        for extra in server.cert_chain_pems[1:]:
            extra.write_to_path(str(files.cert_chain_file), append=True)
        server.private_key_pem.write_to_path(str(files.key_file))
        hosts_file.write_text(wanted_hosts)
    if not files.jwt_private_key_file.exists():
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        files.jwt_private_key_file.write_bytes(
            key.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
        )
        files.jwt_public_key_file.write_bytes(
            key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )
    return files
