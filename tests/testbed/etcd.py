"""An etcd member for one kube-apiserver: loopback ports, a temporary data dir, no fsync."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

from tests.testbed import peers, procs


class Etcd:
    """A running etcd; ``url`` is what ``--etcd-servers`` takes."""

    def __init__(self, process: procs.Process, url: str) -> None:
        self.process = process
        self.url = url

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=2) as response:
                return bool(json.load(response).get("health") == "true")
        except (OSError, ValueError):
            return False

    def stop(self) -> None:
        self.process.stop()


def start_etcd(workdir: Path, timeout: float = 30.0) -> Etcd:
    """Start etcd with its data under ``workdir`` and wait until it reports healthy."""
    binary = peers.binary("etcd")
    workdir.mkdir(parents=True, exist_ok=True)
    client = f"http://127.0.0.1:{procs.free_port()}"
    peer = f"http://127.0.0.1:{procs.free_port()}"
    process = procs.start(
        "etcd",
        [
            str(binary),
            "--name=testbed",
            f"--data-dir={workdir / 'data'}",
            f"--listen-client-urls={client}",
            f"--advertise-client-urls={client}",
            f"--listen-peer-urls={peer}",
            f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=testbed={peer}",
            "--listen-metrics-urls=",
            # Test data is thrown away: skipping fsync makes every write much faster.
            "--unsafe-no-fsync",
            "--log-level=warn",
        ],
        workdir / "etcd.log",
    )
    etcd = Etcd(process, client)
    try:
        procs.wait_until(etcd.healthy, timeout, "etcd reporting healthy", process)
    except BaseException:
        etcd.stop()
        raise
    return etcd
