"""An alert storm against the real API server: 10,000 alerts over 50 pods.

    make bench            (or: .venv/bin/python -m bench.storm)

Starts the test bed's etcd + kube-apiserver, creates 50 pods, and sends 10,000
"Terminal shell in container" alerts (200 per pod, shuffled) through the engine from 8
threads, the function logged in with the RBAC generated for its policy, its guards in
Leases (the default with a cluster). Expected: exactly 50 terminations (dedup absorbs the
rest), all 50 pods gone, drained in <= 5 s.
The blast-radius limit is raised to 100 per minute here: its default (10 per minute)
would, by design, stop this storm after 10 pods.
"""

from __future__ import annotations

import collections
import json
import os
import random
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Counter, List

from function import Engine, Settings
from function.decision_log import DECISIONS
from tests.function.account import generated_account
from tests.function.replicas import terminate_only
from tests.testbed.kube import Kube

from .testbed import with_apiserver

PODS, ALERTS, THREADS, TARGET_S = 50, 10_000, 8, 5.0
POLICY = terminate_only(100)
WIRE = (Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "forwarded"
        / "terminal_shell_in_container.falco-0.37-ovh-k8s.forwarded.json")


def main() -> int:
    return with_apiserver("storm-", storm)


def storm(server: object, work: Path) -> int:
    kube = Kube(server, work)  # type: ignore[arg-type]
    kube.ensure_service_account("default", "default")
    namespace = kube.create_namespace(prefix="storm")
    kube.namespace = namespace
    names = [f"victim-{i:02d}" for i in range(PODS)]
    for name in names:
        kube.create_standalone_pod(name)
    # Dedup and the blast radius in Leases, as every replica would share them.
    home, kubeconfig = generated_account(kube, POLICY, "storm-responder")
    os.environ["KUBECONFIG"] = str(kubeconfig)
    policy_file = work / "policy.yaml"
    policy_file.write_text(POLICY)
    engine = Engine.from_settings(Settings(policy_file=str(policy_file), pod_namespace=home))

    template = json.loads(WIRE.read_text())
    template["time"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(time.time() + 5))
    bodies = []
    for name in names:
        alert = json.loads(json.dumps(template))
        alert["output_fields"].update({"k8s.ns.name": namespace, "k8s.pod.name": name})
        bodies.append(json.dumps(alert).encode())
    stream = [bodies[i % PODS] for i in range(ALERTS)]
    random.Random(7).shuffle(stream)
    headers = {"Content-Type": "application/json"}

    outcomes: Counter[str] = collections.Counter()
    statuses: Counter[int] = collections.Counter()
    print(f"sending {ALERTS} alerts over {PODS} pods from {THREADS} threads ...", flush=True)
    # One JSON line per alert, as in production, into a file rather than this console.
    log_path = work / "decisions.log"
    stderr, sys.stderr = sys.stderr, open(log_path, "w")  # noqa: SIM115
    try:
        started = time.perf_counter()
        with ThreadPoolExecutor(THREADS) as pool:
            responses: List = list(pool.map(lambda b: engine.handle_http(headers, b), stream))
        drained = time.perf_counter() - started
    finally:
        DECISIONS.flush()
        sys.stderr.close()
        sys.stderr = stderr
    log_lines = sum(1 for line in log_path.read_text().splitlines() if line.startswith("{"))
    for r in responses:
        statuses[r.status] += 1
        for a in r.body.get("actions", []):
            outcomes[f"{a['status']}: {a['reason'].split(':')[0]}"] += 1
    left = [n for n in names if kube.read_pod(n, namespace) is not None]
    terminations = outcomes["done: pod deleted"]

    print("| alerts | pods | terminations | pods left | HTTP statuses | drained (s) |"
          " alerts/s |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {ALERTS} | {PODS} | {terminations} | {len(left)} | {dict(statuses)} | "
          f"{drained:.2f} | {ALERTS / drained:.0f} |")
    print("outcomes:", dict(outcomes), f"; decision log lines: {log_lines}")
    ok = (terminations == PODS and not left and drained <= TARGET_S
          and statuses[200] == ALERTS and log_lines == ALERTS)
    print(f"target: exactly {PODS} terminations, drained in <= {TARGET_S:.0f} s -> "
          f"{'meets' if ok else 'MISSES'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
