"""Falco Talon against our function, side by side in one run on the test bed's API server.

    make bench        (or: .venv/bin/python -m bench.versus; builds nothing itself)

Falco Talon 0.3.0 (built by `python -m tests.testbed.build falco-talon`), our function on
`make run`'s server and on the Knative func runtime, all logged in with the same kubeconfig,
each started from nothing:

- cold start: process start -> ready, and -> the first alert (for a real pod) answered;
  median of 3 starts;
- reaction: 50 alerts one at a time for 50 pods, alert sent -> pod announced DELETED on a
  watch; the same calls made bare with the `kubernetes` client (GET pod, GET namespace,
  DELETE with the UID precondition) timed the same way, in the same run;
- storm: 10,000 alerts over 50 pods from 8 keep-alive clients: alerts answered per second,
  and when the last pod was announced gone; then the responder's RSS.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path
from typing import Callable, Dict, List, Optional

from bench import reaction as r
from bench.contenders import Contender, dry, knative_func, make_run, talon
from tests.testbed.apiserver import start_apiserver
from tests.testbed.kube import Kube

COLD_STARTS = 3


CONTENDERS = {"talon": talon, "make-run": make_run, "knative": knative_func}
#: Not in the default run: the same responders without a cluster, to see what the cluster
#: costs (storm only: nothing is deleted, so the reaction phase does not apply).
EXTRA = {"make-run-dry": dry(make_run), "knative-dry": dry(knative_func)}
PHASES = ("cold", "reaction", "storm")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.versus", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="comma-separated, of: " + ", ".join([*CONTENDERS, *EXTRA]))
    parser.add_argument("--phases", default=",".join(PHASES),
                        help="comma-separated, of: " + ", ".join(PHASES))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-versus-") as tmp:
        work = Path(tmp)
        print("starting etcd + kube-apiserver ...", flush=True)
        server = start_apiserver(work / "apiserver")
        try:
            return compare(server, work, args.contenders.split(","), args.phases.split(","))
        finally:
            server.stop()


def compare(server: object, work: Path, names: List[str], phases: List[str]) -> int:
    kube = Kube(server, work)  # type: ignore[arg-type]
    kube.ensure_service_account("default", "default")
    kubeconfig = server.kubeconfig  # type: ignore[attr-defined]
    api_client = server.api_client  # type: ignore[attr-defined]
    contenders = [{**CONTENDERS, **EXTRA}[name](work, kubeconfig) for name in names]
    for contender in contenders:
        # Each of ours keeps its guard state (Leases) in a home of its own, as two separate
        # deployments would: one's blast-radius count must not stop the other.
        contender.env.setdefault("POD_NAMESPACE", kube.create_namespace(prefix="home"))
    load_before = os.getloadavg()
    rows: Dict[str, Dict[str, str]] = {c.label: {} for c in contenders}
    reactions: Dict[str, float] = {}

    def fresh_namespace() -> None:
        kube.namespace = kube.create_namespace(prefix="bench")

    for c in contenders if "cold" in phases else []:
        fresh_namespace()
        print(f"{c.label}: cold starts ...", flush=True)
        starts = sorted(r.cold_start(c, kube, work) for _ in range(COLD_STARTS))
        ready, first = starts[len(starts) // 2]
        rows[c.label]["process start -> ready"] = f"{ready:.2f} s"
        rows[c.label]["process start -> first alert answered"] = f"{first:.2f} s"

    bare = None
    if "reaction" in phases:
        fresh_namespace()
        print("bare `kubernetes` client: GET pod, GET namespace, DELETE ...", flush=True)
        bare = r.bare_calls(kube, api_client)

    for c in contenders if {"reaction", "storm"} & set(phases) else []:
        c.start(work)
        try:
            if "reaction" in phases:
                fresh_namespace()
                print(f"{c.label}: 50 alerts one at a time ...", flush=True)
                act, client = r.send_one(c, kube.namespace)
                times = r.reaction(kube, api_client, act, "react")
                client.close()
                reactions[c.label] = r.p50(times)
                rows[c.label]["alert -> pod DELETED, p50"] = f"{r.p50(times):.1f} ms"
            if "storm" not in phases:
                continue
            fresh_namespace()
            print(f"{c.label}: storm ...", flush=True)
            result = r.storm(c, kube, api_client, acts="dry run" not in c.label)
            rows[c.label]["storm: all 50 pods gone"] = f"{result.all_gone_s:.2f} s"
            rows[c.label]["storm: alerts answered per second"] = f"{result.answered_per_s:,.0f}"
            rows[c.label]["storm: HTTP statuses"] = str(result.statuses)
            rows[c.label]["RSS after the storm"] = f"{c.rss_mb():.0f} MB"
        finally:
            c.stop()

    report(contenders, rows, bare, reactions, load_before)
    return 0


def report(contenders: List[Contender], rows: Dict[str, Dict[str, str]],
           bare: Optional[r.Bare], reactions: Dict[str, float], load_before: object) -> None:
    labels = [c.label for c in contenders]
    print(f"\nload average before: {load_before}, after: {os.getloadavg()} (2 cores)")
    print("| | " + " | ".join(labels) + " |")
    print("|---|" + "---|" * len(labels))
    for key in ["alert -> pod DELETED, p50", "storm: all 50 pods gone",
                "storm: alerts answered per second", "storm: HTTP statuses",
                "process start -> ready", "process start -> first alert answered",
                "RSS after the storm"]:
        print(f"| {key} | " + " | ".join(rows[label].get(key, "-") for label in labels) + " |")
    if bare is None:
        return
    calls = " + ".join(f"{name} {r.p50(ms):.1f}" for name, ms in bare.calls_ms.items())
    bare_p50 = r.p50(bare.reaction_ms)
    print(f"\nbare `kubernetes` client, one call after another: {calls} ms; "
          f"start -> pod DELETED p50 {bare_p50:.1f} ms")
    check: Callable[[bool], str] = lambda ok: "meets" if ok else "MISSES"  # noqa: E731
    talon_ms: Optional[float] = None
    for label in labels:
        if label.startswith("Falco Talon"):
            talon_ms = reactions[label]
            continue
        ours = reactions[label]
        versus = "" if talon_ms is None else (
            f"{talon_ms / ours:.0f}x faster than Talon (target >= 10x: "
            f"{check(talon_ms >= 10 * ours)}), ")
        print(f"{label}: reaction {ours:.1f} ms = {versus}{ours / bare_p50:.2f}x the bare "
              f"calls (target <= 0.5x: {check(ours <= 0.5 * bare_p50)})")


if __name__ == "__main__":
    sys.exit(main())
