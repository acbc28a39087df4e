"""What deploy/ and func.yaml ship is well-formed and agrees with the code."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from function.policy import parse_policy

REPO = Path(__file__).resolve().parents[2]
MANIFESTS = sorted(p for p in (REPO / "deploy").rglob("*.yaml")
                   if "policies" not in p.parts)


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: str(p.relative_to(REPO)))
def test_every_manifest_parses(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text()) if d is not None]
    assert documents


def test_the_policy_configmap_holds_a_valid_policy() -> None:
    configmap = yaml.safe_load((REPO / "deploy" / "policy-configmap.yaml").read_text())
    assert parse_policy(configmap["data"]["policy.yaml"]).rules


def test_func_yaml_is_a_cloudevent_python_function_subscribed_to_falco_alerts() -> None:
    func = yaml.safe_load((REPO / "func.yaml").read_text())
    assert (func["specVersion"], func["runtime"], func["invoke"]) == (
        "0.36.0", "python", "cloudevent")
    assert func["deploy"]["serviceAccountName"] == "falco-responder"
    (subscription,) = func["deploy"]["subscriptions"]
    assert subscription["filters"] == {"type": "falco.rule.output.v1"}
    envs = {e["name"]: e["value"] for e in func["run"]["envs"]}
    assert envs["FALCO_RESPONDER_POLICY"].startswith(func["run"]["volumes"][0]["path"])


def test_the_trigger_delivers_only_falco_alerts_to_the_function() -> None:
    trigger = next(yaml.safe_load_all((REPO / "deploy" / "knative" / "trigger.yaml")
                                      .read_text()))
    assert trigger["spec"]["filter"]["attributes"] == {"type": "falco.rule.output.v1"}
    assert trigger["spec"]["subscriber"]["ref"]["name"] == "falco-responder"


def test_the_rbac_subject_is_the_account_func_yaml_deploys_with() -> None:
    binding = next(d for d in yaml.safe_load_all(
        (REPO / "deploy" / "rbac" / "serviceaccount.yaml").read_text())
        if d["kind"] == "ClusterRoleBinding")
    (subject,) = binding["subjects"]
    func = yaml.safe_load((REPO / "func.yaml").read_text())
    assert (subject["name"], subject["namespace"]) == (
        func["deploy"]["serviceAccountName"], func["deploy"]["namespace"])
