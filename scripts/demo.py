"""`make demo`: the blog, for real, on this machine.

A Falco "Terminal shell in container" alert for the pod of Deployment ``alpine`` goes to
the real Falcosidekick, whose cloudevents output posts it to a real Knative Broker (as
deploy/falcosidekick/values-knative.yaml says); deploy/'s Trigger delivers it to the
function, built and served as Knative func does, which deletes the pod; the Deployment's
controllers bring a new pod up. Each hop is printed as it is seen, then the Event. Nothing
is replayed: if a component cannot start, the demo stops, saying which and why.
"""

from __future__ import annotations

import json
import queue
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable, Iterator, Optional, Tuple

from kubernetes import watch

from tests.e2e import system
from tests.testbed import procs
from tests.testbed.cluster import Cluster, start_cluster
from tests.testbed.knative_eventing import Eventing, start_eventing
from tests.testbed.kube import Kube
from tests.testbed.netns import Network, create_network
from tests.testbed.pods import wait_running
from tests.testbed.sidekick import Sidekick, start_falcosidekick

Hop = Tuple[float, str]
#: Falcosidekick accepted, Trigger delivered, decision, pod deleted, Broker answered,
#: replacement pod Running.
HOPS = 6


class CannotRun(RuntimeError):
    """A component of the demo did not start; the message says which and why."""


def say(text: str) -> None:
    print(f"\n== {text}", flush=True)


def starting(component: str, start: Callable[[], Any]) -> Any:
    try:
        return start()
    except Exception as error:  # any failure to start is the demo's answer: say it
        raise CannotRun(f"{component} did not start: {error}") from error


def follow(path: Path, stop: threading.Event) -> Iterator[str]:
    """Lines appended to ``path`` from now on, until ``stop`` is set."""
    with open(path, encoding="utf-8", errors="replace") as stream:
        stream.seek(0, 2)
        while not stop.is_set():
            line = stream.readline()
            if line:
                yield line.rstrip("\n")
            else:
                time.sleep(0.01)


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="demo-") as tmp:
        work = Path(tmp)
        network: Optional[Network] = None
        cluster: Optional[Cluster] = None
        eventing: Optional[Eventing] = None
        try:
            say("starting the cluster: etcd, kube-apiserver, kube-controller-manager, "
                "kube-scheduler, kwok (one simulated node)")
            cluster = starting("the cluster", lambda: start_cluster(work / "cluster"))
            print(f"ready in {cluster.ready_seconds:.1f} s")
            network = create_network(work / "network")
            say("starting Knative Eventing 1.22 (channel-based Broker, InMemoryChannel) from "
                "its release config")
            eventing = starting("Knative Eventing", lambda: start_eventing(
                work / "eventing", cluster, network))  # type: ignore[arg-type]
            return demo(cluster, eventing, network, work)
        except CannotRun as error:
            print(f"\nthe demo cannot run: {error}", file=sys.stderr)
            return 1
        finally:
            if eventing is not None:
                eventing.stop()
            procs.stop_all()
            if network is not None:
                network.delete()
            if cluster is not None:
                cluster.stop()


