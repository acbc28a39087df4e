"""Replicas of the function as separate ``python -m function serve`` processes, logged in
as deploy/rbac's ServiceAccount, and a sender that spreads alerts over them.

deploy/rbac is applied as it ships (ServiceAccount ``falco-responder/falco-responder``,
the generated ClusterRole). Its guard-state Role and RoleBinding are applied a second time
into a namespace made for the test, which is the replicas' own namespace
(``POD_NAMESPACE``): each test then has Leases of its own and tests do not share a
blast-radius count.
"""

from __future__ import annotations

import http.client
import json
import os
import sys
import threading
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from tests.testbed import procs
from tests.testbed.kube import Kube

REPO = Path(__file__).resolve().parents[2]
RBAC = REPO / "deploy" / "rbac"
Answer = Tuple[int, Dict[str, Any]]


def terminate_only(actions_per_minute: int) -> str:
    """A policy that terminates on every shell, allowing ``actions_per_minute``."""
    return (f"guards: {{rate_limit: {{actions: {actions_per_minute}, per_seconds: 60}}}}\n"
            "rules:\n  - name: terminate-terminal-shells\n"
            "    match: {rules: [\"Terminal shell in container\"]}\n"
            "    actions: [{action: terminate}]\n")


class Replicas:
    def __init__(self, kube: Kube, workdir: Path, count: int, policy: str = "",
                 env: Optional[Dict[str, str]] = None) -> None:
        for manifest in sorted(RBAC.glob("*.yaml")):
            kube.apply_manifest(manifest)
        self.home = kube.create_namespace(prefix="responder")
        kube.apply_manifest(RBAC / "serviceaccount.yaml", namespace=self.home)
        kubeconfig = kube.token_kubeconfig("falco-responder", "falco-responder")
        environment = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                       "HOME": str(workdir), "PYTHONPATH": str(REPO),
                       "KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": self.home,
                       **(env or {})}
        if policy:
            path = workdir / "policy.yaml"
            path.write_text(policy)
            environment["FALCO_RESPONDER_POLICY"] = str(path)
        self.ports: List[int] = []
        self.processes: List[procs.Process] = []
        for i in range(count):
            port = procs.free_port()
            self.ports.append(port)
            self.processes.append(procs.start(
                f"replica-{i}", [sys.executable, "-m", "function", "serve", "--port",
                                 str(port)], workdir / f"replica-{i}.log", environment, REPO))
        for port, process in zip(self.ports, self.processes):
            procs.wait_until(lambda p=port: _answers(p), 30, f"{process.name} serving",
                             process)

    def kill(self, index: int) -> None:
        """SIGKILL: no cleanup, no goodbye, as when a node dies."""
        process = self.processes[index]
        os.killpg(process.pid, 9)
        process.popen.wait(10)

    def stop(self) -> None:
        for process in self.processes:
            process.stop()

    def metrics(self, index: int) -> str:
        conn = http.client.HTTPConnection("127.0.0.1", self.ports[index], timeout=10)
        try:
            conn.request("GET", "/metrics")
            return conn.getresponse().read().decode("utf-8")
        finally:
            conn.close()


def _answers(port: int) -> bool:
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
        conn.request("GET", "/health/readiness")
        return conn.getresponse().status == 200
    except OSError:
        return False


def send(ports: Sequence[int], bodies: Sequence[bytes], threads: int = 16) -> List[Answer]:
    """POST every body, ``threads`` at a time, body i to ``ports[i % len(ports)]``, over
    keep-alive connections; answers in the order of ``bodies``."""
    answers: List[Optional[Answer]] = [None] * len(bodies)
    cursor = iter(range(len(bodies)))
    lock = threading.Lock()

    def worker() -> None:
        conns: Dict[int, http.client.HTTPConnection] = {}
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            port = ports[i % len(ports)]
            conn = conns.get(port) or http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            conns[port] = conn
            conn.request("POST", "/", bodies[i], {"Content-Type": "application/json"})
            response = conn.getresponse()
            answers[i] = (response.status, json.loads(response.read()))
        for conn in conns.values():
            conn.close()

    pool = [threading.Thread(target=worker) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    assert all(a is not None for a in answers)
    return [a for a in answers if a is not None]


def actions(answers: Sequence[Answer]) -> List[Dict[str, Any]]:
    """Every action of every answer (a 503's decision included)."""
    found = []
    for _, body in answers:
        found.extend((body.get("decision") or body).get("actions", []))
    return found
