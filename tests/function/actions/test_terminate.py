"""terminate against the real API server, with the generated least-privilege RBAC."""

from __future__ import annotations

import logging
from typing import Any

import pytest

from tests.testbed.kube import Kube

from .conftest import Responder, events_for, post, shell_alert_for

pytestmark = pytest.mark.cluster


def only_action(response: Any) -> Any:
    assert response.status == 200, response.body
    (action,) = response.body["actions"]
    return action


def test_a_shell_kills_its_pod_and_leaves_an_event(kube: Kube, responder: Responder) -> None:
    pod = kube.create_standalone_pod("alpine")
    action = only_action(post(responder(), shell_alert_for(kube.namespace, pod.name)))
    assert action == {"action": "terminate", "target": f"{kube.namespace}/alpine",
                      "status": "done", "reason": "pod deleted",
                      "rule": "terminate-terminal-shells"}
    assert kube.read_pod("alpine") is None
    (event,) = events_for(kube, "alpine")
    assert event.reason == "FalcoResponse" and event.type == "Warning"
    assert "Falco rule 'Terminal shell in container' (Notice) -> terminate: pod deleted" \
        in event.message
    assert event.involved_object.uid == pod.pod.metadata.uid


def test_the_same_alert_twice_acts_once(kube: Kube, responder: Responder) -> None:
    engine = responder()
    kube.create_standalone_pod("alpine")
    alert = shell_alert_for(kube.namespace, "alpine")
    assert only_action(post(engine, alert))["status"] == "done"
    second = only_action(post(engine, alert))
    assert second["status"] == "skipped" and second["reason"].startswith("duplicate")


def test_a_pod_already_gone_is_success(kube: Kube, responder: Responder) -> None:
    action = only_action(post(responder(), shell_alert_for(kube.namespace, "never-was")))
    assert (action["status"], action["reason"]) == ("done", "already gone")


def test_the_uid_in_the_alert_protects_a_same_named_replacement(kube: Kube,
                                                                responder: Responder) -> None:
    kube.create_standalone_pod("alpine")
    alert = shell_alert_for(kube.namespace, "alpine", uid="00000000-dead-beef-0000-000000000000")
    action = only_action(post(responder(), alert))
    assert action["status"] == "skipped" and "UID differs" in action["reason"]
    assert kube.read_pod("alpine") is not None


def test_the_matching_uid_is_deleted(kube: Kube, responder: Responder) -> None:
    pod = kube.create_standalone_pod("alpine")
    alert = shell_alert_for(kube.namespace, "alpine", uid=pod.pod.metadata.uid)
    assert only_action(post(responder(), alert))["status"] == "done"
    assert kube.read_pod("alpine") is None


def test_a_pod_created_after_the_alert_is_not_the_pod_of_the_alert(
        kube: Kube, responder: Responder) -> None:
    kube.create_standalone_pod("alpine")
    alert = shell_alert_for(kube.namespace, "alpine", time="2024-04-03T11:36:27.670410771Z")
    action = only_action(post(responder(), alert))
    assert action["status"] == "skipped" and "after the alert" in action["reason"]
    assert kube.read_pod("alpine") is not None


@pytest.mark.parametrize("kind,reason", [
    ("daemonset", "owned by DaemonSet"),
    ("mirror", "static (mirror) pod"),
])
def test_daemonset_and_static_pods_are_left_alone_by_default(
        kube: Kube, responder: Responder, kind: str, reason: str) -> None:
    family = (kube.create_daemonset_pod("agent") if kind == "daemonset"
              else kube.create_mirror_pod("etcd"))
    action = only_action(post(responder(), shell_alert_for(kube.namespace, family.name)))
    assert action["status"] == "skipped" and reason in action["reason"]
    assert kube.read_pod(family.name) is not None


def test_statefulset_and_deployment_pods_are_terminated(kube: Kube,
                                                        responder: Responder) -> None:
    engine = responder()
    for family in (kube.create_statefulset_pod("db"), kube.create_deployment_pod("web")):
        assert only_action(post(engine, shell_alert_for(kube.namespace, family.name))
                           )["status"] == "done"
        assert kube.read_pod(family.name) is None


