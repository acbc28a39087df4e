"""`make run`'s server with a cluster configured (the real kube-apiserver): a request that
does not arrive whole, or is framed ambiguously, leaves the pod it names alive; the same
alert arriving whole deletes it, so the server could have acted."""

from __future__ import annotations

import json
import socket
import time
from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.function.actions.conftest import shell_alert_for
from tests.testbed.apiserver import ApiServer
from tests.testbed.kube import Kube

from .local_server import LocalServer
from .raw_http import Reader, connect, exchange, post_bytes

pytestmark = pytest.mark.cluster

Hostile = Callable[[int, bytes], None]


@pytest.fixture
def cluster_server(apiserver: ApiServer, tmp_path: Path) -> Iterator[LocalServer]:
    running = LocalServer(tmp_path, {"KUBECONFIG": str(apiserver.kubeconfig)})
    try:
        yield running
    finally:
        running.stop()


def alert_bytes(kube: Kube, name: str) -> bytes:
    pod = kube.create_standalone_pod(name)
    return json.dumps(shell_alert_for(kube.namespace, name, uid=pod.pod.metadata.uid)).encode()


def closed_with_the_body_cut_by_the_sender(port: int, body: bytes) -> None:
    with connect(port) as sock:
        sock.sendall(post_bytes(body)[:-20])
        sock.shutdown(socket.SHUT_WR)
        assert Reader(sock).reply() is None


def left_half_sent(port: int, body: bytes) -> None:
    with connect(port) as sock:
        sock.sendall(post_bytes(body)[:-20])
        assert Reader(sock).closed_within(10) is not None


def with_a_second_content_length(port: int, body: bytes) -> None:
    raw = post_bytes(body, [f"Content-Length: {len(body) - 20}"])
    reply = exchange(port, raw)
    assert reply is not None and reply.status == 400


def with_a_length_in_underscores(port: int, body: bytes) -> None:
    digits = str(len(body))
    raw = post_bytes(body).replace(f"Content-Length: {digits}".encode(),
                                   f"Content-Length: {'_'.join(digits)}".encode())
    reply = exchange(port, raw)
    assert reply is not None and reply.status == 400


def expecting_100_continue_with_a_huge_length(port: int, body: bytes) -> None:
    raw = post_bytes(body).replace(f"Content-Length: {len(body)}".encode(),
                                   b"Expect: 100-continue\r\nContent-Length: 1073741824")
    reply = exchange(port, raw)
    assert reply is not None and reply.status == 413


@pytest.mark.parametrize("hostile", [
    closed_with_the_body_cut_by_the_sender, left_half_sent, with_a_second_content_length,
    with_a_length_in_underscores, expecting_100_continue_with_a_huge_length,
], ids=lambda f: f.__name__)
def test_a_hostile_request_naming_a_real_pod_leaves_it_alive(
        cluster_server: LocalServer, kube: Kube, hostile: Hostile) -> None:
    body = alert_bytes(kube, "victim")
    hostile(cluster_server.port, body)
    assert cluster_server.decisions() == []
    assert kube.read_pod("victim") is not None
    # The same alert, whole: the pod goes, so the server was able to act all along.
    reply = exchange(cluster_server.port, post_bytes(body))
    assert reply is not None and reply.status == 200
    assert reply.json()["actions"][0]["reason"] == "pod deleted", reply.json()
    deadline = time.monotonic() + 5
    while kube.read_pod("victim") is not None and time.monotonic() < deadline:
        time.sleep(0.05)
    assert kube.read_pod("victim") is None


def test_a_chunked_alert_acts(cluster_server: LocalServer, kube: Kube) -> None:
    body = alert_bytes(kube, "chunked")
    chunks = b"".join(b"%x\r\n%s\r\n" % (len(body[i:i + 64]), body[i:i + 64])
                      for i in range(0, len(body), 64)) + b"0\r\n\r\n"
    raw = (b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" + chunks)
    reply = exchange(cluster_server.port, raw)
    assert reply is not None and reply.status == 200
    assert reply.json()["actions"][0]["reason"] == "pod deleted"
    assert kube.read_pod("chunked") is None
