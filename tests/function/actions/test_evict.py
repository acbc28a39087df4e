from __future__ import annotations

import pytest

from tests.testbed.kube import Kube

from .conftest import Responder, post, shell_alert_for

pytestmark = pytest.mark.cluster

EVICT = """
rules: [{name: evict-shells, match: {rules: ["Terminal shell in container"]},
         actions: [{action: evict}]}]
"""


def test_evict_removes_the_pod_through_the_eviction_api(kube: Kube,
                                                        responder: Responder) -> None:
    kube.create_standalone_pod("alpine")
    response = post(responder(EVICT), shell_alert_for(kube.namespace, "alpine"))
    (action,) = response.body["actions"]
    assert (action["status"], action["reason"]) == ("done", "pod evicted")
    assert kube.read_pod("alpine") is None


def test_a_pdb_refusal_is_reported_as_blocked_not_as_an_error(kube: Kube,
                                                              responder: Responder) -> None:
    kube.create_standalone_pod("alpine", labels={"app": "guarded"}, node_name="testbed-node")
    # Pending pods are always evictable: make it Running, as a kubelet would report it.
    kube.core.patch_namespaced_pod_status("alpine", kube.namespace, {"status": {
        "phase": "Running",
        "conditions": [{"type": "Ready", "status": "True"}]}})
    _create_pdb(kube)
    response = post(responder(EVICT), shell_alert_for(kube.namespace, "alpine"))
    assert response.status == 200
    (action,) = response.body["actions"]
    assert action["status"] == "skipped"
    assert action["reason"].startswith("blocked by PDB")
    assert kube.read_pod("alpine") is not None


def _create_pdb(kube: Kube) -> None:
    """A PDB allowing no disruption, with the status its controller would compute."""
    from kubernetes import client

    api = client.PolicyV1Api(kube.api_client)
    pdb = api.create_namespaced_pod_disruption_budget(
        kube.namespace, {"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
                         "metadata": {"name": "guarded"},
                         "spec": {"minAvailable": 1,
                                  "selector": {"matchLabels": {"app": "guarded"}}}})
    api.patch_namespaced_pod_disruption_budget_status("guarded", kube.namespace, {"status": {
        "observedGeneration": pdb.metadata.generation, "disruptionsAllowed": 0,
        "currentHealthy": 1, "desiredHealthy": 1, "expectedPods": 1}})


def test_evict_leaves_daemonset_pods_alone(kube: Kube, responder: Responder) -> None:
    family = kube.create_daemonset_pod("agent")
    (action,) = post(responder(EVICT), shell_alert_for(kube.namespace, family.name)
                     ).body["actions"]
    assert action["status"] == "skipped" and "DaemonSet" in action["reason"]
    assert kube.read_pod(family.name) is not None
