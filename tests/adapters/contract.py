"""One contract, run against every adapter in its real runtime over real HTTP.

A runtime test module starts its server (see ``tests/adapters/runtimes.py``) and calls
:func:`check_contract` with the transports that runtime accepts. The cases are the shared
wire fixtures replayed byte for byte, CloudEvents built with the cloudevents SDK in binary
and structured mode, and the core's bad inputs; every adapter must give the same statuses.
Where a runtime cannot (functions-framework's cloud_event target ignores return values),
the runtime says so through ``overrides`` and the reason is kept next to it.
"""

from __future__ import annotations

import http.client
import json
import urllib.parse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, FrozenSet, List, Mapping, Optional, Tuple

from tests.function.wire import SHARED, fixture_paths, load_json, parse_wire

TOKEN = "s3cr3t-token"
SHELL = "terminal_shell_in_container.falco-0.37-ovh-k8s.forwarded.json"
# What a runtime can receive: CloudEvents (binary/structured) and/or plain JSON.
CLOUDEVENT, JSON = "cloudevent", "json"


@dataclass(frozen=True)
class Case:
    name: str
    kind: str  # CLOUDEVENT or JSON
    headers: Tuple[Tuple[str, str], ...]
    body: bytes
    status: int
    # Checks the decision when the runtime returns one.
    check: Optional[Callable[[Dict[str, Any]], None]] = None
    token: bool = False  # the server must run with FALCO_RESPONDER_TOKEN=TOKEN


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


def post(url: str, headers: Any, body: bytes, timeout: float = 30) -> Reply:
    """POST exactly these headers and bytes (no client-added Content-Type)."""
    parts = urllib.parse.urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=timeout)
    try:
        headers = list(headers)
        has_host = any(name.lower() == "host" for name, _ in headers)
        conn.putrequest("POST", parts.path or "/", skip_host=has_host,
                        skip_accept_encoding=True)
        for name, value in headers:
            if name.lower() != "content-length":
                conn.putheader(name, value)
        conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        response = conn.getresponse()
        return Reply(response.status, {k.lower(): v for k, v in response.getheaders()},
                     response.read())
    finally:
        conn.close()


def would_terminate(target: str) -> Callable[[Dict[str, Any]], None]:
    def check(decision: Dict[str, Any]) -> None:
        assert decision["alert"]["target"] == target, decision
        assert [(a["action"], a["status"]) for a in decision["actions"]] == [
            ("terminate", "would")], decision
    return check


def ignored(decision: Dict[str, Any]) -> None:
    assert decision["message"].startswith("ignored: not a Falco alert"), decision


def shell_alert(namespace: str = "default", pod: str = "alpine") -> Dict[str, Any]:
    alert = load_json("forwarded", SHELL)
    alert["output_fields"].update({"k8s.ns.name": namespace, "k8s.pod.name": pod})
    return alert


def binary_event(alert: Any, **extensions: str) -> Tuple[List[Tuple[str, str]], bytes]:
    from cloudevents.conversion import to_binary
    from cloudevents.http import CloudEvent

    event = CloudEvent({"type": "falco.rule.output.v1", "source": "https://falco.org",
                        "datacontenttype": "application/json", **extensions}, alert)
    headers, body = to_binary(event)
    return list(headers.items()), body


def structured_event(alert: Any, **extensions: str) -> Tuple[List[Tuple[str, str]], bytes]:
    from cloudevents.conversion import to_structured
    from cloudevents.http import CloudEvent

    event = CloudEvent({"type": "falco.rule.output.v1", "source": "https://falco.org",
                        "datacontenttype": "application/json", **extensions}, alert)
    headers, body = to_structured(event)
    return list(headers.items()), body


