"""kube-controller-manager for the test bed's cluster: the real Deployment, ReplicaSet,
ServiceAccount, endpoints and namespace controllers, acting on the test bed's API server."""

from __future__ import annotations

from pathlib import Path

from tests.testbed import peers, procs
from tests.testbed.apiserver import ApiServer


def start_controller_manager(workdir: Path, apiserver: ApiServer) -> procs.Process:
    """Start it against ``apiserver`` (admin login). Nothing to wait for here: the cluster
    is ready when what the controllers do can be seen (``cluster.start_cluster``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return procs.start(
        "kube-controller-manager",
        [
            str(peers.binary("kube-controller-manager")),
            f"--kubeconfig={apiserver.kubeconfig}",
            "--leader-elect=false",
            "--controllers=*",
            # Signs the tokens of the ServiceAccounts it creates, like the API server's issuer.
            f"--service-account-private-key-file={apiserver.certs.service_account_key}",
            f"--root-ca-file={apiserver.ca_file}",
            "--use-service-account-credentials=false",
            # No serving port: a second test session must not collide on it.
            "--secure-port=0",
            "--v=1",
        ],
        workdir / "kube-controller-manager.log",
    )
