"""The test network on its own: hosts resolve cluster names to each other, the test reaches
into a host, a host reaches the machine's loopback, a Service port is forwarded, and the
machine's own namespace gets no address at all."""

from __future__ import annotations

import subprocess
import sys
import urllib.request
from pathlib import Path
from typing import Callable

import pytest

from tests.testbed import procs
from tests.testbed.netns import NetnsError, Network, wait_connectable
from tests.testbed.receiver import Receiver

MakeNetwork = Callable[[], Network]
CLIENT = (
    "import sys, urllib.request as u; "
    "r = u.Request(sys.argv[1], data=b'{}', headers={'Content-Type': 'application/json'}); "
    "print(u.urlopen(r, timeout=5).status)"
)


def run_inside(argv_prefix: list, url: str) -> str:
    result = subprocess.run([*argv_prefix, sys.executable, "-c", CLIENT, url],
                            capture_output=True, text=True, timeout=30, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def addresses_of_this_namespace() -> str:
    return subprocess.run(["ip", "-o", "-4", "addr", "show"], capture_output=True, text=True,
                          check=True).stdout


def test_a_host_reaches_another_by_its_cluster_names(
    network: MakeNetwork, receiver: Callable[..., Receiver]
) -> None:
    net = network()
    function = net.host("function", names=["fn.ns.svc.cluster.local", "gateway.openfaas"])
    caller = net.host("caller")
    server = receiver(netns=function, port=8080)

    for name in ("fn.ns.svc.cluster.local", "gateway.openfaas"):
        assert run_inside(caller.exec_argv([]), f"http://{name}:8080/{name}") == "200"

    seen = [(r.path, r.header("Host")) for r in server.wait_for(2)]
    assert seen == [("/fn.ns.svc.cluster.local", "fn.ns.svc.cluster.local:8080"),
                    ("/gateway.openfaas", "gateway.openfaas:8080")]
    assert function.ip not in addresses_of_this_namespace()


def test_names_added_later_reach_hosts_made_earlier(
    network: MakeNetwork, receiver: Callable[..., Receiver]
) -> None:
    net = network()
    caller = net.host("caller")
    target = net.host("target")
    server = receiver(netns=target, port=8080)

    net.add_names(target.ip, ["late.ns.svc.cluster.local"])

    assert run_inside(caller.exec_argv([]), "http://late.ns.svc.cluster.local:8080/") == "200"
    assert server.wait_for(1)[0].header("Host") == "late.ns.svc.cluster.local:8080"


def test_the_test_reaches_a_server_inside_a_host(network: MakeNetwork, tmp_path: Path) -> None:
    host = network().host("server")
    server = procs.start("http.server", host.exec_argv(
        [sys.executable, "-m", "http.server", "--bind", host.ip, "8080"]),
        tmp_path / "server.log")
    try:
        wait_connectable(host, 8080, 15, "http.server listening inside the host", server)
        with host.entered(), urllib.request.urlopen(f"http://{host.ip}:8080/", timeout=5) as r:
            assert r.status == 200
    finally:
        server.stop()


def test_a_host_reaches_the_machines_loopback_port(
    network: MakeNetwork, receiver: Callable[..., Receiver]
) -> None:
    apiserver_like = receiver()  # on the machine's 127.0.0.1, like the kube-apiserver
    host = network().host("client")

    host.reach_loopback(apiserver_like.port)

    assert run_inside(host.exec_argv([]), f"{apiserver_like.url}/through-relay") == "200"
    assert apiserver_like.wait_for(1)[0].path == "/through-relay"


def test_a_service_port_is_forwarded_to_its_target_port(
    network: MakeNetwork, receiver: Callable[..., Receiver]
) -> None:
    net = network()
    pod = net.host("pod", names=["svc.ns.svc.cluster.local"])
    receiver(netns=pod, port=8080)
    pod.forward(80, 8080)

    assert run_inside(net.host("caller").exec_argv([]),
                      "http://svc.ns.svc.cluster.local/") == "200"


def test_an_address_outside_the_network_or_taken_is_refused(network: MakeNetwork) -> None:
    net = network()
    first = net.host("first")
    with pytest.raises(NetnsError, match="outside"):
        net.host("elsewhere", ip="192.168.1.5")
    with pytest.raises(NetnsError, match="already taken"):
        net.host("twin", ip=first.ip)
