"""The seed's chain, every hop real: a Falco alert posted to Falcosidekick, its cloudevents
output pointed at the Broker as deploy/falcosidekick/values-knative.yaml says, the Broker,
the Trigger from deploy/ (or func.yaml's), the function on its Knative runtime, the pod of
a real Deployment deleted and replaced by its controllers."""

from __future__ import annotations

import time
from typing import Any, Callable, Dict, List, Optional

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException

from tests.testbed.knative_eventing import EVENTING_GROUP, Eventing
from tests.testbed.kube import Kube
from tests.testbed.netns import Network
from tests.testbed.pods import service_names, wait_running
from tests.testbed.receiver import Receiver
from tests.testbed.sidekick import Sidekick

from .system import (
    NAMESPACE,
    REPO,
    Responder,
    func_triggers,
    func_yaml,
    shipped_trigger_manifest,
    sidekick_config,
)

MakeAlert = Callable[[str, str], Dict[str, Any]]
MakeSidekick = Callable[..., Sidekick]
MakeReceiver = Callable[..., Receiver]
RESPONSE_TYPE = "dev.falcoresponder.response.v1"
#: How an event sink answers: accepted, no reply event (a body would be taken for one).
SINK = {"port": 80, "status": 202, "response_body": b""}


def deploy_alpine(kube: Kube) -> Dict[str, Any]:
    """The blog's target: Deployment ``alpine``, one replica, Running on the node."""
    kube.create_deployment("alpine", replicas=1)
    (pod,) = wait_running(kube.api_client, kube.namespace, "app=alpine")
    return pod


def wait_gone(kube: Kube, pod: Dict[str, Any], timeout: float = 30.0) -> float:
    """Seconds until the pod (that UID) no longer exists."""
    started = time.monotonic()
    meta = pod["metadata"]
    while True:
        try:
            current = kube.core.read_namespaced_pod(meta["name"], meta["namespace"])
            if current.metadata.uid != meta["uid"]:
                return time.monotonic() - started
        except ApiException as error:
            if error.status == 404:
                return time.monotonic() - started
            raise
        if time.monotonic() - started > timeout:
            raise TimeoutError(f"pod {meta['name']} still exists after {timeout:.0f}s")
        time.sleep(0.01)


def events_for(kube: Kube, pod: str) -> List[Any]:
    found = kube.core.list_namespaced_event(kube.namespace,
                                            field_selector=f"involvedObject.name={pod}")
    return [e for e in found.items if e.reason == "FalcoResponse"]


def decisions_for(responder: Responder, pod: str) -> List[Dict[str, Any]]:
    return [d for d in responder.decisions()
            if (d.get("alert") or (d.get("decision") or {}).get("alert") or {})
            .get("target", "").endswith(f"/{pod}")]


def wait_for(check: Callable[[], Any], timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what} did not happen within {timeout:.0f}s")
        time.sleep(0.05)


def sink_service(kube: Kube, network: Network, receiver: MakeReceiver, name: str) -> Receiver:
    """An event sink behind a Service ``name`` in the function's namespace (no selector:
    the name resolves to the sink's host on the network)."""
    sink = receiver(netns=network.host(name, service_names(name, NAMESPACE)), **SINK)
    kube.core.create_namespaced_service(NAMESPACE, client.V1Service(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1ServiceSpec(ports=[client.V1ServicePort(port=80)])))
    return sink


def backoff_seconds(delivery: Dict[str, Any]) -> float:
    """The dispatcher's waits between a delivery's attempts, all together, for the shipped
    exponential policy (delay, 2x, 4x, ...; delay written ``PT<seconds>S``)."""
    assert delivery["backoffPolicy"] == "exponential", delivery
    delay = float(delivery["backoffDelay"][2:-1])
    return sum(delay * 2 ** attempt for attempt in range(int(delivery["retry"])))


@pytest.fixture
def sidekick(falcosidekick: MakeSidekick, session_network: Network,
             responder: Responder) -> Callable[..., Sidekick]:
    """``sidekick(token=None)``: Falcosidekick as deploy/falcosidekick/values-knative.yaml
    configures it (with the right token, or the one given), on the cluster network."""
    def start(token: Optional[str] = None) -> Sidekick:
        return falcosidekick(sidekick_config(token or responder.token),
                             host=session_network.host("falcosidekick"))

    return start


