from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import List

import yaml

from .wire import SHARED

REPO = Path(__file__).resolve().parents[2]
SHELL = str(SHARED / "falco" / "terminal_shell_in_container.falco-0.37-ovh-k8s.json")


def cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "function", *args], cwd=REPO,
                          capture_output=True, text=True, timeout=60,
                          env={"PATH": "/usr/bin:/bin", "HOME": "/nonexistent"})


def test_simulate_prints_the_dry_run_decision() -> None:
    done = cli("simulate", SHELL)
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    assert decision["dry_run"] is True
    assert decision["actions"][0]["status"] == "would"


def test_simulate_with_a_policy_file() -> None:
    done = cli("simulate", SHELL, "--policy", "deploy/policies/quarantine.yaml")
    assert done.returncode == 0, done.stderr
    decision = json.loads(done.stdout)
    assert decision["matched_rules"] == ["terminate-other-shells"]


def test_simulate_a_bad_alert_exits_non_zero_with_the_error(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"rule": "x"}')
    done = cli("simulate", str(bad))
    assert done.returncode == 1
    assert json.loads(done.stdout)["error"]["message"] == "priority: required field is missing"


def test_check_policy_accepts_a_valid_policy() -> None:
    done = cli("check-policy", "deploy/policies/audit.yaml")
    assert done.returncode == 0
    assert "valid (2 rules" in done.stdout


def test_check_policy_refuses_an_invalid_one_naming_the_key(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{name: r, match: {rules: [x]}, actions: [{action: nuke}]}]")
    done = cli("check-policy", str(bad))
    assert done.returncode == 2
    assert f"{bad}: rules[0] (r).actions[0].action: unknown action 'nuke'" in done.stderr


def rbac_rules(text: str) -> List[dict]:  # type: ignore[type-arg]
    document = next(yaml.safe_load_all(text))
    assert document["kind"] == "ClusterRole"
    return list(document["rules"])


def test_rbac_for_the_default_policy_is_least_privilege() -> None:
    done = cli("check-policy", "--rbac")
    assert done.returncode == 0
    verbs = {(r["apiGroups"][0], r["resources"][0]): r["verbs"] for r in rbac_rules(done.stdout)}
    assert verbs[("", "pods")] == ["delete", "get"]
    assert verbs[("", "events")] == ["create"]
    assert ("", "secrets") not in verbs
    assert all("*" not in v for v in verbs.values())


def test_the_shared_guard_state_gets_leases_in_the_own_namespace_only() -> None:
    done = cli("check-policy", "--rbac", "--namespace", "responders")
    _, role, binding = list(yaml.safe_load_all(done.stdout))
    assert role["kind"] == "Role" and role["metadata"]["namespace"] == "responders"
    assert role["rules"] == [{"apiGroups": ["coordination.k8s.io"], "resources": ["leases"],
                              "verbs": ["create", "delete", "get", "list", "update"]}]
    assert binding["roleRef"]["name"] == role["metadata"]["name"]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "falco-responder",
                                    "namespace": "responders"}]
    cluster_rules = rbac_rules(done.stdout)
    assert not any("leases" in r["resources"] for r in cluster_rules)


def test_the_committed_rbac_is_the_generated_one() -> None:
    """clusterrole.yaml is the first document; the guards' Role and its binding sit in
    serviceaccount.yaml, after the namespace they live in."""
    done = cli("check-policy", "--rbac")
    first, _ = done.stdout.split("---\n", 1)
    rbac = REPO / "deploy" / "rbac"
    assert (rbac / "clusterrole.yaml").read_text() == first
    generated = list(yaml.safe_load_all(done.stdout))[1:]
    committed = [d for d in yaml.safe_load_all((rbac / "serviceaccount.yaml").read_text())
                 if d["kind"] in ("Role", "RoleBinding")]
    assert committed == generated


def test_the_actions_reference_is_generated_from_the_registry() -> None:
    done = cli("actions")
    assert done.returncode == 0
    assert (REPO / "docs" / "actions.md").read_text() == done.stdout
    for name in ("terminate", "evict", "label", "annotate", "isolate", "record"):
        assert f"## `{name}`" in done.stdout
