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
    document = yaml.safe_load(text)
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


def test_the_committed_cluster_role_is_the_generated_one() -> None:
    done = cli("check-policy", "--rbac")
    assert (REPO / "deploy" / "rbac" / "clusterrole.yaml").read_text() == done.stdout


def test_the_actions_reference_is_generated_from_the_registry() -> None:
    done = cli("actions")
    assert done.returncode == 0
    assert (REPO / "docs" / "actions.md").read_text() == done.stdout
    for name in ("terminate", "evict", "label", "annotate", "isolate", "record"):
        assert f"## `{name}`" in done.stdout
