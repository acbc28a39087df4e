"""The real Falcosidekick reaches a function through its webhook, CloudEvents, Kubeless and
OpenFaaS outputs, the last two by the cluster names they hard-code."""

from __future__ import annotations

import json
from typing import Callable

from tests.testbed.netns import Network
from tests.testbed.receiver import Receiver
from tests.testbed.sidekick import Sidekick

MakeReceiver = Callable[..., Receiver]
MakeSidekick = Callable[..., Sidekick]
MakeNetwork = Callable[[], Network]


def test_webhook_output_carries_payload_and_custom_header(
    falcosidekick: MakeSidekick, receiver: MakeReceiver
) -> None:
    function = receiver()
    sidekick = falcosidekick(
        {"webhook": {"address": f"{function.url}/hook",
                     "customheaders": {"X-Responder-Token": "s3cret"}}}
    )

    assert sidekick.post_test() == 200

    (request,) = function.wait_for(1)
    assert (request.method, request.path) == ("POST", "/hook")
    assert request.header("X-Responder-Token") == "s3cret"
    assert request.header("User-Agent") == "Falcosidekick"
    assert request.header("Content-Type") == "application/json; charset=utf-8"
    alert = json.loads(request.body)
    assert alert["rule"] == "Test rule"
    assert alert["source"] == "internal"
    assert set(alert) >= {"uuid", "output", "priority", "rule", "time", "output_fields"}


def test_cloudevents_output_is_binary_mode(
    falcosidekick: MakeSidekick, receiver: MakeReceiver
) -> None:
    broker = receiver()
    sidekick = falcosidekick({"cloudevents": {"address": broker.url}})

    assert sidekick.post_test() == 200

    (request,) = broker.wait_for(1)
    assert request.header("ce-source") == "https://falco.org"
    assert request.header("ce-specversion") == "1.0"
    assert request.header("ce-type") == "falco.rule.output.v1"
    assert request.header("ce-id")
    assert request.header("content-type") == "application/json"
    assert json.loads(request.body)["rule"] == "Test rule"


def test_kubeless_output_reaches_function_through_cluster_dns_name(
    falcosidekick: MakeSidekick, receiver: MakeReceiver, network: MakeNetwork
) -> None:
    net = network()
    function = receiver(netns=net.host("function", ["responder.falco.svc.cluster.local"]),
                        port=8080)
    sidekick = falcosidekick(
        {"kubeless": {"function": "responder", "namespace": "falco", "port": 8080}},
        host=net.host("falcosidekick"),
    )

    assert sidekick.post_test() == 200

    (request,) = function.wait_for(1)
    assert (request.method, request.path) == ("POST", "/")
    assert request.header("Host") == "responder.falco.svc.cluster.local:8080"
    assert request.header("event-type") == "falco"
    assert request.header("event-namespace") == "falco"
    assert json.loads(request.body)["rule"] == "Test rule"


def test_openfaas_output_reaches_function_through_gateway_name(
    falcosidekick: MakeSidekick, receiver: MakeReceiver, network: MakeNetwork
) -> None:
    net = network()
    gateway = receiver(netns=net.host("gateway", ["gateway.openfaas"]), port=8080)
    sidekick = falcosidekick(
        {"openfaas": {"functionname": "responder", "functionnamespace": "openfaas-fn"}},
        host=net.host("falcosidekick"),
    )

    assert sidekick.post_test() == 200

    (request,) = gateway.wait_for(1)
    assert (request.method, request.path) == ("POST", "/function/responder.openfaas-fn")
    assert request.header("Host") == "gateway.openfaas:8080"
    assert json.loads(request.body)["rule"] == "Test rule"
