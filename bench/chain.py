"""The whole chain, timed: alert -> Falcosidekick -> Broker -> Trigger -> function -> pod gone.

    make bench            (or: .venv/bin/python -m bench.chain)

The system of `make demo` (the cluster, Knative Eventing, the function deployed as the
README says with deploy/knative/trigger.yaml, Falcosidekick with
deploy/falcosidekick/values-knative.yaml), then ROUNDS alerts one at a time, each for a pod
of Deployment ``alpine``: the time from Falcosidekick's POST / to the pod's deletion (a
watch), and for comparison the same alert as a CloudEvent posted straight to the function
(one keep-alive connection from a host of the network).
The first alert of each kind is left out: it opens the connections that the rest reuse.
"""

from __future__ import annotations

import http.client
import json
import statistics
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Callable, List

from kubernetes import watch

from tests.e2e import system
from tests.function.replicas import terminate_only
from tests.testbed import procs
from tests.testbed.cluster import start_cluster
from tests.testbed.knative_eventing import start_eventing
from tests.testbed.kube import Kube
from tests.testbed.netns import create_network
from tests.testbed.pods import service_names, wait_running
from tests.testbed.sidekick import start_falcosidekick

ROUNDS = 21
# The default policy with room for every round: its blast-radius limit (10 per minute)
# would, by design, stop the benchmark after 10 pods.
POLICY = terminate_only(100)


def timed_deletion(kube: Kube, send: Callable[[str], None]) -> float:
    """Milliseconds from ``send(pod)`` until the API server has that pod's deletion: it is
    marked (``deletionTimestamp``) or gone. (kwok then removes a marked pod on its own
    schedule, which is not the function's doing.)"""
    (pod,) = wait_running(kube.api_client, kube.namespace, "app=alpine")
    name = pod["metadata"]["name"]
    stream = watch.Watch()
    started = time.monotonic()
    send(name)
    for change in stream.stream(kube.core.list_namespaced_pod, kube.namespace,
                                field_selector=f"metadata.name={name}",
                                resource_version=pod["metadata"]["resourceVersion"],
                                timeout_seconds=30):
        if change["type"] == "DELETED" or change["object"].metadata.deletion_timestamp:
            stream.stop()
            return (time.monotonic() - started) * 1000
    raise TimeoutError(f"pod {name} was not deleted within 30 s")


def summary(name: str, samples: List[float]) -> str:
    ordered = sorted(samples[1:])  # the first opened the connections
    p90 = ordered[int(0.9 * (len(ordered) - 1))]
    return (f"{name}: p50 {statistics.median(ordered):.1f} ms, p90 {p90:.1f} ms, "
            f"min {ordered[0]:.1f} ms over {len(ordered)} alerts")


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="bench-chain-") as tmp:
        work = Path(tmp)
        cluster = start_cluster(work / "cluster")
        network = create_network(work / "network")
        eventing = None
        try:
            eventing = start_eventing(work / "eventing", cluster, network)
            responder = system.deploy_responder(cluster, eventing, network, work / "fn",
                                                policy=POLICY)
            trigger = responder.kube.apply_objects([system.shipped_trigger_manifest()])[0]
            eventing.wait_ready("triggers", system.NAMESPACE, trigger["metadata"]["name"])
            sidekick = start_falcosidekick(work / "sidekick",
                                           system.sidekick_config(responder.token),
                                           network.host("falcosidekick"))
            kube = Kube(cluster.apiserver, work, namespace="default")
            kube.create_deployment("alpine")
            function = network.resolve(service_names(system.NAME, system.NAMESPACE)[0])
            with network.host("caller").entered():  # one keep-alive connection, made inside
                connection = http.client.HTTPConnection(function, 8080, timeout=30)
                connection.connect()

            senders: List[threading.Thread] = []

            def direct(pod: str) -> None:
                # Answered only after the Event is recorded: sent from a thread, so the
                # watch sees the deletion as it happens, as it does behind Falcosidekick.
                for sender in senders:
                    sender.join()  # one request at a time on the connection
                senders[:] = [threading.Thread(target=post, args=(pod,))]
                senders[0].start()

            def post(pod: str) -> None:
                connection.request(
                    "POST", "/", body=json.dumps(system.shell_alert("default", pod)).encode(),
                    headers={"Content-Type": "application/json", "Ce-Specversion": "1.0",
                             "Ce-Id": str(uuid.uuid4()), "Ce-Source": "https://falco.org",
                             "Ce-Type": "falco.rule.output.v1",
                             "Ce-Falcotoken": responder.token})
                connection.getresponse().read()

            through_chain = [timed_deletion(kube, lambda pod: sidekick.post_alert(
                system.shell_alert("default", pod)) and None) for _ in range(ROUNDS)]
            straight = [timed_deletion(kube, direct) for _ in range(ROUNDS)]
            print(summary("alert -> Falcosidekick -> Broker -> Trigger -> function -> "
                          "pod deleted", through_chain))
            print(summary("the same alert posted straight to the function -> pod deleted",
                          straight))
            return 0
        finally:
            if eventing is not None:
                eventing.stop()
            procs.stop_all()
            network.delete()
            cluster.stop()


if __name__ == "__main__":
    sys.exit(main())