SKIPS = """
rules:
  - name: careful
    match: {rules: ["Terminal shell in container"]}
    actions:
      - action: terminate
        parameters: {skip_standalone: true, skip_statefulsets: true}
"""


def test_standalone_and_statefulset_pods_can_be_left_alone(kube: Kube,
                                                           responder: Responder) -> None:
    engine = responder(SKIPS)
    for family, reason in ((kube.create_standalone_pod("solo"), "standalone pod"),
                           (kube.create_statefulset_pod("db"), "owned by StatefulSet")):
        action = only_action(post(engine, shell_alert_for(kube.namespace, family.name)))
        assert action["status"] == "skipped" and reason in action["reason"]
        assert kube.read_pod(family.name) is not None


def min_healthy(value: str) -> str:
    return f"""
rules:
  - name: keep-replicas
    match: {{rules: ["Terminal shell in container"]}}
    actions:
      - action: terminate
        parameters: {{min_healthy_replicas: {value}}}
"""


def test_protected_namespaces_are_never_touched(kube: Kube, responder: Responder) -> None:
    kube.ensure_service_account("default", "kube-system")
    kube.create_standalone_pod("alpine", "kube-system")
    try:
        action = only_action(post(responder(), shell_alert_for("kube-system", "alpine")))
        assert action["status"] == "skipped"
        assert action["reason"] == "namespace kube-system is protected"
        assert kube.read_pod("alpine", "kube-system") is not None
    finally:
        kube.core.delete_namespaced_pod("alpine", "kube-system")


def test_its_own_pod_and_its_own_namespace_are_never_touched(kube: Kube,
                                                             responder: Responder) -> None:
    kube.create_standalone_pod("me")
    engine = responder(pod_name="me", pod_namespace=kube.namespace)
    action = only_action(post(engine, shell_alert_for(kube.namespace, "me")))
    assert action["status"] == "skipped"
    assert "own namespace" in action["reason"]
    assert kube.read_pod("me") is not None


def test_the_own_pod_guard_holds_outside_its_namespace_guard(kube: Kube,
                                                             responder: Responder) -> None:
    kube.create_standalone_pod("me")
    engine = responder("rules: [{name: r, match: {rules: ['*']}, actions: [{action: terminate}]}]"
                       "\nguards: {protected_namespaces: []}", pod_name="me",
                       pod_namespace=kube.namespace)
    action = only_action(post(engine, shell_alert_for(kube.namespace, "me")))
    assert action["status"] == "skipped" and action["reason"] in (
        "the function's own pod", f"namespace {kube.namespace} is the function's own namespace")
    assert kube.read_pod("me") is not None


@pytest.mark.parametrize("labels", [{"app.kubernetes.io/name": "falco"},
                                    {"app": "falcosidekick"}])
def test_falco_and_falcosidekick_pods_are_never_touched(kube: Kube, responder: Responder,
                                                        labels: Any) -> None:
    kube.create_standalone_pod("sensor", labels=labels)
    action = only_action(post(responder(), shell_alert_for(kube.namespace, "sensor")))
    assert action["status"] == "skipped" and "falco" in action["reason"]
    assert kube.read_pod("sensor") is not None


def test_opt_out_on_the_pod_or_its_namespace(kube: Kube, responder: Responder) -> None:
    engine = responder()
    kube.create_standalone_pod("keep", annotations={"falco-responder/exempt": "true"})
    action = only_action(post(engine, shell_alert_for(kube.namespace, "keep")))
    assert action["reason"] == "pod opted out (annotation falco-responder/exempt=true)"
    other = kube.create_namespace(prefix="exempt")
    kube.core.patch_namespace(other, {"metadata": {"labels": {"falco-responder/exempt": "true"}}})
    kube.create_standalone_pod("alpine", other)
    action = only_action(post(engine, shell_alert_for(other, "alpine")))
    assert action["reason"] == f"namespace {other} opted out (label falco-responder/exempt=true)"
    assert kube.read_pod("keep") is not None and kube.read_pod("alpine", other) is not None


