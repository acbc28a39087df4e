"""What `make bench` times against the API server: alert -> pod DELETED one alert at a time,
an alert storm, and the same API calls made bare with the `kubernetes` client.

A pod's deletion is seen on a watch of its namespace (raw JSON lines on the client's own
connection pool, no models), so every contender, the bare calls included, is timed to the
same event: the API server announcing the pod gone.
"""

from __future__ import annotations

import contextlib
import http.client
import itertools
import json
import random
import socket
import statistics
import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Tuple

import urllib3

from bench.contenders import Contender, alert_for
from bench.load import run_threads
from tests.testbed.kube import Kube

Send = Callable[[Dict[str, Any]], int]


class PodWatch:
    """Records when each pod of a namespace is announced DELETED."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        self.api_client, self.namespace = api_client, namespace
        self.deleted: Dict[str, float] = {}
        self.changed = threading.Condition()
        base = f"{api_client.configuration.host}/api/v1/namespaces/{namespace}/pods"
        listing = self._get(base, preload=True)
        version = json.loads(listing.data)["metadata"]["resourceVersion"]
        self.stream = self._get(f"{base}?watch=1&timeoutSeconds=900&resourceVersion={version}",
                                preload=False)
        self.sock = self.stream.connection.sock
        threading.Thread(target=self._read, daemon=True).start()

    def _get(self, url: str, preload: bool) -> Any:
        # The admin kubeconfig logs in with a client certificate: the pool carries it.
        headers = {"Accept": "application/json"}
        return self.api_client.rest_client.pool_manager.request(
            "GET", url, headers=headers, preload_content=preload,
            timeout=urllib3.Timeout(connect=5, read=None))

    def _read(self) -> None:
        buffer = b""
        try:
            for chunk in self.stream.stream(65536):
                buffer += chunk
                while b"\n" in buffer:
                    line, buffer = buffer.split(b"\n", 1)
                    event = json.loads(line)
                    if event.get("type") == "DELETED":
                        at = time.perf_counter()
                        with self.changed:
                            self.deleted[event["object"]["metadata"]["name"]] = at
                            self.changed.notify_all()
        except Exception:  # the bench closed the stream
            return

    def wait(self, names: List[str], timeout: float) -> Dict[str, float]:
        """Deletion times of ``names`` (those seen within ``timeout``)."""
        deadline = time.monotonic() + timeout
        with self.changed:
            while not all(n in self.deleted for n in names):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.changed.wait(left)
            return {n: self.deleted[n] for n in names if n in self.deleted}

    def close(self) -> None:
        # Closing the response would wait for the reading thread; a shut socket ends it.
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)


def create_pods(kube: Kube, prefix: str, count: int) -> List[Tuple[str, str]]:
    """``count`` standalone pods (unscheduled: a delete removes them at once): (name, uid)."""
    made = []
    for i in range(count):
        name = f"{prefix}-{i:02d}"
        made.append((name, kube.create_standalone_pod(name).pod.metadata.uid))
    return made


class Client:
    """One keep-alive connection, as Falcosidekick keeps one."""

    def __init__(self, contender: Contender) -> None:
        self.contender = contender
        self.conn = http.client.HTTPConnection("127.0.0.1", contender.port, timeout=30)

    def send(self, alert: Dict[str, Any]) -> int:
        headers, body = self.contender.request(alert)
        return self.post(headers, body)

    def post(self, headers: List[Tuple[str, str]], body: bytes) -> int:
        self.conn.putrequest("POST", "/", skip_accept_encoding=True)
        for name, value in headers:
            self.conn.putheader(name, value)
        self.conn.putheader("Content-Length", str(len(body)))
        self.conn.endheaders(body)
        response = self.conn.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.conn.close()


def reaction(kube: Kube, api_client: Any, act: Callable[[str, str], Any], label: str,
             count: int = 50) -> List[float]:
    """Milliseconds from ``act(name, uid)`` starting to the pod announced DELETED, pod by
    pod, one at a time."""
    pods = create_pods(kube, label, count)
    watch = PodWatch(api_client, kube.namespace)
    times = []
    try:
        for name, uid in pods:
            started = time.perf_counter()
            act(name, uid)
            seen = watch.wait([name], 10).get(name)
            if seen is None:
                raise RuntimeError(f"{label}: pod {name} was not deleted within 10 s")
            times.append((seen - started) * 1000)
    finally:
        watch.close()
    return times


@dataclass
class Bare:
    """The same calls one after another with the `kubernetes` client (models and all)."""

    reaction_ms: List[float]
    calls_ms: Dict[str, List[float]]


def bare_calls(kube: Kube, api_client: Any, count: int = 50) -> Bare:
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    calls: Dict[str, List[float]] = {"GET pod": [], "GET namespace": [], "DELETE pod": []}
    namespace = kube.namespace

    def act(name: str, uid: str) -> None:
        t0 = time.perf_counter()
        pod = core.read_namespaced_pod(name, namespace)
        t1 = time.perf_counter()
        core.read_namespace(namespace)
        t2 = time.perf_counter()
        core.delete_namespaced_pod(name, namespace, body=client.V1DeleteOptions(
            preconditions=client.V1Preconditions(uid=pod.metadata.uid)))  # type: ignore[union-attr]
        t3 = time.perf_counter()
        for key, took in zip(calls, (t1 - t0, t2 - t1, t3 - t2)):
            calls[key].append(took * 1000)

    return Bare(reaction(kube, api_client, act, "bare", count), calls)


@dataclass
class Storm:
    answered_per_s: float
    all_gone_s: float
    statuses: Dict[int, int]


def storm(contender: Contender, kube: Kube, api_client: Any, pods: int = 50,
          alerts: int = 10_000, clients: int = 8, acts: bool = True) -> Storm:
    """``alerts`` alerts over ``pods`` pods (shuffled) from ``clients`` keep-alive clients."""
    made = create_pods(kube, "storm", pods)
    requests = [contender.request(alert_for(kube.namespace, name, uid)) for name, uid in made]
    stream = [requests[i % pods] for i in range(alerts)]
    random.Random(7).shuffle(stream)
    watch = PodWatch(api_client, kube.namespace)
    statuses: Dict[int, int] = {}
    lock = threading.Lock()
    turn = itertools.count()

    def worker() -> None:
        client = Client(contender)
        seen: Dict[int, int] = {}
        while True:
            i = next(turn)
            if i >= alerts:
                break
            try:
                status = client.post(*stream[i])
            except (http.client.HTTPException, OSError):
                client.close()
                client = Client(contender)
                status = 0
            seen[status] = seen.get(status, 0) + 1
        client.close()
        with lock:
            for k, v in seen.items():
                statuses[k] = statuses.get(k, 0) + v

    started = time.perf_counter()
    answered = run_threads(worker, clients)
    gone = watch.wait([name for name, _ in made], 60 if acts else 0)
    watch.close()
    last = max(gone.values()) - started if len(gone) == pods else float("nan")
    return Storm(alerts / answered, last, statuses)


def cold_start(contender: Contender, kube: Kube, workdir: Any) -> Tuple[float, float]:
    """(process start -> ready, process start -> first alert answered), in seconds; the
    first alert names a real pod, so a cluster-configured responder really acts on it."""
    [(name, uid)] = create_pods(kube, f"cold{time.monotonic_ns() % 10**6}", 1)
    started = time.perf_counter()
    ready = contender.start(workdir)
    client = Client(contender)
    status = client.send(alert_for(kube.namespace, name, uid))
    first = time.perf_counter() - started
    client.close()
    contender.stop()
    if status != 200:
        raise RuntimeError(f"{contender.label}: the first alert got {status}")
    return ready, first


def p50(values: List[float]) -> float:
    return statistics.median(values) if values else float("nan")


def send_one(contender: Contender, namespace: str) -> Tuple[Callable[[str, str], Any], Client]:
    client = Client(contender)

    def act(name: str, uid: str) -> None:
        status = client.send(alert_for(namespace, name, uid))
        if status != 200:
            raise RuntimeError(f"{contender.label} answered {status}")

    return act, client


__all__ = ["Bare", "Client", "PodWatch", "Storm", "bare_calls", "cold_start", "p50",
           "reaction", "send_one", "storm"]
