"""Acceptance tests of the test bed (issue 2): the real Falcosidekick reaches a local function
through its webhook, CloudEvents, Kubeless and OpenFaaS outputs."""

from __future__ import annotations

import json
from typing import Callable

from tests.testbed.netns import NetNamespace
from tests.testbed.receiver import Receiver
from tests.testbed.sidekick import Sidekick

MakeReceiver = Callable[..., Receiver]
MakeSidekick = Callable[..., Sidekick]
MakeNetns = Callable[..., NetNamespace]


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
    falcosidekick: MakeSidekick, receiver: MakeReceiver, netns: MakeNetns
) -> None:
    namespace = netns(hosts=["responder.falco.svc.cluster.local"])
    function = receiver(namespace.host_ip)
    sidekick = falcosidekick(
        {"kubeless": {"function": "responder", "namespace": "falco", "port": function.port}},
        netns=namespace,
    )

    assert sidekick.post_test() == 200

    (request,) = function.wait_for(1)
    assert (request.method, request.path) == ("POST", "/")
    assert request.header("Host") == f"responder.falco.svc.cluster.local:{function.port}"
    assert request.header("event-type") == "falco"
    assert request.header("event-namespace") == "falco"
    assert json.loads(request.body)["rule"] == "Test rule"


def test_openfaas_output_reaches_function_through_gateway_name(
    falcosidekick: MakeSidekick, receiver: MakeReceiver, netns: MakeNetns
) -> None:
    namespace = netns(hosts=["gateway.openfaas"])
    gateway = receiver(namespace.host_ip)
    sidekick = falcosidekick(
        {"openfaas": {"functionname": "responder", "functionnamespace": "openfaas-fn",
                      "gatewayport": gateway.port}},
        netns=namespace,
    )

    assert sidekick.post_test() == 200

    (request,) = gateway.wait_for(1)
    assert (request.method, request.path) == ("POST", "/function/responder.openfaas-fn")
    assert request.header("Host") == f"gateway.openfaas:{gateway.port}"
    assert json.loads(request.body)["rule"] == "Test rule"