def cases() -> List[Case]:
    out: List[Case] = []
    for path in fixture_paths("wire", "*.http"):
        request = parse_wire(path)
        kind = CLOUDEVENT if "cloudevents" in path.name else JSON
        out.append(Case(f"wire/{path.name}", kind, tuple(request.headers), request.body, 200,
                        would_terminate("default/alpine")))
    alert = shell_alert()
    for name, build in (("sdk-binary", binary_event), ("sdk-structured", structured_event)):
        headers, body = build(alert)
        out.append(Case(name, CLOUDEVENT, tuple(headers), body, 200,
                        would_terminate("default/alpine")))
    headers, body = binary_event(alert)
    other = [(k, "dev.knative.sources.ping" if k.lower() == "ce-type" else v)
             for k, v in headers]
    out.append(Case("cloudevent-other-type", CLOUDEVENT, tuple(other), body, 200, ignored))
    # Bad input: same statuses through every adapter, nothing acted on.
    out.append(Case("cloudevent-invalid-json", CLOUDEVENT, tuple(headers), b"{oops", 400))
    broken = dict(alert, output_fields="k8s.ns.name=default")
    b_headers, b_body = binary_event(broken)
    out.append(Case("cloudevent-bad-output-fields", CLOUDEVENT, tuple(b_headers), b_body, 400))
    json_headers = (("Content-Type", "application/json"),)
    out.append(Case("json-invalid", JSON, json_headers, b"{oops", 400))
    out.append(Case("json-missing-rule", JSON, json_headers,
                    json.dumps({k: v for k, v in alert.items() if k != "rule"}).encode(), 400))
    out.append(Case("json-unknown-priority", JSON, json_headers,
                    json.dumps(dict(alert, priority="Severe")).encode(), 400))
    out.append(Case("json-too-large", JSON, json_headers, b" " * (1024 * 1024 + 1), 413))
    t_headers, t_body = binary_event(alert)
    out.append(Case("cloudevent-no-token", CLOUDEVENT, tuple(t_headers), t_body, 401,
                    token=True))
    tok_headers, tok_body = binary_event(alert, falcotoken=TOKEN)
    out.append(Case("cloudevent-token-extension", CLOUDEVENT, tuple(tok_headers), tok_body,
                    200, would_terminate("default/alpine"), token=True))
    out.append(Case("json-no-token", JSON, json_headers, json.dumps(alert).encode(), 401,
                    token=True))
    out.append(Case("json-wrong-token", JSON, (*json_headers, ("X-Falco-Token", "nope")),
                    json.dumps(alert).encode(), 401, token=True))
    out.append(Case("json-token-header", JSON, (*json_headers, ("X-Falco-Token", TOKEN)),
                    json.dumps(alert).encode(), 200, would_terminate("default/alpine"),
                    token=True))
    return out


@dataclass
class Expectations:
    """What one runtime accepts, and where it must differ from the core (with why)."""

    kinds: FrozenSet[str]
    returns_decision: bool = True
    overrides: Dict[str, Tuple[int, str]] = field(default_factory=dict)

    def status(self, case: Case) -> int:
        return self.overrides.get(case.name, (case.status, ""))[0]


def check_contract(url: str, expect: Expectations, *, token: bool) -> List[str]:
    """Send every case of the accepted kinds whose token setting matches; return names."""
    ran = []
    for case in cases():
        if case.kind not in expect.kinds or case.token is not token:
            continue
        reply = post(url, case.headers, case.body)
        wanted = expect.status(case)
        assert reply.status == wanted, (case.name, reply.status, reply.body[:300])
        if case.check is not None and expect.returns_decision and wanted == 200:
            case.check(decision_of(reply))
        ran.append(case.name)
    assert ran, "no contract case ran"
    return ran


def decision_of(reply: Reply) -> Dict[str, Any]:
    """The decision from a reply: a JSON body, or the data of a structured CloudEvent reply,
    or a binary CloudEvent reply's body."""
    document = reply.json()
    if isinstance(document, dict) and "specversion" in document and "data" in document:
        data: Dict[str, Any] = document["data"]
        return data
    assert isinstance(document, dict)
    return document


def wire_body_for(namespace: str, pod: str, time: str) -> bytes:
    """The webhook fixture's alert, re-targeted, as compact JSON + newline (the wire form)."""
    alert = shell_alert(namespace, pod)
    alert["time"] = time
    return json.dumps(alert, separators=(",", ":")).encode() + b"\n"




# -- end to end: the deployed ServiceAccount against the real kube-apiserver --------------

def wire_headers(name: str) -> List[Tuple[str, str]]:
    """A Falcosidekick request's exact headers (less Host and Content-Length)."""
    request = parse_wire(SHARED / "wire" / name)
    return [(k, v) for k, v in request.headers if k.lower() not in ("host", "content-length")]


#: Kubernetes calls that give up within about a second: two attempts, 0.5 s each.
GIVE_UP_FAST = {"FALCO_RESPONDER_KUBE_ATTEMPTS": "2", "FALCO_RESPONDER_KUBE_RETRY_BUDGET": "1",
                "FALCO_RESPONDER_KUBE_TIMEOUT": "0.5"}


