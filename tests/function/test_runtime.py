from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Iterator

import pytest

from function import runtime


@pytest.fixture(autouse=True)
def fresh() -> Iterator[None]:
    runtime.reset()
    yield
    runtime.reset()


def test_started_once_with_the_default_policy(shell_alert: Any) -> None:
    ok, why = runtime.start({"FALCO_RESPONDER_CLUSTER": "off"})
    assert ok and why.startswith("ready: policy <embedded default>")
    response = runtime.handle_http({"Content-Type": "application/json"},
                                   json.dumps(shell_alert).encode())
    assert response.status == 200 and response.body["actions"][0]["status"] == "would"


def test_an_invalid_policy_means_not_ready_and_503_with_the_reason(
        tmp_path: Path, shell_alert: Any, caplog: Any) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text("rules: [{name: r, match: {rules: [x]}, actions: [{action: nuke}]}]")
    caplog.set_level("ERROR", logger="function")
    ok, why = runtime.start({"FALCO_RESPONDER_POLICY": str(bad),
                             "FALCO_RESPONDER_CLUSTER": "off"})
    assert not ok
    assert why == f"not ready: {bad}: rules[0] (r).actions[0].action: unknown action 'nuke'" \
                  " (known: annotate, evict, isolate, label, record, terminate)"
    (line,) = [json.loads(r.getMessage()) for r in caplog.records if r.name == "function"]
    assert line["message"] == "refusing to start"
    for response in (runtime.handle_http({}, json.dumps(shell_alert).encode()),
                     runtime.handle_payload({}, shell_alert),
                     runtime.handle_cloudevent({"type": "falco.rule.output.v1"}, shell_alert)):
        assert response.status == 503
        assert response.body["error"]["message"] == why


def test_unusable_kubernetes_credentials_mean_not_ready(tmp_path: Path, monkeypatch: Any
                                                        ) -> None:
    broken = tmp_path / "kubeconfig"
    broken.write_text("this: is: not a kubeconfig")
    monkeypatch.setenv("KUBECONFIG", str(broken))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    ok, why = runtime.start({"KUBECONFIG": str(broken)})
    assert not ok
    assert why.startswith(f"not ready: cannot use the kubeconfig {broken}")


@pytest.mark.parametrize("named, listed, error", [
    ("missing", "{path}", "{path} (KUBECONFIG): no such file"),
    ("missing", ":{path}", "{path} (KUBECONFIG): no such file"),  # an empty entry first
    ("folder", "{path}", "{path}: Is a directory"),
])
def test_a_kubeconfig_named_but_unreadable_means_not_ready_not_a_dry_run(
        tmp_path: Path, monkeypatch: Any, shell_alert: Any, named: str, listed: str,
        error: str) -> None:
    (tmp_path / "folder").mkdir()
    path = tmp_path / named
    monkeypatch.setenv("KUBECONFIG", listed.format(path=path))
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    ok, why = runtime.start({"KUBECONFIG": str(path)})
    assert not ok
    assert why == "not ready: cannot use the kubeconfig " + error.format(path=path)
    response = runtime.handle_http({}, json.dumps(shell_alert).encode())
    assert response.status == 503 and "actions" not in response.body


def test_no_kubeconfig_named_and_none_at_home_is_a_dry_run(tmp_path: Path,
                                                           monkeypatch: Any) -> None:
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    ok, why = runtime.start({})
    assert ok and why.endswith("; no cluster configured: no in-cluster account, no kubeconfig")


def test_an_unusable_state_file_means_not_ready() -> None:
    ok, why = runtime.start({"FALCO_RESPONDER_CLUSTER": "off",
                             "FALCO_RESPONDER_STATE_FILE": "/proc/no/such/dir/guards.json"})
    assert not ok
    assert "FALCO_RESPONDER_STATE_FILE='/proc/no/such/dir/guards.json': cannot use it" in why


def test_shared_guards_asked_for_without_a_cluster_mean_not_ready(shell_alert: Any) -> None:
    ok, why = runtime.start({"FALCO_RESPONDER_CLUSTER": "off",
                             "FALCO_RESPONDER_GUARD_STATE": "kubernetes"})
    assert not ok
    assert why == ("not ready: FALCO_RESPONDER_GUARD_STATE=kubernetes needs a cluster, and "
                   "none is configured")
    response = runtime.handle_http({}, json.dumps(shell_alert).encode())
    assert response.status == 503 and "actions" not in response.body
