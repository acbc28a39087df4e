"""OpenFaaS python3-http template: ``adapters/openfaas`` laid out exactly as ``faas-cli build``
lays out the image (handler folder as ``function/``, the core copied into it by stack.yml's
``configuration.copy``), served by the template stand-in
``tests/adapters/openfaas_template/index.py`` (Flask + waitress) in a Python 3.12 venv, over
real HTTP, with nothing from this checkout on the path.

of-watchdog is not in front: the Go module proxy refuses ``github.com/openfaas/of-watchdog``
(403 "This module version is not available"), so it cannot be built here. In ``mode=http`` it
only proxies the request to the template and the reply back, so the template is what these
tests reach directly."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest
import yaml

from tests.adapters import contract
from tests.adapters.contract import (
    JSON,
    Expectations,
    post,
    unreachable_cluster,
    wire_headers,
)
from tests.adapters.runtimes import REPO, Server, start, venv
from tests.adapters.runtimes import requirements as runtime_requirements
from tests.testbed.kube import Kube

ADAPTER = REPO / "adapters" / "openfaas"
TEMPLATE = Path(__file__).resolve().parent / "openfaas_template"
STACK: Dict[str, Any] = yaml.safe_load((ADAPTER / "stack.yml").read_text())
# What the template's own requirements.txt installs before the function's.
TEMPLATE_REQUIREMENTS = ["flask==3.1.*", "waitress==3.0.*"]
PLAIN_JSON = Expectations(kinds=frozenset({JSON}))
OPENFAAS_HEADERS = wire_headers("openfaas_gateway_direct.http")  # Falcosidekick's output
TIME = "2024-04-03T11:36:27.670410771Z"

Serve = Callable[..., Server]


def requirements() -> List[str]:
    return runtime_requirements(ADAPTER)


def image_layout(root: Path) -> Path:
    """/home/app as faas-cli build + the template's Dockerfile leave it: index.py, and
    function/ = an empty __init__.py overlaid with the handler folder, then every
    configuration.copy path copied to function/<path>."""
    app = root / "home-app"
    shutil.copytree(TEMPLATE, app, ignore=shutil.ignore_patterns("__pycache__"))
    (app / "function").mkdir()
    (app / "function" / "__init__.py").write_text("")  # RUN touch ./function/__init__.py
    function = STACK["functions"]["falco-responder"]
    handler = REPO / function["handler"]
    for entry in handler.iterdir():  # faas-cli skips these two names
        if entry.name in ("build", "template", "__pycache__"):
            continue
        target = app / "function" / entry.name
        if entry.is_dir():
            shutil.copytree(entry, target, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copyfile(entry, target)
    for extra in STACK["configuration"]["copy"]:
        shutil.copytree(REPO / extra, app / "function" / extra,
                        ignore=shutil.ignore_patterns("__pycache__"))
    return app


@pytest.fixture(scope="module")
def python() -> Path:
    return venv("openfaas", "3.12", [*TEMPLATE_REQUIREMENTS, *requirements()]) / "bin" / "python"


@pytest.fixture(scope="module")
def app_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return image_layout(tmp_path_factory.mktemp("openfaas"))


@pytest.fixture
def serve(python: Path, app_dir: Path, free_port: Callable[..., int],
          tmp_path: Path, servers: List[Server]) -> Serve:
    def make(env: Optional[Dict[str, str]] = None) -> Server:
        port = free_port()
        # The image runs `python index.py` in /home/app with nothing else on the path.
        environment = {"UPSTREAM_PORT": str(port), "PYTHONPATH": "", **(env or {})}
        server = start("openfaas", [str(python), "index.py"], tmp_path, port,
                       env=environment, cwd=app_dir)
        servers.append(server)
        return server

    return make


def secret(tmp_path: Path, value: str) -> Dict[str, str]:
    """An OpenFaaS secret is a file (/var/openfaas/secrets/NAME); point the function at it."""
    path = tmp_path / "falco-responder-token"
    path.write_text(value + "\n")
    return {"FALCO_RESPONDER_TOKEN_FILE": str(path)}


def test_stack_file_builds_this_handler_with_the_core_and_the_secret() -> None:
    function = STACK["functions"]["falco-responder"]
    assert (STACK["version"], STACK["provider"]["name"]) == (1.0, "openfaas")
    assert function["lang"] == "python3-http"
    assert (REPO / function["handler"]).resolve() == ADAPTER
    assert STACK["configuration"]["copy"] == ["./function"]
    name = function["secrets"][0]
    assert function["environment"]["FALCO_RESPONDER_TOKEN_FILE"] == f"/var/openfaas/secrets/{name}"


def test_the_image_layout_imports_the_core_under_the_template_name(app_dir: Path) -> None:
    assert (app_dir / "function" / "handler.py").is_file()
    assert (app_dir / "function" / "function" / "runtime.py").is_file()
    assert not (app_dir / "function" / "runtime.py").exists()  # nothing flattened by hand


def test_contract(serve: Serve) -> None:
    server = serve()
    ran = contract.check_contract(server.url, PLAIN_JSON, token=False)
    assert {"wire/openfaas_gateway_direct.http", "json-too-large"} <= set(ran)


def test_contract_with_the_token_from_an_openfaas_secret(serve: Serve, tmp_path: Path) -> None:
    server = serve(secret(tmp_path, contract.TOKEN))
    assert contract.check_contract(server.url, PLAIN_JSON, token=True)


def test_reply_is_the_cores_json_with_its_content_type(serve: Serve) -> None:
    server = serve()
    reply = post(server.url, OPENFAAS_HEADERS, contract.wire_body_for("default", "alpine", TIME))
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    contract.would_terminate("default/alpine")(reply.json())


def test_503_passes_through_when_kubernetes_is_unreachable(
        serve: Serve, tmp_path: Path, free_port: Callable[..., int]) -> None:
    server = serve(unreachable_cluster(tmp_path, free_port()))
    reply = post(server.url, OPENFAAS_HEADERS, contract.wire_body_for("default", "alpine", TIME))
    assert reply.status == 503, (reply.body, server.log())
    assert reply.json()["error"]["type"] == "kubernetes_unavailable"


@pytest.mark.cluster
def test_falcosidekick_openfaas_output_kills_the_pod_end_to_end(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str],
        alert_time: Callable[[], str]) -> None:
    server = serve(deployed_env)
    contract.check_end_to_end(server.url, OPENFAAS_HEADERS, kube, alert_time)
