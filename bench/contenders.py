"""The three responders `make bench` puts side by side, started against one API server:
Falco Talon 0.3.0, our function on `make run`'s server, and our function on the Knative func
runtime (func-python 0.8). Each says how it starts, where it answers, and what an alert for
a pod looks like on its wire (Falco JSON for Talon and `make run`, Falcosidekick's binary
CloudEvent for Knative).
"""

from __future__ import annotations

import copy
import json
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import yaml

from tests.testbed import peers, procs

REPO = Path(__file__).resolve().parents[1]
ALERT = json.loads((REPO.parent / "shared" / "fixtures" / "forwarded" /
                    "terminal_shell_in_container.falco-0.37-ovh-k8s.forwarded.json").read_text())

#: Ours: the default policy's rule, the blast radius raised so a storm over 50 pods is not
#: stopped after 10 by design.
POLICY = """
guards: {rate_limit: {actions: 100, per_seconds: 60}}
rules:
  - name: terminate-terminal-shells
    match: {rules: ["Terminal shell in container"]}
    actions: [{action: terminate, parameters: {grace_period_seconds: 0}}]
"""
#: Talon: the same reaction, for standalone pods too (its default skips them).
TALON_RULES = """
- action: Terminate Pod
  actionner: kubernetes:terminate
  parameters:
    grace_period_seconds: 0
    ignore_standalone_pods: false
- rule: Terminal shell in container
  match:
    rules:
      - Terminal shell in container
  actions:
    - action: Terminate Pod
"""

Headers = List[Tuple[str, str]]


def alert_for(namespace: str, pod: str, uid: str) -> Dict[str, Any]:
    """A "Terminal shell in container" alert for one pod, as Falco writes it now. Talon
    deduplicates on the ``output`` text, so the pod is named there too, as Falco does."""
    alert: Dict[str, Any] = copy.deepcopy(ALERT)
    now = time.time() + 2  # the pods are older than the alert at one-second precision
    alert["time"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(now))
    alert["output"] = alert["output"].replace("k8s_ns=default k8s_pod_name=alpine",
                                              f"k8s_ns={namespace} k8s_pod_name={pod}")
    alert["output_fields"].update({"k8s.ns.name": namespace, "k8s.pod.name": pod,
                                   "k8s.pod.uid": uid})
    return alert


@dataclass
class Contender:
    label: str
    argv: Sequence[str]
    env: Dict[str, str]
    probe: str
    cloudevent: bool = False
    #: Called with the port before each start (Talon reads its port from a file).
    prepare: Optional[Callable[[int], None]] = None
    port: int = 0
    process: Any = None

    def request(self, alert: Dict[str, Any]) -> Tuple[Headers, bytes]:
        body = json.dumps(alert).encode()
        if not self.cloudevent:
            return [("Content-Type", "application/json")], body
        # Falcosidekick's cloudevents output: binary mode, the alert as data.
        return [("Ce-Specversion", "1.0"), ("Ce-Id", f"{alert['output_fields']['k8s.pod.name']}"
                                            f"-{time.monotonic_ns()}"),
                ("Ce-Source", "https://falco.org"), ("Ce-Type", "falco.rule.output.v1"),
                ("Ce-Time", alert["time"]), ("Content-Type", "application/json")], body

    def start(self, workdir: Path) -> float:
        """Start on a new port; seconds until ``probe`` answers (the process keeps running)."""
        self.port = procs.free_port()
        if self.prepare is not None:
            self.prepare(self.port)
        argv = [a.replace("{port}", str(self.port)) for a in self.argv]
        env = {k: v.replace("{port}", str(self.port)) for k, v in self.env.items()}
        started = time.perf_counter()
        name = self.label.split()[-1].strip("`")
        self.process = procs.start(name, argv, workdir / f"{name}-{self.port}.log", env)
        procs.wait_until(self.answering, 60, f"{self.label} answering", self.process,
                         interval=0.002)
        return time.perf_counter() - started

    def answering(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{self.probe}",
                                        timeout=2):
                return True
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False

    def stop(self) -> None:
        if self.process is not None:
            self.process.stop()
            self.process = None

    def rss_mb(self) -> float:
        with open(f"/proc/{self.process.pid}/status") as f:
            line = next(line for line in f if line.startswith("VmRSS:"))
        return int(line.split()[1]) / 1024


def _base_env() -> Dict[str, str]:
    import os

    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/nonexistent",
            "PYTHONUNBUFFERED": "1"}


def talon(workdir: Path, kubeconfig: Path) -> Contender:
    (workdir / "talon-rules.yaml").write_text(TALON_RULES)

    def configure(port: int) -> None:
        config = {"listen_address": "127.0.0.1", "listen_port": port,
                  "kubeconfig": str(kubeconfig), "log_format": "json", "watch_rules": False,
                  "print_all_events": False, "rules_files": [str(workdir / "talon-rules.yaml")],
                  # Outside a cluster: no lease to elect a leader with; its own NATS dedups.
                  "deduplication": {"leader_election": False, "time_window_seconds": 5},
                  # An Event per action, as ours records one.
                  "default_notifiers": ["k8sevents"]}
        (workdir / f"talon-{port}.yaml").write_text(yaml.safe_dump(config))

    return Contender("Falco Talon 0.3.0", [str(peers.binary("falco-talon")), "server", "-c",
                                           str(workdir / "talon-{port}.yaml")],
                     _base_env(), "/healthz", prepare=configure)


def make_run(workdir: Path, kubeconfig: Path) -> Contender:
    (workdir / "policy.yaml").write_text(POLICY)
    env = {**_base_env(), "KUBECONFIG": str(kubeconfig),
           "FALCO_RESPONDER_POLICY": str(workdir / "policy.yaml")}
    return Contender("`make run` server", [sys.executable, "-m", "function", "serve",
                                           "--port", "{port}"], {**env, "PYTHONPATH": str(REPO)},
                     "/health/readiness")


def dry(make: Callable[[Path, Path], Contender]) -> Callable[[Path, Path], Contender]:
    """The same responder with no cluster: every decision a dry run, no API call."""
    def made(workdir: Path, kubeconfig: Path) -> Contender:
        contender = make(workdir, kubeconfig)
        contender.label += ", dry run"
        contender.env["FALCO_RESPONDER_CLUSTER"] = "off"
        return contender
    return made


def knative_func(workdir: Path, kubeconfig: Path) -> Contender:
    """This checkout as func builds it (func's own scaffolding, ``pip install . --target
    lib``), run as its image runs it."""
    from tests.testbed import knative_func as func

    build = func.build()
    (workdir / "policy.yaml").write_text(POLICY)
    env = {**_base_env(), **func.environment(build), "KUBECONFIG": str(kubeconfig),
           "LISTEN_ADDRESS": "127.0.0.1:{port}",
           "FALCO_RESPONDER_POLICY": str(workdir / "policy.yaml")}
    return Contender("Knative func runtime", func.command(build), env, "/health/readiness",
                     cloudevent=True)
