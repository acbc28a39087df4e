"""Fixtures of the test bed: the real kube-apiserver (+ etcd), a cluster whose controllers
act, Knative Eventing's Broker, Falcosidekick, and the network that joins them.

Binaries come from ``python -m tests.testbed.build``; a fixture whose binary is missing fails
(never skips) with that command in its message. Fixtures:

- ``apiserver`` (session): a bare ``tests.testbed.apiserver.ApiServer`` (no controllers) with
  ``.kubeconfig``, ``.host``, ``.ca_file``, ``.api_client`` (admin), ``.new_client(kubeconfig)``.
- ``apiserver_1_21`` (session): the same on Kubernetes 1.21, the last release serving the
  ``v1beta1`` APIs Kubeless needs, with that release's garbage collector.
- ``kube`` (function): a ``tests.testbed.kube.Kube`` on the bare API server, bound to a fresh
  namespace (``kube.namespace``) with factories for namespaces, ServiceAccounts, roles,
  bindings, pods of each kind, manifests, and ``token_kubeconfig(account)`` (TokenRequest).
- ``cluster`` (session): a ``tests.testbed.cluster.Cluster``: its own API server plus
  kube-controller-manager, kube-scheduler and kwok, so pods run and come back.
- ``cluster_kube`` (function): a ``Kube`` on that cluster, bound to a fresh namespace.
- ``network`` (function): factory ``network() -> Network`` of test networks (hosts in
  namespaces of their own, with cluster DNS names); ``session_network`` (session): one.
- ``eventing`` (session): ``tests.testbed.knative_eventing.Eventing`` running on ``cluster``.
- ``free_port`` (function): the ``free_port(host="127.0.0.1") -> int`` helper.
- ``receiver`` (function): factory ``receiver(host="127.0.0.1", port=0, status=200,
  netns=None) -> Receiver`` of HTTP receivers recording every request.
- ``falcosidekick`` (function): factory ``falcosidekick(config, host=None) -> Sidekick``
  that starts Falcosidekick with a config dict and returns it (``.url``).

Everything started is stopped by the fixture's finalizer, and at the latest at exit.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

import pytest

from tests.testbed import peers, procs
from tests.testbed.apiserver import ApiServer, start_apiserver
from tests.testbed.cluster import Cluster, start_cluster
from tests.testbed.controller_manager import FLAGS_1_21, start_controller_manager
from tests.testbed.knative_eventing import Eventing, start_eventing
from tests.testbed.kube import Kube
from tests.testbed.netns import Host, Network, create_network
from tests.testbed.receiver import Receiver
from tests.testbed.sidekick import Sidekick, start_falcosidekick


# trylast: inside the capture plugin's own wrapper, so the flush is still captured.
@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    """The decision log writes from its own thread: flush it while the test's own output
    is still being captured, so no line lands between phases, on the console."""
    from function.decision_log import DECISIONS

    yield
    DECISIONS.flush()


@contextlib.contextmanager
def _apiserver(folder: Path, binary_name: str = "kube-apiserver") -> Iterator[ApiServer]:
    server = start_apiserver(folder, binary_name=binary_name)
    try:
        # The ServiceAccount controller that would create it does not run here.
        Kube(server, server.workdir).ensure_service_account("default", "default")
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One etcd + kube-apiserver for the whole session, with an admin login."""
    with _apiserver(tmp_path_factory.mktemp("apiserver")) as server:
        yield server


@pytest.fixture(scope="session")
def apiserver_1_21(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """etcd + Kubernetes 1.21's kube-apiserver, for Kubeless, with an admin login, and that
    release's garbage collector acting on it (Kubeless leaves a Function's Deployment to
    it)."""
    folder = tmp_path_factory.mktemp("apiserver-1.21")
    with _apiserver(folder, "kube-apiserver-1.21") as server:
        collector = start_controller_manager(
            folder / "garbage-collector", server, "kube-controller-manager-1.21",
            "garbagecollector", FLAGS_1_21)
        try:
            yield server
        finally:
            collector.stop()


@pytest.fixture
def kube(apiserver: ApiServer, tmp_path: Path) -> Kube:
    """Object factories bound to a namespace made for this test (``kube.namespace``)."""
    return Kube.in_new_namespace(apiserver, tmp_path)


@pytest.fixture
def free_port() -> Callable[..., int]:
    """``free_port(host="127.0.0.1")``: a TCP port free right now."""
    return procs.free_port


@pytest.fixture
def receiver() -> Iterator[Callable[..., Receiver]]:
    """``receiver(host="127.0.0.1", port=0, status=200, response_body=b"{}", netns=None)``:
    an HTTP server recording every request (``.url``, ``.requests``, ``.wait_for(n)``),
    inside a network host when ``netns`` is one."""
    started: List[Receiver] = []

    def make(*args: Any, **kwargs: Any) -> Receiver:
        server = Receiver(*args, **kwargs)
        started.append(server)
        return server

    yield make
    for server in started:
        server.close()


@pytest.fixture
def network(tmp_path: Path) -> Iterator[Callable[[], Network]]:
    """``network()``: a test network; ``.host(label, names=[...])`` adds a namespace whose
    address every host resolves ``names`` to (bind receivers there with ``netns=host``)."""
    made: List[Network] = []

    def make() -> Network:
        made.append(create_network(tmp_path / f"network-{len(made)}"))
        return made[-1]

    yield make
    for net in made:
        net.delete()


@pytest.fixture(scope="session")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster whose controllers act, for the whole session (kwok must not restart)."""
    running = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def cluster_kube(cluster: Cluster, tmp_path: Path) -> Kube:
    """Object factories on the cluster, bound to a namespace made for this test."""
    return Kube.in_new_namespace(cluster.apiserver, tmp_path)


@pytest.fixture(scope="session")
def session_network(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Network]:
    """The network Knative Eventing's pods live on, with the function and peers that use it."""
    net = create_network(tmp_path_factory.mktemp("network"))
    try:
        yield net
    finally:
        net.delete()


@pytest.fixture(scope="session")
def eventing(cluster: Cluster, session_network: Network,
             tmp_path_factory: pytest.TempPathFactory) -> Iterator[Eventing]:
    """Knative Eventing's channel-based Broker running on ``cluster``."""
    running = start_eventing(tmp_path_factory.mktemp("eventing"), cluster, session_network)
    try:
        yield running
    finally:
        running.stop()


@pytest.fixture
def falcosidekick(tmp_path: Path) -> Iterator[Callable[..., Sidekick]]:
    """``falcosidekick(config, host=None)``: start the real Falcosidekick with ``config``
    (its own YAML keys as a dict, e.g. ``{"webhook": {"address": url}}``), on a network
    ``host`` when given, and return it once ``/ping`` answers (``.url``, ``.post_test()``,
    ``.post_alert(alert)``)."""
    started: List[Sidekick] = []
    peers.binary("falcosidekick")  # missing: fail now, naming the build command

    def make(config: Dict[str, Any], host: Optional[Host] = None) -> Sidekick:
        workdir = tmp_path / f"falcosidekick-{len(started)}"
        sidekick = start_falcosidekick(workdir, config, host)
        started.append(sidekick)
        return sidekick

    yield make
    for sidekick in started:
        sidekick.stop()
