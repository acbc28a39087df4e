"""Certificates and keys for a throw-away API server, made with the ``openssl`` command.

kube-apiserver needs a serving certificate, a client CA (the admin logs in with a client
certificate in ``system:masters``) and a key pair to sign ServiceAccount tokens. The
``openssl`` CLI is part of every Debian machine (install-system-deps.sh makes sure), so no
Python package is needed for this.
"""

from __future__ import annotations

import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence

_DAYS = "3"
_EC = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


@dataclass(frozen=True)
class ClusterCerts:
    """Paths of the PEM files one API server uses."""

    ca_cert: Path
    ca_key: Path
    serving_cert: Path
    serving_key: Path
    admin_cert: Path
    admin_key: Path
    service_account_key: Path
    service_account_pub: Path


def _openssl(args: Sequence[str], cwd: Path) -> None:
    openssl = shutil.which("openssl")
    if openssl is None:
        raise RuntimeError(
            "the openssl command is missing; run tests/testbed/install-system-deps.sh as root"
        )
    result = subprocess.run(
        [openssl, *args], cwd=str(cwd), capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(f"openssl {' '.join(args)} failed:\n{result.stderr}")


def _signed_leaf(
    directory: Path, name: str, subject: str, extensions: List[str]
) -> None:
    """Key ``name.key`` and certificate ``name.crt`` signed by the CA in ``directory``."""
    ext_file = directory / f"{name}.ext"
    ext_file.write_text(
        "\n".join(
            [
                "basicConstraints=critical,CA:FALSE",
                "keyUsage=critical,digitalSignature,keyEncipherment",
                "subjectKeyIdentifier=hash",
                "authorityKeyIdentifier=keyid,issuer",
                *extensions,
            ]
        )
        + "\n"
    )
    _openssl(
        ["req", *_EC, "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject],
        directory,
    )
    _openssl(
        ["x509", "-req", "-in", f"{name}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
         "-CAcreateserial", "-days", _DAYS, "-extfile", ext_file.name, "-out", f"{name}.crt"],
        directory,
    )


def make_cluster_certs(directory: Path, server_names: Sequence[str] = ()) -> ClusterCerts:
    """Write a CA, a serving certificate for 127.0.0.1, an admin client certificate and
    the ServiceAccount signing key pair into ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    _openssl(
        ["req", "-x509", *_EC, "-keyout", "ca.key", "-out", "ca.crt", "-days", _DAYS,
         "-subj", "/CN=falco-responder-testbed-ca",
         "-addext", "basicConstraints=critical,CA:TRUE",
         "-addext", "keyUsage=critical,keyCertSign,cRLSign"],
        directory,
    )
    names = ["IP:127.0.0.1", "DNS:localhost", "DNS:kubernetes", "DNS:kubernetes.default",
             "DNS:kubernetes.default.svc", *(f"DNS:{name}" for name in server_names)]
    _signed_leaf(
        directory, "serving", "/CN=kube-apiserver",
        [f"subjectAltName={','.join(names)}", "extendedKeyUsage=serverAuth"],
    )
    _signed_leaf(
        directory, "admin", "/O=system:masters/CN=testbed-admin",
        ["extendedKeyUsage=clientAuth"],
    )
    _openssl(
        ["genpkey", "-algorithm", "EC", "-pkeyopt", "ec_paramgen_curve:prime256v1",
         "-out", "service-account.key"],
        directory,
    )
    _openssl(["pkey", "-in", "service-account.key", "-pubout", "-out", "service-account.pub"],
             directory)
    for key in directory.glob("*.key"):
        key.chmod(0o600)
    return ClusterCerts(
        ca_cert=directory / "ca.crt",
        ca_key=directory / "ca.key",
        serving_cert=directory / "serving.crt",
        serving_key=directory / "serving.key",
        admin_cert=directory / "admin.crt",
        admin_key=directory / "admin.key",
        service_account_key=directory / "service-account.key",
        service_account_pub=directory / "service-account.pub",
    )