LIMITED = """
guards: {rate_limit: {actions: 2, per_seconds: 60}}
rules: [{name: r, match: {rules: ["Terminal shell in container"]}, actions: [{action: terminate}]}]
"""


def test_the_blast_radius_limit_stops_a_storm(kube: Kube, responder: Responder,
                                              caplog: Any) -> None:
    engine = responder(LIMITED)
    for name in ("a", "b", "c"):
        kube.create_standalone_pod(name)
    caplog.set_level(logging.WARNING, logger="function")
    statuses = [only_action(post(engine, shell_alert_for(kube.namespace, n)))
                for n in ("a", "b", "c")]
    assert [s["status"] for s in statuses] == ["done", "done", "skipped"]
    assert statuses[2]["reason"] == "rate limit: 2 destructive actions per 60s reached"
    assert kube.read_pod("c") is not None
    assert any("rate limit" in r.getMessage() for r in caplog.records
               if r.levelno == logging.WARNING)


@pytest.mark.parametrize("how", ["settings", "policy", "rule"])
def test_dry_run_runs_every_check_and_changes_nothing(kube: Kube, responder: Responder,
                                                      how: str) -> None:
    rule = "{name: r, match: {rules: ['*']}, actions: [{action: terminate}]%s}"
    text = f"rules: [{rule % (', dry_run: true' if how == 'rule' else '')}]"
    if how == "policy":
        text = "dry_run: true\n" + text
    engine = responder(text, dry_run=how == "settings")
    kube.create_standalone_pod("alpine")
    ds = kube.create_daemonset_pod("agent")
    would = only_action(post(engine, shell_alert_for(kube.namespace, "alpine")))
    assert (would["status"], would["reason"]) == ("would", "would delete pod")
    skipped = only_action(post(engine, shell_alert_for(kube.namespace, ds.name)))
    assert skipped["status"] == "skipped" and "DaemonSet" in skipped["reason"]
    assert kube.read_pod("alpine") is not None and kube.read_pod(ds.name) is not None
    assert events_for(kube, "alpine") == []


def failed_action(response: Any) -> Any:
    """A permanent failure: 500, the top-level outcome says failed, and which action."""
    assert response.status == 500, response.body
    assert response.body["error"]["type"] == "action_failed"
    decision = response.body["decision"]
    assert decision["outcome"] == "failed"
    assert response.body["error"]["message"] == decision["message"]
    (action,) = decision["actions"]
    return action


def test_missing_rbac_is_a_failed_alert_not_a_crash(kube: Kube, responder: Responder,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    engine = responder()
    kube.create_standalone_pod("alpine")
    # Same account, a role without "delete": what a hand-trimmed ClusterRole would do.
    limited = kube.service_account_with_role("reader", [
        {"resources": ["pods"], "verbs": ["get"]}])
    from function.kube import Kube as Api

    engine.kube = Api(kube.server.new_client(limited), engine.kube.retry)  # type: ignore[union-attr]
    engine.policy = engine.policy.__class__(engine.policy.rules,
                                            engine.policy.guards.__class__(
                                                protected_namespaces=frozenset(),
                                                protect_self=False),
                                            record_events=False)
    action = failed_action(post(engine, shell_alert_for(kube.namespace, "alpine")))
    assert action["status"] == "failed"
    assert action["reason"].startswith("Kubernetes API 403")
    assert kube.read_pod("alpine") is not None
    # A failed action gives its blast-radius slot back: nothing was removed.
    assert engine.rate.take(consume=False) == (None, None)
    assert engine.rate.limit is not None
    for i in range(engine.rate.limit):
        kube.create_standalone_pod(f"other-{i}")
        failed = failed_action(post(engine, shell_alert_for(kube.namespace, f"other-{i}")))
        assert failed["status"] == "failed", failed