def unreachable_cluster(tmp_path: Path, port: int) -> Dict[str, str]:
    """Nothing listens on ``port``: every Kubernetes call fails in a way a retry could fix."""
    config = {"apiVersion": "v1", "kind": "Config", "current-context": "c",
              "clusters": [{"name": "c", "cluster": {
                  "server": f"https://127.0.0.1:{port}", "insecure-skip-tls-verify": True}}],
              "users": [{"name": "u", "user": {"token": "t"}}],
              "contexts": [{"name": "c", "context": {"cluster": "c", "user": "u"}}]}
    path = tmp_path / "unreachable.kubeconfig"
    path.write_text(json.dumps(config))
    return {"KUBECONFIG": str(path), "FALCO_RESPONDER_CLUSTER": "auto", **GIVE_UP_FAST}


def apiserver_port(kube: Any) -> int:
    """The loopback port of the test's kube-apiserver (for a network host to reach it)."""
    return int(urllib.parse.urlsplit(kube.server.host).port or 443)


def events_for(kube: Any, name: str) -> List[Any]:
    found = kube.core.list_namespaced_event(kube.namespace,
                                            field_selector=f"involvedObject.name={name}")
    return [e for e in found.items if e.reason == "FalcoResponse"]


def check_end_to_end(url: str, headers: Any, kube: Any, alert_time: Callable[[], str], *,
                     cloudevent: bool = False, returns_decision: bool = True) -> Reply:
    """A shell alert for the test's pod kills it and leaves an Event; the same alert for a
    pod in kube-system leaves that pod alone. Returns the first reply."""
    def body(namespace: str) -> bytes:
        raw = wire_body_for(namespace, "alpine", alert_time())
        return raw.rstrip(b"\n") if cloudevent else raw  # the CloudEvents output sends none

    kube.create_standalone_pod("alpine")
    first = post(url, headers, body(kube.namespace))
    assert first.status == 200, first.body
    if returns_decision:
        actions = decision_of(first)["actions"]
        assert [(a["action"], a["status"]) for a in actions] == [("terminate", "done")]
    assert kube.read_pod("alpine") is None
    assert events_for(kube, "alpine")

    kube.ensure_service_account("default", "kube-system")
    kube.create_standalone_pod("alpine", "kube-system")
    try:
        reply = post(url, headers, body("kube-system"))
        assert reply.status == 200, reply.body
        if returns_decision:
            (action,) = decision_of(reply)["actions"]
            assert (action["status"], action["reason"]) == (
                "skipped", "namespace kube-system is protected")
        assert kube.read_pod("alpine", "kube-system") is not None
    finally:
        kube.core.delete_namespaced_pod("alpine", "kube-system")
    return first


# -- the chain: the real Falcosidekick posting to the function in its real runtime --------

def check_falcosidekick_chain(sidekick: Any, kube: Any, alert_time: Callable[[], str],
                              timeout: float = 30.0) -> None:
    """A shell alert given to Falcosidekick reaches the function through the output under
    test: the pod is deleted and the FalcoResponse Event recorded."""
    import time as clock

    kube.create_standalone_pod("alpine")
    alert = shell_alert(kube.namespace, "alpine")
    alert["time"] = alert_time()
    assert sidekick.post_alert(alert) == 200
    deadline = clock.monotonic() + timeout
    while kube.read_pod("alpine") is not None or not events_for(kube, "alpine"):
        assert clock.monotonic() < deadline, (
            f"pod still there or no Event after {timeout:.0f}s; Falcosidekick's log:\n"
            f"{sidekick.log_tail()}")
        clock.sleep(0.1)


def check_falcosidekick_refused(sidekick: Any, kube: Any, alert_time: Callable[[], str],
                                status: int, wait: float = 3.0) -> None:
    """Falcosidekick's request is answered ``status`` (its log says so) and the pod stays."""
    import time as clock

    kube.create_standalone_pod("alpine")
    alert = shell_alert(kube.namespace, "alpine")
    alert["time"] = alert_time()
    assert sidekick.post_alert(alert) == 200
    deadline = clock.monotonic() + wait * 10
    while f"({status})" not in sidekick.log_tail(200):
        assert clock.monotonic() < deadline, sidekick.log_tail()
        clock.sleep(0.1)
    clock.sleep(wait)  # time to act, had it been accepted
    assert kube.read_pod("alpine") is not None
    assert not events_for(kube, "alpine")