def test_broker_chain_deletes_the_shell_pod_and_the_deployment_replaces_it(
    responder: Responder, shipped_trigger: Dict[str, Any], cluster_kube: Kube,
    sidekick: Callable[..., Sidekick], alert: MakeAlert,
) -> None:
    pod = deploy_alpine(cluster_kube)
    name = pod["metadata"]["name"]
    falcosidekick = sidekick()

    assert falcosidekick.post_alert(alert(cluster_kube.namespace, name)) == 200
    seconds = wait_gone(cluster_kube, pod)

    print(f"\nalert -> Falcosidekick -> Broker -> Trigger -> function -> pod gone: "
          f"{seconds * 1000:.0f} ms")
    (decision,) = wait_for(lambda: decisions_for(responder, name), 10, "the decision's log line")
    assert decision["status"] == 200
    assert [(a["action"], a["status"], a["reason"]) for a in decision["actions"]] == [
        ("terminate", "done", "pod deleted")]
    assert len(events_for(cluster_kube, name)) == 1
    (replacement,) = wait_running(cluster_kube.api_client, cluster_kube.namespace,
                                  "app=alpine")
    assert replacement["metadata"]["uid"] != pod["metadata"]["uid"]
    time.sleep(1.0)  # the replacement is not touched: same pod, still Running, no Event
    (still,) = wait_running(cluster_kube.api_client, cluster_kube.namespace, "app=alpine")
    assert still["metadata"]["uid"] == replacement["metadata"]["uid"]
    assert events_for(cluster_kube, replacement["metadata"]["name"]) == []


def test_broker_retries_a_503_until_the_function_reaches_the_api_server(
    responder: Responder, shipped_trigger: Dict[str, Any], cluster_kube: Kube,
    sidekick: Callable[..., Sidekick], alert: MakeAlert,
) -> None:
    pod = deploy_alpine(cluster_kube)
    name = pod["metadata"]["name"]
    falcosidekick = sidekick()
    with responder.cut_off():
        assert falcosidekick.post_alert(alert(cluster_kube.namespace, name)) == 200
        wait_for(lambda: any(d["status"] == 503 for d in decisions_for(responder, name)),
                 30, "a 503 from the function")
        assert cluster_kube.read_pod(name) is not None

    wait_gone(cluster_kube, pod)
    done = wait_for(lambda: [d for d in decisions_for(responder, name) if d["status"] == 200],
                    10, "the decision's log line")
    decisions = decisions_for(responder, name)
    assert [(a["status"], a["reason"]) for d in done for a in d["actions"]] == [
        ("done", "pod deleted")], decisions
    assert {d["status"] for d in decisions} == {503, 200}
    assert len(events_for(cluster_kube, name)) == 1


def test_broker_routes_the_decision_to_a_responses_trigger_and_never_back_to_the_function(
    responder: Responder, shipped_trigger: Dict[str, Any], eventing: Eventing,
    session_network: Network, cluster_kube: Kube, sidekick: Callable[..., Sidekick],
    receiver: MakeReceiver, alert: MakeAlert,
) -> None:
    kube = responder.kube
    notifier = sink_service(kube, session_network, receiver, "notifier")
    kube.apply_objects([{
        "apiVersion": f"{EVENTING_GROUP}/v1", "kind": "Trigger",
        "metadata": {"name": "falco-responder-decisions", "namespace": NAMESPACE},
        "spec": {"broker": "default", "filter": {"attributes": {"type": RESPONSE_TYPE}},
                 "subscriber": {"ref": {"apiVersion": "v1", "kind": "Service",
                                        "name": "notifier"}}},
    }])
    eventing.wait_ready("triggers", NAMESPACE, "falco-responder-decisions")
    try:
        pod = deploy_alpine(cluster_kube)
        name = pod["metadata"]["name"]
        assert sidekick().post_alert(alert(cluster_kube.namespace, name)) == 200
        (reply,) = notifier.wait_for(1, timeout=30)
    finally:
        eventing.delete_trigger(NAMESPACE, "falco-responder-decisions")
        kube.core.delete_namespaced_service("notifier", NAMESPACE)

    assert reply.header("ce-type") == RESPONSE_TYPE
    assert reply.header("ce-subject") == f"{cluster_kube.namespace}/{name}"
    assert b'"pod deleted"' in reply.body
    time.sleep(1.0)  # had the reply looped back, the function would have logged it by now
    assert len(decisions_for(responder, name)) == 1
    assert not any(d.get("message", "").startswith("ignored") for d in responder.decisions())


