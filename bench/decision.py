"""Decision time per alert: parse + a 20-rule policy, dry run, no I/O, on one core.

    make bench            (or: .venv/bin/python -m bench.decision)

Times ``Engine.handle_http`` on the Falcosidekick-forwarded "Terminal shell in container"
alert (the real wire bytes), one call at a time, with the per-alert JSON log line on
(written to /dev/null) and off. The matching rule is the last of 20, so every rule is
evaluated. Target: median <= 50 us.
"""

from __future__ import annotations

import gc
import logging
import os
import statistics
import sys
import time
from pathlib import Path
from typing import List

from function import Engine, Settings
from function.decision_log import DECISIONS
from function.policy import parse_policy

WIRE = Path(__file__).resolve().parents[2] / "shared" / "fixtures" / "wire" / "webhook_post.http"
TARGET_US = 50.0


def twenty_rules() -> str:
    """19 rules that do not match, of every criterion kind, then the one that does."""
    misses = [
        '{rules: ["Write below etc", "Write below binary dir"]}',
        '{rules: ["*privileged*"], priority: ">=Warning"}',
        "{sources: [k8s_audit]}",
        "{tags: {all: [mitre_persistence, container]}}",
        '{priority: ">=Critical"}',
        "{fields: [{field: k8s.ns.name, in: [prod, payments, checkout]}]}",
        "{fields: [{field: proc.cmdline, regex: '^(nc|ncat|socat) '}]}",
        "{fields: [{field: container.image.repository, glob: 'registry.internal/*'}]}",
        "{namespaces: {include: ['prod-*', 'staging-*']}}",
        '{rules: ["Read sensitive file*"], sources: [syscall]}',
        "{fields: [{field: fd.name, equals: /etc/shadow}]}",
        "{tags: {any: [mitre_credential_access]}}",
        '{rules: ["Contact K8S API Server From Container"]}',
        "{fields: [{field: k8s.pod.uid, exists: true}]}",
        '{rules: ["Terminal shell in container"], namespaces: {exclude: [default]}}',
        '{priority: "<Notice"}',
        "{fields: [{field: user.name, not_in: [root]}]}",
        '{rules: ["Launch*"], tags: {any: [container]}}',
        "{sources: [aws_cloudtrail, okta]}",
    ]
    rules = [f"  - {{name: miss-{i}, match: {m}, actions: [{{action: terminate}}]}}"
             for i, m in enumerate(misses)]
    rules.append('  - {name: hit, match: {rules: ["Terminal shell in container"], '
                 'priority: ">=Notice", fields: [{field: k8s.ns.name, equals: default}]}, '
                 "actions: [{action: terminate, parameters: {grace_period_seconds: 0}}]}")
    return "guards: {dedup_seconds: 0}\nrules:\n" + "\n".join(rules) + "\n"


def wire_request() -> tuple:  # type: ignore[type-arg]
    head, _, body = WIRE.read_bytes().partition(b"\r\n\r\n")
    headers = [tuple(s.strip() for s in line.split(":", 1))
               for line in head.decode().split("\r\n")[1:]]
    return headers, body


def measure(engine: Engine, headers: list, body: bytes, n: int) -> List[float]:  # type: ignore[type-arg]
    for _ in range(2000):  # warm up
        engine.handle_http(headers, body)
    samples = []
    gc.disable()
    try:
        for _ in range(n):
            start = time.perf_counter_ns()
            engine.handle_http(headers, body)
            samples.append((time.perf_counter_ns() - start) / 1000)
    finally:
        gc.enable()
    return samples


def main() -> int:
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    policy = parse_policy(twenty_rules(), "bench/20-rules")
    assert len(policy.rules) == 20
    engine = Engine(policy, Settings(cluster="off", dry_run=True))
    headers, body = wire_request()
    response = engine.handle_http(headers, body)
    assert response.status == 200 and response.body["matched_rules"] == ["hit"], response.body
    assert response.body["actions"][0]["status"] == "would"

    rows = []
    log = logging.getLogger("function")
    stderr = sys.stderr
    for label, logging_on in (("log line off", False), ("log line on (to /dev/null)", True)):
        # The per-alert line goes to stderr when the "function" logger is at INFO.
        log.setLevel(logging.INFO if logging_on else logging.WARNING)
        sys.stderr = open(os.devnull, "w")  # noqa: SIM115
        try:
            samples = measure(engine, headers, body, 20000)
        finally:
            DECISIONS.flush()
            sys.stderr.close()
            sys.stderr = stderr
        log.setLevel(logging.WARNING)
        samples.sort()
        rows.append((label, statistics.median(samples), samples[int(len(samples) * 0.99)]))

    print(f"Decision time per alert: parse + 20-rule policy, dry run, no I/O, one core "
          f"(Python {sys.version.split()[0]})")
    print("| case | median (us) | p99 (us) |")
    print("|---|---|---|")
    for label, median, p99 in rows:
        print(f"| {label} | {median:.1f} | {p99:.1f} |")
    worst = max(r[1] for r in rows)
    verdict = "meets" if worst <= TARGET_US else "MISSES"
    print(f"target: median <= {TARGET_US:.0f} us -> {verdict}")
    return 0 if worst <= TARGET_US else 1


if __name__ == "__main__":
    raise SystemExit(main())
