"""terminate on a cluster whose controllers act: owners, their status and the pods that come
back are the real controllers' own, not written by the test."""

from __future__ import annotations

import contextlib
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Dict, Iterator, List

import pytest

from tests.testbed.kube import Kube
from tests.testbed.kwok import NODE
from tests.testbed.pods import wait_running

from .conftest import Responder, post, shell_alert_for
from .test_terminate import min_healthy, only_action

pytestmark = pytest.mark.cluster


def running(kube: Kube, app: str, count: int) -> List[Dict[str, Any]]:
    return wait_running(kube.api_client, kube.namespace, f"app={app}", count)


@contextlib.contextmanager
def cordoned(kube: Kube) -> Iterator[None]:
    """No new pod is scheduled meanwhile: a deleted replica's replacement stays Pending, as
    it would while a real node pulls its image (kwok makes pods Ready at once)."""
    kube.core.patch_node(NODE, {"spec": {"unschedulable": True}})
    try:
        yield
    finally:
        kube.core.patch_node(NODE, {"spec": {"unschedulable": False}})


def wait_available(kube: Kube, deployment: str, replicas: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while (kube.apps.read_namespaced_deployment(deployment, kube.namespace)
           .status.available_replicas or 0) != replicas:
        assert time.monotonic() < deadline, f"{deployment} never had {replicas} available"
        time.sleep(0.05)


@pytest.mark.parametrize("minimum,acts,text", [
    ("'50%'", True, ""),
    ("'66%'", True, ""),    # 66% of 3 is 1.98: 2 required, 2 stay
    ("'67%'", False, "would keep 2 ready replica(s), 3 required (67% of 3 desired)"),
    ("'100%'", False, "would keep 2 ready replica(s), 3 required (100% of 3 desired)"),
    ("2", True, ""),
    ("3", False, "would keep 2 ready replica(s), 3 required"),
])
def test_min_healthy_replicas_as_count_or_percent_of_desired(
        cluster_kube: Kube, cluster_responder: Responder, minimum: str, acts: bool,
        text: str) -> None:
    engine = cluster_responder(min_healthy(minimum))
    cluster_kube.create_deployment("web", replicas=3)
    target = running(cluster_kube, "web", 3)[0]["metadata"]["name"]

    action = only_action(post(engine, shell_alert_for(cluster_kube.namespace, target)))

    if acts:
        assert (action["status"], action["reason"]) == ("done", "pod deleted")
    else:
        assert action["status"] == "skipped"
        assert action["reason"] == f"min_healthy_replicas: Deployment web {text}"
        assert cluster_kube.read_pod(target) is not None


def test_concurrent_alerts_take_one_pod_and_the_next_waits_for_the_replacement(
        cluster_kube: Kube, cluster_responder: Responder) -> None:
    engine = cluster_responder(min_healthy("2"))
    cluster_kube.create_deployment("web", replicas=3)
    names = [p["metadata"]["name"] for p in running(cluster_kube, "web", 3)]
    wait_available(cluster_kube, "web", 3)

    with cordoned(cluster_kube), ThreadPoolExecutor(3) as pool:
        actions = list(pool.map(lambda n: only_action(
            post(engine, shell_alert_for(cluster_kube.namespace, n))), names))

    assert sorted(a["status"] for a in actions) == ["done", "skipped", "skipped"], actions
    left = [n for n, a in zip(names, actions) if a["status"] == "skipped"]
    # Once the ReplicaSet controller's third pod is Ready, one more of the others may go:
    # at once, not after the owner's status catches up.
    running(cluster_kube, "web", 3)
    later = only_action(post(engine, shell_alert_for(cluster_kube.namespace, left[0])))
    assert (later["status"], later["reason"]) == ("done", "pod deleted")


def test_replicas_of_the_function_never_together_take_an_owner_below_its_minimum(
        cluster_kube: Kube, cluster_responder: Responder) -> None:
    """Two replicas of the function (two engines sharing the guard state through Leases),
    three alerts at once for a Deployment of three with a minimum of two."""
    from function import Engine

    first = cluster_responder(min_healthy("2"))
    second = Engine.from_settings(first.settings)
    assert first.state.kind == second.state.kind == "kubernetes"
    cluster_kube.create_deployment("web", replicas=3)
    names = [p["metadata"]["name"] for p in running(cluster_kube, "web", 3)]

    with cordoned(cluster_kube), ThreadPoolExecutor(3) as pool:
        actions = list(pool.map(
            lambda pair: only_action(post(pair[0], shell_alert_for(cluster_kube.namespace,
                                                                   pair[1]))),
            zip((first, second, first), names)))

    assert sorted(a["status"] for a in actions) == ["done", "skipped", "skipped"], actions
    assert sum(cluster_kube.read_pod(n) is None for n in names) == 1


def test_a_daemonset_pod_is_left_alone(cluster_kube: Kube,
                                       cluster_responder: Responder) -> None:
    cluster_kube.create_daemonset("agent")
    (pod,) = running(cluster_kube, "agent", 1)

    action = only_action(post(cluster_responder(),
                              shell_alert_for(cluster_kube.namespace,
                                              pod["metadata"]["name"])))

    assert action["status"] == "skipped" and "owned by DaemonSet agent" in action["reason"]
    assert cluster_kube.read_pod(pod["metadata"]["name"]) is not None


def test_a_statefulset_pod_recreated_under_the_same_name_is_not_hit_again(
        cluster_kube: Kube, cluster_responder: Responder) -> None:
    engine = cluster_responder()
    cluster_kube.create_statefulset("db")
    (pod,) = running(cluster_kube, "db", 1)
    uid = pod["metadata"]["uid"]
    alert = shell_alert_for(cluster_kube.namespace, "db-0", uid=uid)

    assert only_action(post(engine, alert))["status"] == "done"
    deadline = time.monotonic() + 30
    while True:  # the StatefulSet controller makes db-0 again, a new pod
        (again,) = running(cluster_kube, "db", 1)
        if again["metadata"]["uid"] != uid:
            break
        assert time.monotonic() < deadline, "db-0 was not recreated"
        time.sleep(0.05)

    retried = only_action(post(engine, alert))  # the same alert, delivered again

    assert retried["status"] == "skipped", retried
    assert cluster_kube.read_pod("db-0").metadata.uid == again["metadata"]["uid"]
