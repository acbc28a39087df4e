"""kube-scheduler for the test bed's cluster: binds pods to the simulated node."""

from __future__ import annotations

from pathlib import Path

from tests.testbed import peers, procs
from tests.testbed.apiserver import ApiServer


def start_scheduler(workdir: Path, apiserver: ApiServer) -> procs.Process:
    """Start it against ``apiserver`` (admin login); readiness is a pod being scheduled."""
    workdir.mkdir(parents=True, exist_ok=True)
    return procs.start(
        "kube-scheduler",
        [
            str(peers.binary("kube-scheduler")),
            f"--kubeconfig={apiserver.kubeconfig}",
            "--leader-elect=false",
            "--secure-port=0",
            "--v=1",
        ],
        workdir / "kube-scheduler.log",
    )