@pytest.mark.parametrize("source, delivered", [("falco.org", False),
                                               ("https://falco.org", True)])
def test_broker_trigger_filter_on_source_matches_what_falcosidekick_sends(
    source: str, delivered: bool, responder: Responder, eventing: Eventing,
    session_network: Network, sidekick: Callable[..., Sidekick], receiver: MakeReceiver,
    alert: MakeAlert,
) -> None:
    """The seed blog's Trigger filtered on ``source: falco.org``; Falcosidekick 2.29+ sends
    ``https://falco.org``, so that filter matches nothing (docs/knative.md)."""
    label = "blog" if not delivered else "exact"
    sink = receiver(netns=session_network.host(label, service_names(label, NAMESPACE)), **SINK)
    kube = responder.kube
    trigger = f"source-{label}"
    kube.apply_objects([{
        "apiVersion": f"{EVENTING_GROUP}/v1", "kind": "Trigger",
        "metadata": {"name": trigger, "namespace": NAMESPACE},
        "spec": {"broker": "default",
                 "filter": {"attributes": {"type": "falco.rule.output.v1", "source": source}},
                 "subscriber": {"uri": f"http://{service_names(label, NAMESPACE)[0]}/"}},
    }])
    eventing.wait_ready("triggers", NAMESPACE, trigger)
    witness = alert("kube-system", "not-there")  # a no-op for the function, if delivered
    try:
        assert sidekick().post_alert(witness) == 200
        if delivered:
            (request,) = sink.wait_for(1, timeout=30)
            assert request.header("ce-source") == "https://falco.org"
        else:
            time.sleep(2.0)
            assert sink.requests == []
    finally:
        eventing.delete_trigger(NAMESPACE, trigger)


def test_broker_chain_with_a_wrong_token_acts_on_nothing_and_is_not_retried(
    responder: Responder, shipped_trigger: Dict[str, Any], cluster_kube: Kube,
    sidekick: Callable[..., Sidekick], alert: MakeAlert,
) -> None:
    pod = deploy_alpine(cluster_kube)
    name = pod["metadata"]["name"]
    before = sum(1 for d in responder.decisions() if d["status"] == 401)

    assert sidekick(token="not-the-token").post_alert(
        alert(cluster_kube.namespace, name)) == 200

    wait_for(lambda: sum(1 for d in responder.decisions() if d["status"] == 401) > before,
             30, "a 401 from the function")
    time.sleep(3.0)  # the Trigger's retries (0.5 s, 1 s, 2 s...) would have come by now
    assert sum(1 for d in responder.decisions() if d["status"] == 401) == before + 1
    assert cluster_kube.read_pod(name) is not None
    assert events_for(cluster_kube, name) == []


def test_broker_delivers_through_the_trigger_func_deploy_makes_from_func_yaml(
    responder: Responder, shipped_trigger: Dict[str, Any], eventing: Eventing,
    cluster_kube: Kube, sidekick: Callable[..., Sidekick], alert: MakeAlert,
) -> None:
    kube = responder.kube
    custom = client.CustomObjectsApi(kube.api_client)
    ksvc = custom.get_namespaced_custom_object("serving.knative.dev", "v1", NAMESPACE,
                                               "services", "falco-responder")
    (trigger,) = func_triggers(func_yaml(), ksvc)
    # One route to the function at a time: func.yaml's instead of deploy/'s.
    eventing.delete_trigger(NAMESPACE, shipped_trigger["metadata"]["name"])
    kube.apply_objects([trigger])
    try:
        eventing.wait_ready("triggers", NAMESPACE, trigger["metadata"]["name"])
        pod = deploy_alpine(cluster_kube)
        assert sidekick().post_alert(alert(cluster_kube.namespace,
                                           pod["metadata"]["name"])) == 200
        wait_gone(cluster_kube, pod)
    finally:
        eventing.delete_trigger(NAMESPACE, trigger["metadata"]["name"])
        kube.apply_objects([shipped_trigger_manifest()])
        eventing.wait_ready("triggers", NAMESPACE, shipped_trigger["metadata"]["name"])


