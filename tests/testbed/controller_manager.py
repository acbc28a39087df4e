"""kube-controller-manager for the test bed's clusters: the real Deployment, ReplicaSet,
ServiceAccount, endpoints and namespace controllers acting on the 1.37 API server; on the
1.21 one (Kubeless's), that release's garbage collector alone."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from tests.testbed import peers, procs
from tests.testbed.apiserver import ApiServer

#: What 1.21's controller manager needs besides: its insecure port (10252 by default until
#: 1.24) off, as the secure one is, so a second test session cannot collide on it.
FLAGS_1_21 = ("--port=0",)


def start_controller_manager(workdir: Path, apiserver: ApiServer,
                             binary: str = "kube-controller-manager", controllers: str = "*",
                             extra_flags: Sequence[str] = ()) -> procs.Process:
    """Start it against ``apiserver`` (admin login) running ``controllers``. Nothing to wait
    for here: the cluster is ready when what the controllers do can be seen
    (``cluster.start_cluster``)."""
    workdir.mkdir(parents=True, exist_ok=True)
    return procs.start(
        binary,
        [
            str(peers.binary(binary)),
            f"--kubeconfig={apiserver.kubeconfig}",
            "--leader-elect=false",
            f"--controllers={controllers}",
            # Signs the tokens of the ServiceAccounts it creates, like the API server's issuer.
            f"--service-account-private-key-file={apiserver.certs.service_account_key}",
            f"--root-ca-file={apiserver.ca_file}",
            "--use-service-account-credentials=false",
            # No serving port: a second test session must not collide on it.
            "--secure-port=0",
            *extra_flags,
            "--v=1",
        ],
        workdir / f"{binary}.log",
    )
