"""A bare kube-apiserver (no kubelet, scheduler or controllers) on a loopback port.

It is the real API server, so RBAC, admission and the status subresources behave as in a
cluster; what a bare server does *not* do is listed in docs/testing.md.
"""

from __future__ import annotations

import ssl
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Optional

from tests.testbed import peers, procs
from tests.testbed.certs import ClusterCerts, make_cluster_certs
from tests.testbed.etcd import Etcd, start_etcd
from tests.testbed.kubeconfig import write_kubeconfig

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


class ApiServer:
    """A running etcd + kube-apiserver pair and an admin login to it.

    Attributes: ``host`` (https URL), ``ca_file``, ``kubeconfig`` (admin, ``system:masters``),
    ``api_client`` (admin ``kubernetes.client.ApiClient``), ``workdir``, ``ready_seconds``.
    """

    def __init__(self, workdir: Path, etcd: Etcd, process: procs.Process, host: str,
                 certs: ClusterCerts, kubeconfig: Path) -> None:
        self.workdir = workdir
        self.etcd = etcd
        self.process = process
        self.host = host
        self.certs = certs
        self.ca_file = certs.ca_cert
        self.kubeconfig = kubeconfig
        self.issuer = SERVICE_ACCOUNT_ISSUER
        self.ready_seconds = 0.0
        self._api_client: Optional[Any] = None

    @property
    def api_client(self) -> Any:
        """An admin ``kubernetes.client.ApiClient`` (created on first use)."""
        if self._api_client is None:
            self._api_client = self.new_client(self.kubeconfig)
        return self._api_client

    @staticmethod
    def new_client(kubeconfig: Path) -> Any:
        """A ``kubernetes.client.ApiClient`` for any kubeconfig file (e.g. a minted token's)."""
        from kubernetes import config

        return config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=str(kubeconfig)
        )

    def ready(self) -> bool:
        """True when ``/readyz`` answers 200 to the admin and the ``default`` namespace
        exists: 1.21 reports ready before its bootstrap controller has made it."""
        context = ssl.create_default_context(cafile=str(self.ca_file))
        context.load_cert_chain(str(self.certs.admin_cert), str(self.certs.admin_key))
        try:
            for path in ("/readyz", "/api/v1/namespaces/default"):
                with urllib.request.urlopen(f"{self.host}{path}", timeout=5,
                                            context=context) as answer:
                    if answer.status != 200:
                        return False
            return True
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        if self._api_client is not None:
            self._api_client.close()
            self._api_client = None
        self.process.stop()
        self.etcd.stop()


def start_apiserver(workdir: Path, timeout: float = 120.0,
                    binary_name: str = "kube-apiserver") -> ApiServer:
    """Start etcd and kube-apiserver under ``workdir``; wait for ``/readyz``.

    ``binary_name`` picks the release (``kube-apiserver-1.21``: the last one serving the
    ``v1beta1`` APIs Kubeless needs). Raises with the server's last log lines when it exits
    or is not ready within ``timeout``.
    """
    binary = peers.binary(binary_name)
    started = time.monotonic()
    certs = make_cluster_certs(workdir / "pki")
    etcd = start_etcd(workdir / "etcd")
    port = procs.free_port()
    host = f"https://127.0.0.1:{port}"
    try:
        process = procs.start(
            "kube-apiserver",
            [
                str(binary),
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={port}",
                f"--etcd-servers={etcd.url}",
                f"--tls-cert-file={certs.serving_cert}",
                f"--tls-private-key-file={certs.serving_key}",
                f"--client-ca-file={certs.ca_cert}",
                f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
                f"--service-account-key-file={certs.service_account_pub}",
                f"--service-account-signing-key-file={certs.service_account_key}",
                "--authorization-mode=RBAC",
                "--service-cluster-ip-range=10.96.0.0/24",
                # Nothing reconciles the "kubernetes" Service endpoints to a real address.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
                "--v=1",
            ],
            workdir / "kube-apiserver.log",
        )
    except BaseException:
        etcd.stop()
        raise
    kubeconfig = write_kubeconfig(
        workdir / "admin.kubeconfig", host, certs.ca_cert,
        {"client-certificate": str(certs.admin_cert), "client-key": str(certs.admin_key)},
    )
    server = ApiServer(workdir, etcd, process, host, certs, kubeconfig)
    try:
        procs.wait_until(server.ready, timeout, "kube-apiserver answering /readyz",
                         process, interval=0.25)
    except BaseException:
        server.stop()
        raise
    server.ready_seconds = time.monotonic() - started
    return server
