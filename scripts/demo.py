"""`make demo`: the blog demo, locally, with real components.

Starts etcd + kube-apiserver, applies deploy/rbac, creates pod default/alpine, serves the
function (as deploy/rbac's ServiceAccount), then sends a "Terminal shell in container"
alert for that pod through Falcosidekick's webhook output, and shows the pod gone, the
decision and the Event. Where Falcosidekick could not be built (the Go module proxy refuses
it on some machines), the demo says so and sends the exact request Falcosidekick's webhook
output sends (../shared/fixtures/wire/webhook_post.http) instead.
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

from tests.adapters.contract import post
from tests.function.wire import SHARED, parse_wire
from tests.testbed import peers, procs
from tests.testbed.apiserver import start_apiserver
from tests.testbed.kube import Kube

REPO = Path(__file__).resolve().parents[1]


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
        work = Path(tmp)
        say("starting etcd + kube-apiserver (the test bed)")
        server = start_apiserver(work / "apiserver")
        try:
            return demo(server, work)
        finally:
            procs.stop_all()
            server.stop()


def demo(server: object, work: Path) -> int:
    kube = Kube(server, work)  # type: ignore[arg-type]
    kube.ensure_service_account("default", "default")
    for manifest in sorted((REPO / "deploy" / "rbac").glob("*.yaml")):
        kube.apply_manifest(manifest)
    kubeconfig = kube.token_kubeconfig("falco-responder", "falco-responder")
    say("kubectl run alpine --image=alpine -- sleep infinity")
    kube.create_standalone_pod("alpine", "default")
    print("pod/alpine created:", kube.read_pod("alpine", "default") is not None)

    port = procs.free_port()
    say(f"serving the function on 127.0.0.1:{port} as ServiceAccount "
        "falco-responder/falco-responder (deploy/rbac)")
    function = procs.start(
        "function", [sys.executable, "-m", "function", "serve", "--port", str(port)],
        work / "function.log",
        procs.env_with({"KUBECONFIG": str(kubeconfig), "POD_NAMESPACE": "falco-responder"}),
        cwd=REPO)
    url = f"http://127.0.0.1:{port}/"
    procs.wait_until(lambda: _answers(url + "health"), 30, "the function answering", function)

    alert = json.loads((SHARED / "falco" / "terminal_shell_in_container.falco-0.37-ovh-k8s"
                        ".json").read_text())
    alert["time"] = time.strftime("%Y-%m-%dT%H:%M:%S.000000000Z", time.gmtime(time.time() + 1))
    try:
        peers.binary("falcosidekick")
        decision = via_falcosidekick(work, url, alert)
    except peers.PeerNotBuilt as missing:
        say("Falcosidekick is not available here, so its exact webhook request is replayed")
        print("\n".join(str(missing).splitlines()[-2:]))
        request = parse_wire(SHARED / "wire" / "webhook_post.http")
        body = json.dumps(_as_forwarded(alert), separators=(",", ":")).encode() + b"\n"
        reply = post(url, request.headers, body)
        print(f"function answered HTTP {reply.status}")
        decision = reply.json()
    say("the decision")
    print(json.dumps(decision, indent=2))
    say("kubectl get pod alpine")
    gone = kube.read_pod("alpine", "default") is None
    print('Error from server (NotFound): pods "alpine" not found' if gone else "still there!")
    say("kubectl get events --field-selector involvedObject.name=alpine")
    for event in kube.core.list_namespaced_event(
            "default", field_selector="involvedObject.name=alpine").items:
        print(f"{event.type}  {event.reason}  pod/alpine  {event.message}")
    function.stop()
    return 0 if gone else 1


def via_falcosidekick(work: Path, url: str, alert: dict) -> dict:  # type: ignore[type-arg]
    from tests.testbed.sidekick import start_falcosidekick

    say("starting Falcosidekick with its webhook output pointed at the function")
    sidekick = start_falcosidekick(work / "falcosidekick", {"webhook": {"address": url}})
    try:
        say("Falco -> Falcosidekick: POST / (a shell was spawned in default/alpine)")
        sidekick.post_alert(alert)
        time.sleep(1.0)
        log = (work / "function.log").read_text()
        lines = [json.loads(x) for x in log.splitlines() if x.startswith('{"status"')]
        return lines[-1] if lines else {"note": "no decision logged yet"}
    finally:
        sidekick.stop()


def _as_forwarded(alert: dict) -> dict:  # type: ignore[type-arg]
    keys = ("output", "priority", "rule", "time", "output_fields", "source", "tags",
            "hostname")
    return {"uuid": "demo", **{k: alert[k] for k in keys if k in alert}}


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1):
            return True
    except OSError:
        return False


if __name__ == "__main__":
    sys.exit(main())
