"""The function under test, logged in to the real API server with only the RBAC that
``check-policy --rbac`` generates for its policy."""

from __future__ import annotations

import json
import secrets
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any, Callable, Dict, Optional

import pytest

from function import Engine, Settings
from tests.function.account import generated_account
from tests.testbed.kube import Kube

Responder = Callable[..., Engine]


def now_rfc3339() -> str:
    """A second from now, with nanoseconds as Falco writes them: the pods a test creates
    are then older than the alert, at the API's one-second precision."""
    now = datetime.now(timezone.utc) + timedelta(seconds=1)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f") + "123Z"


def shell_alert_for(namespace: str, pod: str, *, rule: str = "Terminal shell in container",
                    uid: Optional[str] = None, time: Optional[str] = None,
                    **fields: Any) -> Dict[str, Any]:
    """A "Terminal shell in container" alert (the forwarded fixture's shape) for a pod."""
    from tests.function.wire import load_json

    alert = load_json("forwarded", "terminal_shell_in_container.falco-0.37-ovh-k8s"
                                   ".forwarded.json")
    alert["rule"] = rule
    alert["time"] = time or now_rfc3339()
    alert["output_fields"].update({"k8s.ns.name": namespace, "k8s.pod.name": pod, **fields})
    if uid:
        alert["output_fields"]["k8s.pod.uid"] = uid
    return alert


def post(engine: Engine, alert: Dict[str, Any]) -> Any:
    return engine.handle_http({"Content-Type": "application/json"}, json.dumps(alert).encode())


def make_responder(kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Responder:
    """``responder(policy_yaml="", **settings)``: an Engine started the way production starts
    it (policy file, kubeconfig), as a ServiceAccount bound to the generated ClusterRole."""

    def make(policy_text: str = "", **settings: Any) -> Engine:
        role = f"responder-{secrets.token_hex(4)}"
        home, kubeconfig = generated_account(kube, policy_text, role)
        policy_file = tmp_path / f"{role}.yaml"
        policy_file.write_text(policy_text or "", encoding="utf-8")
        monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
        monkeypatch.delenv("KUBERNETES_SERVICE_HOST", raising=False)
        options: Dict[str, Any] = {"pod_namespace": home, **settings}
        if policy_text:
            options["policy_file"] = str(policy_file)
        engine = Engine.from_settings(Settings(**options))
        assert engine.kube is not None, engine.cluster
        return engine

    return make


@pytest.fixture
def responder(kube: Kube, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Responder:
    """The function on the bare API server (``make_responder``)."""
    return make_responder(kube, tmp_path, monkeypatch)


@pytest.fixture
def cluster_responder(cluster_kube: Kube, tmp_path: Path,
                      monkeypatch: pytest.MonkeyPatch) -> Responder:
    """The function on the cluster whose controllers act (``make_responder``)."""
    return make_responder(cluster_kube, tmp_path, monkeypatch)


def events_for(kube: Kube, pod: str) -> list:  # type: ignore[type-arg]
    found = kube.core.list_namespaced_event(
        kube.namespace, field_selector=f"involvedObject.name={pod}")
    return list(found.items)
