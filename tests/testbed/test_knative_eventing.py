"""Knative Eventing on its own: a Broker made as a user makes it, a Trigger's subscriber on
the test network gets the events of its type, once each, and nothing else."""

from __future__ import annotations

import json
import time
import urllib.request
import uuid
from typing import Callable

from tests.testbed.knative_eventing import EVENTING_GROUP, Eventing
from tests.testbed.kube import Kube
from tests.testbed.netns import Network
from tests.testbed.pods import service_names
from tests.testbed.receiver import Receiver


def post_event(network: Network, namespace: str, kind: str) -> int:
    """A binary-mode CloudEvent to the Broker, sent from a host of the network."""
    sender = network.host(f"sender-{uuid.uuid4().hex[:6]}")
    ingress = service_names("broker-ingress", "knative-eventing")[0]
    request = urllib.request.Request(
        f"http://{network.resolve(ingress)}/{namespace}/default", method="POST",
        data=json.dumps({"n": 1}).encode(),
        headers={"Host": ingress, "Content-Type": "application/json",
                 "Ce-Specversion": "1.0", "Ce-Id": str(uuid.uuid4()), "Ce-Source": "test",
                 "Ce-Type": kind})
    with sender.entered(), urllib.request.urlopen(request, timeout=30) as answer:
        return int(answer.status)


def test_a_trigger_delivers_its_type_once_and_filters_out_the_rest(
    eventing: Eventing, session_network: Network, cluster_kube: Kube,
    receiver: Callable[..., Receiver],
) -> None:
    namespace = cluster_kube.namespace
    broker = eventing.create_broker(namespace)
    assert broker["status"]["address"]["url"] == eventing.broker_url(namespace)
    sink = receiver(netns=session_network.host("sink", service_names("sink", namespace)),
                    port=80, status=202, response_body=b"")
    cluster_kube.apply_objects([{
        "apiVersion": f"{EVENTING_GROUP}/v1", "kind": "Trigger",
        "metadata": {"name": "only-wanted", "namespace": namespace},
        "spec": {"broker": "default", "filter": {"attributes": {"type": "wanted"}},
                 "subscriber": {"uri": f"http://{service_names('sink', namespace)[0]}/"}},
    }])
    eventing.wait_ready("triggers", namespace, "only-wanted")

    for kind in ("wanted", "unwanted", "wanted"):
        assert post_event(session_network, namespace, kind) == 202

    delivered = sink.wait_for(2, timeout=30)
    time.sleep(0.5)
    assert len(sink.requests) == 2
    assert {r.header("ce-type") for r in delivered} == {"wanted"}
    assert all(r.header("ce-knativearrivaltime") for r in delivered)
