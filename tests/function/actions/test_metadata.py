"""label, annotate, isolate and record against the real API server."""

from __future__ import annotations

import pytest
from kubernetes import client

from tests.testbed.kube import Kube

from .conftest import Responder, events_for, post, shell_alert_for

pytestmark = pytest.mark.cluster


def rule(actions: str, extra: str = "") -> str:
    return (f"{extra}\nrules: [{{name: r, match: {{rules: ['Terminal shell in container']}}, "
            f"actions: {actions}}}]")


def test_label_sets_and_removes_labels(kube: Kube, responder: Responder) -> None:
    kube.create_standalone_pod("alpine", labels={"stale": "yes", "app": "shop"})
    engine = responder(rule("[{action: label, parameters: {labels: "
                            "{falco.org/suspicious: 'true', stale: null}}}]"))
    (action,) = post(engine, shell_alert_for(kube.namespace, "alpine")).body["actions"]
    assert action["status"] == "done"
    assert action["reason"].startswith("labels falco.org/suspicious=true, -stale")
    labels = kube.read_pod("alpine").metadata.labels  # type: ignore[union-attr]
    assert labels == {"app": "shop", "falco.org/suspicious": "true"}


def test_annotate_sets_annotations(kube: Kube, responder: Responder) -> None:
    kube.create_standalone_pod("alpine")
    engine = responder(rule("[{action: annotate, parameters: {annotations: "
                            "{falco.org/rule: 'Terminal shell, with = and ,'}}}]"))
    (action,) = post(engine, shell_alert_for(kube.namespace, "alpine")).body["actions"]
    assert action["status"] == "done"
    annotations = kube.read_pod("alpine").metadata.annotations  # type: ignore[union-attr]
    assert annotations["falco.org/rule"] == "Terminal shell, with = and ,"


def test_label_refuses_a_same_named_replacement(kube: Kube, responder: Responder) -> None:
    kube.create_standalone_pod("alpine")
    engine = responder(rule("[{action: label, parameters: {labels: {hit: 'yes'}}}]",
                            "guards: {stale_target: false}"))
    alert = shell_alert_for(kube.namespace, "alpine", uid="11111111-2222-3333-4444-555555555555")
    (action,) = post(engine, alert).body["actions"]
    assert action["status"] == "skipped" and "UID differs" in action["reason"]
    assert "hit" not in (kube.read_pod("alpine").metadata.labels or {})  # type: ignore[union-attr]


def test_isolate_labels_the_pod_and_denies_all_its_traffic(kube: Kube,
                                                           responder: Responder) -> None:
    kube.create_standalone_pod("alpine")
    kube.create_standalone_pod("other")
    engine = responder(rule("[{action: isolate}]"))
    (first,) = post(engine, shell_alert_for(kube.namespace, "alpine")).body["actions"]
    assert first["status"] == "done" and first["reason"].endswith("NetworkPolicy created")
    (second,) = post(engine, shell_alert_for(kube.namespace, "other")).body["actions"]
    assert second["status"] == "done" and second["reason"].endswith("NetworkPolicy updated")
    pod = kube.read_pod("alpine")
    assert pod.metadata.labels["falco-responder/isolated"] == "true"  # type: ignore[union-attr]
    policy = client.NetworkingV1Api(kube.api_client).read_namespaced_network_policy(
        "falco-responder-isolate", kube.namespace)
    assert policy.spec.pod_selector.match_labels == {"falco-responder/isolated": "true"}
    assert sorted(policy.spec.policy_types) == ["Egress", "Ingress"]
    assert not policy.spec.ingress and not policy.spec.egress


def test_isolate_replaces_a_policy_of_the_same_name_whole(kube: Kube,
                                                         responder: Responder) -> None:
    networking = client.NetworkingV1Api(kube.api_client)
    networking.create_namespaced_network_policy(kube.namespace, {
        "metadata": {"name": "falco-responder-isolate"},
        "spec": {"podSelector": {"matchLabels": {"team": "a"}}, "policyTypes": ["Ingress"]}})
    kube.create_standalone_pod("alpine")
    engine = responder(rule("[{action: isolate}]"))
    (action,) = post(engine, shell_alert_for(kube.namespace, "alpine")).body["actions"]
    assert action["reason"].endswith("NetworkPolicy updated")
    policy = networking.read_namespaced_network_policy("falco-responder-isolate",
                                                       kube.namespace)
    # Merged labels would be {team: a, falco-responder/isolated: true}: isolating no one.
    assert policy.spec.pod_selector.match_labels == {"falco-responder/isolated": "true"}
    assert sorted(policy.spec.policy_types) == ["Egress", "Ingress"]


def test_record_creates_an_event_on_the_pod(kube: Kube, responder: Responder) -> None:
    kube.create_standalone_pod("alpine")
    engine = responder(rule("[{action: record, parameters: {reason: ShellSeen}}]"))
    (action,) = post(engine, shell_alert_for(kube.namespace, "alpine")).body["actions"]
    assert (action["status"], action["reason"]) == ("done", "event recorded")
    (event,) = events_for(kube, "alpine")
    assert event.reason == "ShellSeen"
    assert event.message.startswith("Falco rule 'Terminal shell in container' (Notice) -> ")
    assert kube.read_pod("alpine") is not None


def test_events_can_be_turned_off(kube: Kube, responder: Responder) -> None:
    kube.create_standalone_pod("alpine")
    engine = responder(rule("[{action: terminate}]", "record_events: false"))
    (action,) = post(engine, shell_alert_for(kube.namespace, "alpine")).body["actions"]
    assert action["status"] == "done"
    assert events_for(kube, "alpine") == []


def test_actions_on_a_missing_pod_are_skipped(kube: Kube, responder: Responder) -> None:
    engine = responder(rule("[{action: label, parameters: {labels: {a: b}}}, {action: isolate}]"))
    body = post(engine, shell_alert_for(kube.namespace, "ghost")).body
    assert [(a["status"], a["reason"]) for a in body["actions"]] == [
        ("skipped", "pod not found"), ("skipped", "pod not found")]


def test_an_event_created_twice_for_one_key_is_one_event(kube: Kube) -> None:
    """What a retry after a lost answer does: the second create finds the first."""
    from function.kube import Kube as Api

    api = Api(kube.api_client)
    pod = {"name": "alpine", "uid": "u-1"}
    for _ in range(2):
        api.create_event(kube.namespace, pod, "FalcoResponse", "terminate: pod deleted",
                         "terminate", key="alert-1|rule|terminate")
    api.create_event(kube.namespace, pod, "FalcoResponse", "label", "label", key="other")
    assert len(events_for(kube, "alpine")) == 2
