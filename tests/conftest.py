"""Fixtures of the test bed: the real kube-apiserver (+ etcd) and Falcosidekick.

Binaries come from ``python -m tests.testbed.build``; a fixture whose binary is missing fails
(never skips) with that command in its message. Fixtures:

- ``apiserver`` (session): a started ``tests.testbed.apiserver.ApiServer`` with ``.kubeconfig``,
  ``.host``, ``.ca_file``, ``.api_client`` (admin), ``.new_client(kubeconfig)``.
- ``kube`` (function): a ``tests.testbed.kube.Kube`` bound to a fresh namespace
  (``kube.namespace``) with factories for namespaces, ServiceAccounts, roles, bindings,
  pods of each kind, manifests, and ``token_kubeconfig(account)`` (TokenRequest).
- ``free_port`` (function): the ``free_port(host="127.0.0.1") -> int`` helper.
- ``receiver`` (function): factory ``receiver(host="127.0.0.1", port=0, status=200) ->
  Receiver`` of local HTTP receivers recording every request.
- ``netns`` (function): factory ``netns(hosts=[...]) -> NetNamespace`` of network namespaces
  joined to this one by a veth pair, with an ``/etc/hosts`` of their own.
- ``falcosidekick`` (function): factory ``falcosidekick(config, netns=None) -> Sidekick``
  that starts Falcosidekick with a config dict and returns it (``.url``).

Everything started is stopped by the fixture's finalizer, and at the latest at exit.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable, Iterator

import pytest

from tests.testbed import procs
from tests.testbed.apiserver import ApiServer, start_apiserver
from tests.testbed.kube import Kube


@pytest.fixture(scope="session")
def apiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ApiServer]:
    """One etcd + kube-apiserver for the whole session, with an admin login."""
    server = start_apiserver(tmp_path_factory.mktemp("apiserver"))
    try:
        # The ServiceAccount controller that would create it does not run here.
        Kube(server, server.workdir).ensure_service_account("default", "default")
        yield server
    finally:
        server.stop()


@pytest.fixture
def kube(apiserver: ApiServer, tmp_path: Path) -> Kube:
    """Object factories bound to a namespace made for this test (``kube.namespace``)."""
    helper = Kube(apiserver, tmp_path)
    helper.namespace = helper.create_namespace()
    return helper


@pytest.fixture
def free_port() -> Callable[..., int]:
    """``free_port(host="127.0.0.1")``: a TCP port free right now."""
    return procs.free_port
