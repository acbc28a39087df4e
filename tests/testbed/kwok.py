"""kwok, the node and pod simulator: pods bound to its node become Running and Ready with
an IP, and a deleted pod goes away, without any container being run.

The pod IPs it hands out are only strings in pod status: nothing listens there. One kwok per
cluster for the whole session: a restarted kwok waits out the old node lease (~40 s).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Dict

from tests.testbed import peers, procs
from tests.testbed.apiserver import ApiServer

NODE = "kwok-node-0"
NODE_ANNOTATION = ("kwok.x-k8s.io/node", "fake")


def stages_file(workdir: Path) -> Path:
    """kwok 0.8.0 ships no built-in stages: the build copied kwokctl's set, joined here."""
    peer = peers.PEERS["kwok"]
    documents = [peers.installed_file("kwok", relative).read_text(encoding="utf-8")
                 for _, relative in peer.module_files]
    path = workdir / "stages.yaml"
    path.write_text("\n---\n".join(documents), encoding="utf-8")
    return path


def node_manifest(name: str = NODE) -> Dict[str, Any]:
    """A Node kwok manages (by its annotation), big enough for every test pod."""
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110"}
    return {
        "apiVersion": "v1",
        "kind": "Node",
        "metadata": {"name": name, "annotations": dict([NODE_ANNOTATION]),
                     "labels": {"type": "kwok", "kubernetes.io/hostname": name}},
        "status": {"capacity": capacity, "allocatable": capacity},
    }


def start_kwok(workdir: Path, apiserver: ApiServer) -> procs.Process:
    """Start kwok managing the nodes annotated ``kwok.x-k8s.io/node=fake``."""
    workdir.mkdir(parents=True, exist_ok=True)
    return procs.start(
        "kwok",
        [
            str(peers.binary("kwok")),
            f"--kubeconfig={apiserver.kubeconfig}",
            f"--config={stages_file(workdir)}",
            f"--manage-nodes-with-annotation-selector={'='.join(NODE_ANNOTATION)}",
            "--node-lease-duration-seconds=40",
            "--cidr=10.244.0.0/16",
            "--node-ip=127.0.0.1",
            f"--server-address=127.0.0.1:{procs.free_port()}",
        ],
        workdir / "kwok.log",
    )
