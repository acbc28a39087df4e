"""Three replicas, three processes, one blast radius: the guards hold across replicas.

Each replica is ``python -m function serve`` logged in as deploy/rbac's ServiceAccount, on
the real API server; they share nothing but the Kubernetes API.
"""

from __future__ import annotations

import collections
import json
import random
from pathlib import Path
from typing import Any, Counter, Dict, Iterator, List

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.testbed.kube import Kube

from .actions.conftest import shell_alert_for
from .replicas import Replicas, actions, send, terminate_only

pytestmark = pytest.mark.cluster


@pytest.fixture
def replicas(kube: Kube, tmp_path: Path) -> Iterator[Any]:
    started: List[Replicas] = []

    def make(count: int = 3, policy: str = "", **env: str) -> Replicas:
        started.append(Replicas(kube, tmp_path, count, policy, env))
        return started[-1]

    yield make
    for group in started:
        group.stop()


def alerts_for(kube: Kube, pods: List[str], per_pod: int, seed: int = 7) -> List[bytes]:
    bodies = [json.dumps(shell_alert_for(kube.namespace, name)).encode() for name in pods]
    stream = [bodies[i % len(pods)] for i in range(per_pod * len(pods))]
    random.Random(seed).shuffle(stream)
    return stream


def make_pods(kube: Kube, count: int) -> List[str]:
    names = [f"victim-{i:02d}" for i in range(count)]
    for name in names:
        kube.create_standalone_pod(name)
    return names


def left(kube: Kube, names: List[str]) -> List[str]:
    return [n for n in names if kube.read_pod(n) is not None]


def reasons(found: List[Dict[str, Any]]) -> Counter[str]:
    return collections.Counter(f"{a['status']}: {a['reason'].split(':')[0]}" for a in found)


def test_200_concurrent_alerts_for_20_pods_delete_exactly_10(kube: Kube, replicas: Any) -> None:
    """The default policy allows 10 destructive actions a minute, whichever replica acts."""
    group = replicas(3)
    pods = make_pods(kube, 20)
    answers = send(group.ports, alerts_for(kube, pods, 10), threads=24)
    assert collections.Counter(status for status, _ in answers) == {200: 200}
    found = actions(answers)
    assert len(found) == 200
    counted = reasons(found)
    assert counted["done: pod deleted"] == 10, counted
    assert len(left(kube, pods)) == 10
    # Every other decision says why: a duplicate or the rate limit, nothing else.
    others = [a for a in found if a["reason"] != "pod deleted"]
    assert all(a["status"] == "skipped" for a in others), counted
    assert {r.split(":")[0] for r in (a["reason"] for a in others)} <= {
        "duplicate", "rate limit"}, counted
    assert counted["skipped: rate limit"] > 0


def test_10000_alerts_over_50_pods_delete_each_once(kube: Kube, replicas: Any) -> None:
    group = replicas(3, terminate_only(100))
    pods = make_pods(kube, 50)
    answers = send(group.ports, alerts_for(kube, pods, 200), threads=24)
    assert collections.Counter(status for status, _ in answers) == {200: 10_000}
    found = actions(answers)
    deleted = collections.Counter(a["target"] for a in found if a["reason"] == "pod deleted")
    assert deleted == {f"{kube.namespace}/{name}": 1 for name in pods}
    assert left(kube, pods) == []
    assert all(a["status"] == "skipped" and a["reason"].startswith("duplicate")
               for a in found if a["reason"] != "pod deleted")
    events = kube.core.list_namespaced_event(kube.namespace).items
    assert collections.Counter(e.involved_object.name for e in events
                               if e.reason == "FalcoResponse") == {name: 1 for name in pods}
    # The replicas did meet on the shared state, and no conflict became an error.
    scraped = [_samples(group.metrics(i)) for i in range(3)]
    assert all(s.get("falco_responder_errors_total", 0) == 0 for s in scraped)
    assert sum(s["falco_responder_alerts_total"] for s in scraped) == 10_000


def test_a_replica_killed_in_the_middle_loses_no_count(kube: Kube, replicas: Any) -> None:
    """Replica 0 acts on 6 pods and is killed (SIGKILL, no cleanup); the other two still
    count its 6 against the limit of 10, so only 4 more pods go."""
    group = replicas(3)
    pods = make_pods(kube, 20)
    first = send(group.ports[:1], alerts_for(kube, pods[:6], 3), threads=6)
    assert reasons(actions(first))["done: pod deleted"] == 6
    group.kill(0)
    rest = send(group.ports[1:], alerts_for(kube, pods, 10), threads=16)
    assert collections.Counter(status for status, _ in rest) == {200: 200}
    counted = reasons(actions(rest))
    assert counted["done: pod deleted"] == 4, counted
    assert len(left(kube, pods)) == 10


def _samples(text: str) -> Dict[str, float]:
    """Sample name -> value summed over labels, parsed by prometheus_client's own parser."""
    sums: Dict[str, float] = collections.defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            sums[sample.name] += sample.value
    return sums
