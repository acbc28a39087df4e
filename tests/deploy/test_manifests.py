"""What deploy/ and func.yaml ship is well-formed and agrees with the code."""

from __future__ import annotations

import json
import subprocess
from datetime import datetime
from pathlib import Path
from typing import Any, Dict

import pytest
import yaml

from function.policy import parse_policy
from tests.testbed import peers

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


# -- func.yaml as func itself reads it (../shared/peers/knative-func-*.tar.gz) -------------

class _TextTimes(yaml.SafeLoader):
    """YAML as func's Go loader sees it: a timestamp stays the string it is written as."""


_TextTimes.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()}


def func_load(folder: Path) -> subprocess.CompletedProcess[str]:
    """func's own loader (pkg/functions: NewFunction, Initialized, Validate) on ``folder``:
    the checks ``func build`` and ``func deploy`` make before anything else."""
    return subprocess.run([str(peers.binary("func-loader")), str(folder)],
                          capture_output=True, text=True, timeout=60)


def func_yaml_with(tmp_path: Path, change: Any) -> Path:
    """A folder holding this repository's func.yaml after ``change(document)``."""
    document = yaml.load((REPO / "func.yaml").read_text(), Loader=_TextTimes)
    change(document)
    (tmp_path / "func.yaml").write_text(yaml.safe_dump(document, sort_keys=False))
    return tmp_path


def test_func_loads_the_repository_as_an_initialized_valid_function() -> None:
    ignored = (REPO / ".gitignore").read_text()
    loaded = func_load(REPO)
    assert loaded.returncode == 0, loaded.stderr
    assert loaded.stdout.split() == ["name=falco-responder", "runtime=python",
                                     "invoke=cloudevent", "initialized=true"]
    # func adds /.func to .gitignore when it is missing: the committed one has it.
    assert (REPO / ".gitignore").read_text() == ignored


def test_func_refuses_a_func_yaml_without_created(tmp_path: Path) -> None:
    loaded = func_load(func_yaml_with(tmp_path, lambda doc: doc.pop("created")))
    assert loaded.returncode == 1
    assert "initialized=false" in loaded.stdout
    assert "does not contain an initialized function" in loaded.stderr


def test_func_refuses_an_invalid_environment_variable(tmp_path: Path) -> None:
    def bad_env(doc: Dict[str, Any]) -> None:
        doc["run"]["envs"].append({"name": "1-not-a-name", "value": "x"})

    loaded = func_load(func_yaml_with(tmp_path, bad_env))
    assert loaded.returncode == 1
    assert "validate:" in loaded.stderr and "1-not-a-name" in loaded.stderr


def func_schema() -> Dict[str, Any]:
    path = peers.source_dir("knative-func") / "schema" / "func_yaml-schema.json"
    schema: Dict[str, Any] = json.loads(path.read_text())
    return schema


def test_func_yaml_matches_funcs_schema() -> None:
    import jsonschema

    document = yaml.load((REPO / "func.yaml").read_text(), Loader=_TextTimes)
    jsonschema.validate(document, func_schema())
    # The schema says date-time; jsonschema checks formats only with extra packages.
    assert datetime.strptime(document["created"], "%Y-%m-%dT%H:%M:%SZ")


def test_funcs_schema_rejects_a_func_yaml_without_created() -> None:
    import jsonschema

    document = yaml.load((REPO / "func.yaml").read_text(), Loader=_TextTimes)
    del document["created"]
    with pytest.raises(jsonschema.ValidationError, match="'created' is a required property"):
        jsonschema.validate(document, func_schema())