def test_broker_gives_up_after_the_triggers_retries_and_falcosidekick_gets_the_failure(
    responder: Responder, shipped_trigger: Dict[str, Any], eventing: Eventing,
    cluster_kube: Kube, sidekick: Callable[..., Sidekick], alert: MakeAlert,
) -> None:
    pod = deploy_alpine(cluster_kube)
    target = pod["metadata"]["name"]
    falcosidekick = sidekick()
    ingress_log = eventing.pods["mt-broker-ingress"].process.log_path
    failures_before = ingress_log.read_text().count("failed to dispatch event")
    with responder.cut_off():
        posted = time.monotonic()
        assert falcosidekick.post_alert(alert(cluster_kube.namespace, target)) == 200
        wait_for(lambda: "CloudEvents - Send OK" in falcosidekick.process.log_path.read_text(),
                 90, "Falcosidekick's POST to the Broker to end")
        answered = time.monotonic() - posted

    retries = shipped_trigger["spec"]["delivery"]["retry"]
    assert [d["status"] for d in decisions_for(responder, target)] == [503] * (1 + retries)
    # Delivery is synchronous: Falcosidekick's POST waited through every retry for the
    # Broker's answer, a failure (the ingress logs it), and reports it as sent (its
    # CloudEvents output counts only events it could not send).
    assert answered > backoff_seconds(shipped_trigger["spec"]["delivery"])
    failures = ingress_log.read_text().split("failed to dispatch event")[failures_before + 1:]
    assert len(failures) == 1 and "got 500" in failures[0].splitlines()[0]
    assert cluster_kube.read_pod(target) is not None
    assert events_for(cluster_kube, target) == []


def commented_dead_letter_sink() -> Dict[str, Any]:
    """The ``deadLetterSink`` deploy/knative/trigger.yaml offers in a comment, as a user who
    uncomments it gets it."""
    lines = (REPO / "deploy" / "knative" / "trigger.yaml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip() == "# deadLetterSink:")
    block = [lines[start]]
    for line in lines[start + 1:]:
        if not line.strip().startswith("#   "):
            break
        block.append(line)
    text = "\n".join(line.replace("# ", "", 1) for line in block)
    return dict(yaml.safe_load(text)["deadLetterSink"])


def test_broker_gives_up_after_the_triggers_retries_and_the_dead_letter_sink_keeps_the_alert(
    responder: Responder, shipped_trigger: Dict[str, Any], eventing: Eventing,
    session_network: Network, cluster_kube: Kube, sidekick: Callable[..., Sidekick],
    receiver: MakeReceiver, alert: MakeAlert,
) -> None:
    sink_spec = commented_dead_letter_sink()
    name = sink_spec["ref"]["name"]
    kube = responder.kube
    sink = sink_service(kube, session_network, receiver, name)
    trigger = shipped_trigger_manifest()
    trigger["spec"]["delivery"]["deadLetterSink"] = sink_spec
    kube.apply_objects([trigger])
    eventing.wait_ready("triggers", NAMESPACE, trigger["metadata"]["name"])
    pod = deploy_alpine(cluster_kube)
    target = pod["metadata"]["name"]
    falcosidekick = sidekick()
    ingress_log = eventing.pods["mt-broker-ingress"].process.log_path
    failures_before = ingress_log.read_text().count("failed to dispatch event")
    try:
        with responder.cut_off():
            posted = time.monotonic()
            assert falcosidekick.post_alert(alert(cluster_kube.namespace, target)) == 200
            (dead,) = sink.wait_for(1, timeout=90)
            gave_up = time.monotonic() - posted
    finally:
        kube.apply_objects([shipped_trigger_manifest()])
        kube.core.delete_namespaced_service(name, NAMESPACE)

    attempts = [d["status"] for d in decisions_for(responder, target)]
    assert attempts == [503] * (1 + trigger["spec"]["delivery"]["retry"])
    assert gave_up > backoff_seconds(trigger["spec"]["delivery"])
    assert dead.header("ce-type") == "falco.rule.output.v1"
    assert dead.header("ce-knativeerrorcode") == "503"
    assert f'"k8s.pod.name":"{target}"'.encode() in dead.body
    assert cluster_kube.read_pod(target) is not None
    assert events_for(cluster_kube, target) == []
    # Kept in the sink, the event counts as delivered: the Broker's answer is a success.
    assert ingress_log.read_text().count("failed to dispatch event") == failures_before
    assert falcosidekick.process.log_path.read_text().count("CloudEvents - Send OK") == 1
