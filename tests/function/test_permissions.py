"""At start the function asks the API server what it may do, and says what is missing."""

from __future__ import annotations

import json
from typing import Any, Iterator

import pytest
import yaml

from function import runtime
from function.cli import cluster_role
from function.permissions import Need, needs
from function.policy import load_default, parse_policy
from tests.testbed.kube import Kube

from .account import grant_guard_state


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    runtime.reset()
    yield
    runtime.reset()


def test_what_the_default_policy_needs_where() -> None:
    found = needs(load_default(), "home", shared_state=True)
    assert Need("delete", "", "pods", "") in found
    assert Need("create", "", "events", "") in found
    assert Need("update", "coordination.k8s.io", "leases", "home") in found
    assert not [n for n in found if n.resource == "leases" and n.namespace != "home"]
    assert not [n for n in needs(load_default(), "home", shared_state=False)
                if n.resource == "leases"]


def test_a_rule_for_exact_namespaces_is_checked_there_only() -> None:
    policy = parse_policy("""
rules:
  - name: prod
    match: {rules: ["*"], namespaces: {include: [prod, shop]}}
    actions: [{action: evict}]
  - name: globbed
    match: {rules: ["*"], namespaces: {include: ["dev-*"]}}
    actions: [{action: label, parameters: {labels: {seen: "yes"}}}]
""")
    found = needs(policy, "home", shared_state=False)
    assert {n.namespace for n in found if n.resource == "pods/eviction"} == {"prod", "shop"}
    assert {n.namespace for n in found if n.verb == "patch"} == {""}
    assert str(Need("create", "", "pods/eviction", "prod")) == \
        "create pods/eviction in namespace prod"


def start_as(kube: Kube, guard_role: bool, monkeypatch: pytest.MonkeyPatch) -> Any:
    role = f"responder-{kube.namespace}"
    kube.create_cluster_role(role, yaml.safe_load(cluster_role(load_default()))["rules"])
    home = kube.create_namespace(prefix="responder")
    kube.create_service_account("falco-responder", home)
    kube.bind_cluster_role(role, "falco-responder", account_namespace=home)
    if guard_role:
        grant_guard_state(kube, home)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    kubeconfig = str(kube.token_kubeconfig("falco-responder", home))
    monkeypatch.setenv("KUBECONFIG", kubeconfig)
    runtime.start({"KUBECONFIG": kubeconfig, "POD_NAMESPACE": home})
    engine = runtime.engine()
    assert engine.permissions.wait(10)
    return engine, home


@pytest.mark.cluster
def test_a_missing_permission_is_named_by_readiness_and_the_log(
        kube: Kube, monkeypatch: pytest.MonkeyPatch, caplog: Any) -> None:
    caplog.set_level("INFO", logger="function")
    engine, home = start_as(kube, guard_role=False, monkeypatch=monkeypatch)
    ok, why = runtime.ready()
    assert not ok
    assert why == (f"not ready: missing permissions: create leases.coordination.k8s.io in "
                   f"namespace {home}; delete leases.coordination.k8s.io in namespace {home}; "
                   f"get leases.coordination.k8s.io in namespace {home}; "
                   f"list leases.coordination.k8s.io in namespace {home}; "
                   f"update leases.coordination.k8s.io in namespace {home}")
    (line,) = [json.loads(r.getMessage()) for r in caplog.records
               if "permissions checked" in r.getMessage()]
    assert line["checked"] == len(engine.permissions.needs) and len(line["missing"]) == 5
    assert line["ms"] > 0


@pytest.mark.cluster
def test_the_generated_rbac_is_all_the_function_needs(
        kube: Kube, monkeypatch: pytest.MonkeyPatch) -> None:
    engine, _ = start_as(kube, guard_role=True, monkeypatch=monkeypatch)
    assert engine.permissions.missing == []
    assert runtime.ready()[0]