def demo(cluster: Cluster, eventing: Eventing, network: Network, work: Path) -> int:
    say("deploying falco-responder as the README says: deploy/rbac, the policy, the token "
        "Secret, Broker 'default', the function built and served as `func deploy` does")
    responder = starting("the function", lambda: system.deploy_responder(
        cluster, eventing, network, work / "responder"))
    say("kubectl apply -f deploy/knative/trigger.yaml")
    trigger = starting("the Trigger", lambda: eventing.wait_ready(
        "triggers", system.NAMESPACE,
        responder.kube.apply_objects([system.shipped_trigger_manifest()])[0]["metadata"]["name"]))
    print(f"trigger/{trigger['metadata']['name']} Ready, subscriber "
          f"{trigger['status']['subscriberUri']}")
    # The filter logs each delivery at debug level: how the demo sees the Trigger's hop.
    eventing.set_log_level("mt_broker_filter", "debug")

    kube = Kube(cluster.apiserver, work, namespace="default")
    say("kubectl create deployment alpine --image=alpine -- sleep infinity")
    kube.create_deployment("alpine")
    (pod,) = wait_running(kube.api_client, "default", "app=alpine")
    name, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    print(f"pod/{name} Running on {pod['spec']['nodeName']}, IP {pod['status']['podIP']}")

    say("starting Falcosidekick 2.34.1 with deploy/falcosidekick/values-knative.yaml")
    sidekick = starting("Falcosidekick", lambda: start_falcosidekick(
        work / "falcosidekick", system.sidekick_config(responder.token),
        network.host("falcosidekick")))
    print(f"cloudevents.address: {system.sidekick_config('')['cloudevents']['address']}")

    say(f"Falco -> Falcosidekick: POST / \"Terminal shell in container\" in default/{name}")
    hops: queue.Queue[Hop] = queue.Queue()
    stop = threading.Event()
    start_watchers(hops, stop, kube, responder, eventing, sidekick, name, uid)
    started = time.monotonic()
    status = sidekick.post_alert(system.shell_alert("default", name))
    hops.put((time.monotonic(), f"Falcosidekick accepted the alert (HTTP {status})"))
    seen = print_hops(hops, started, expected=HOPS, timeout=30.0)
    stop.set()

    say(f"kubectl get events --field-selector involvedObject.name={name}")
    events = [e for e in kube.core.list_namespaced_event(
        "default", field_selector=f"involvedObject.name={name}").items
        if e.reason == "FalcoResponse"]
    for event in events:
        print(f"{event.type}  {event.reason}  pod/{name}  {event.message}")
    sidekick.stop()
    return 0 if seen == HOPS and events else 1


def start_watchers(hops: queue.Queue[Hop], stop: threading.Event, kube: Kube,
                   responder: system.Responder, eventing: Eventing, sidekick: Sidekick,
                   name: str, uid: str) -> None:
    """Threads that put (when, what) on ``hops`` as each hop after the first is seen."""
    def on_line(path: Path, match: Callable[[str], Optional[str]]) -> Callable[[], None]:
        def run() -> None:
            for line in follow(path, stop):
                text = match(line)
                if text:
                    hops.put((time.monotonic(), text))
                    return
        return run

    def delivered(line: str) -> Optional[str]:
        if '"Received message"' in line and system.NAME in line:
            return "Trigger falco-responder delivered it (broker-filter -> the function)"
        return None

    def decided(line: str) -> Optional[str]:
        if line.startswith('{"status":') and name in line:
            decision = json.loads(line)
            actions = ", ".join(f"{a['action']} {a['status']}: {a['reason']}"
                                for a in decision.get("actions", ()))
            return f"the function decided: HTTP {decision['status']}, {actions}"
        return None

    def answered(line: str) -> Optional[str]:
        if "CloudEvents - Send OK" in line:
            return ("the Broker answered Falcosidekick (delivery is synchronous: after the "
                    "function's answer)")
        return None

    def pods() -> None:
        stream = watch.Watch().stream(kube.core.list_namespaced_pod, "default",
                                      label_selector="app=alpine", timeout_seconds=30)
        told_deleted = told_replacement = False
        for change in stream:
            pod = change["object"]
            if change["type"] == "DELETED" and pod.metadata.uid == uid and not told_deleted:
                hops.put((time.monotonic(), f"pod/{name} deleted"))
                told_deleted = True
            elif (pod.metadata.uid != uid and pod.status.phase == "Running"
                  and not told_replacement):
                hops.put((time.monotonic(), f"the Deployment's replacement pod/"
                                            f"{pod.metadata.name} is Running"))
                told_replacement = True
            if (told_deleted and told_replacement) or stop.is_set():
                return

    filter_log = eventing.pods["mt-broker-filter"].process.log_path
    for run in (on_line(filter_log, delivered), on_line(responder.process.log_path, decided),
                on_line(sidekick.process.log_path, answered), pods):
        threading.Thread(target=run, daemon=True).start()
    time.sleep(0.2)  # the watch is open and the files are followed before the alert


def print_hops(hops: queue.Queue[Hop], started: float, expected: int,
               timeout: float) -> int:
    """Print each hop as it arrives, with its time since the alert was posted."""
    seen = 0
    deadline = time.monotonic() + timeout
    while seen < expected:
        try:
            when, what = hops.get(timeout=max(0.0, deadline - time.monotonic()))
        except queue.Empty:
            print(f"!! only {seen} of {expected} hops seen within {timeout:.0f} s")
            break
        seen += 1
        print(f"+{(when - started) * 1000:7.1f} ms  {what}", flush=True)
    return seen


if __name__ == "__main__":
    sys.exit(main())
