from __future__ import annotations

from typing import Any, Callable, Dict, Iterator

import pytest

from function import Engine, Settings
from function.policy import load_default, parse_policy

from .local_server import LocalServer
from .wire import load_json

TERMINAL_SHELL = "terminal_shell_in_container.falco-0.37-ovh-k8s.forwarded.json"


@pytest.fixture
def shell_alert() -> Dict[str, Any]:
    """The blog demo's alert: a shell in default/alpine, as Falcosidekick forwards it."""
    return load_json("forwarded", TERMINAL_SHELL)


@pytest.fixture
def offline_engine() -> Callable[..., Engine]:
    """An engine with no cluster: every decision is a dry run."""

    def make(policy: str = "", **settings: Any) -> Engine:
        loaded = parse_policy(policy, "test-policy.yaml") if policy else load_default()
        return Engine(loaded, Settings(cluster="off", **settings))

    return make


@pytest.fixture(scope="module")
def serving(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalServer]:
    """`python -m function serve` as `make run` starts it (no cluster), one per module."""
    server = LocalServer(tmp_path_factory.mktemp("serve"))
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def server(serving: LocalServer) -> LocalServer:
    """The module's local server, with what earlier tests left in its log already read."""
    serving.decisions()
    return serving
