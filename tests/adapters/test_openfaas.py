"""OpenFaaS python3-http: ``adapters/openfaas`` built by the real ``faas-cli build
--shrinkwrap`` from ``stack.yml`` with the real template, the image realised as its
Dockerfile builds it, served behind the real of-watchdog (``mode=http``) with the
template's own ``index.py`` as its ``fprocess`` (``tests.testbed.openfaas``), each on a
network host named ``gateway.openfaas``, the secret at ``/var/openfaas/secrets/NAME``."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import pytest

from tests.adapters import contract
from tests.adapters.contract import (
    JSON,
    Expectations,
    post,
    unreachable_cluster,
    wire_headers,
)
from tests.adapters.metrics_scrape import alert_then_scrape
from tests.adapters.runtimes import REPO, Server
from tests.testbed import openfaas, procs
from tests.testbed.kube import Kube
from tests.testbed.kubeconfig import self_contained
from tests.testbed.netns import Network
from tests.testbed.python import venv
from tests.testbed.sidekick import Sidekick

ADAPTER = REPO / "adapters" / "openfaas"
FUNCTION = "falco-responder"
STACK: Dict[str, Any] = openfaas.stack()
SPEC: Dict[str, Any] = STACK["functions"][FUNCTION]
SECRET = SPEC["secrets"][0]
#: Where Falcosidekick's openfaas output (and the README's webhook address) sends alerts.
GATEWAY = "gateway.openfaas"
GATEWAY_PATH = f"/function/{FUNCTION}.openfaas-fn"
PLAIN_JSON = Expectations(kinds=frozenset({JSON}))
OPENFAAS_HEADERS = wire_headers("openfaas_gateway_direct.http")  # Falcosidekick's output
TIME = "2024-04-03T11:36:27.670410771Z"

Serve = Callable[..., Server]


@pytest.fixture(scope="module")
def image(tmp_path_factory: pytest.TempPathFactory) -> openfaas.Image:
    """The image ``faas-cli up`` would build, realised: from faas-cli's own build context."""
    root = tmp_path_factory.mktemp("openfaas")
    context = openfaas.shrinkwrap(copy_to=root / "context")
    return openfaas.realise(context, root)


@pytest.fixture(scope="module")
def python_bin(image: openfaas.Image) -> Path:
    return venv("openfaas", "3.12", image.requirements) / "bin"


def stack_env(token: bool) -> Dict[str, str]:
    """stack.yml's environment; without the token, as the README says for the openfaas
    output: no FALCO_RESPONDER_TOKEN_FILE."""
    env = {k: str(v) for k, v in SPEC["environment"].items()}
    if not token:
        env.pop("FALCO_RESPONDER_TOKEN_FILE")
    return env


@pytest.fixture
def serve(image: openfaas.Image, python_bin: Path, network: Callable[[], Network],
          tmp_path: Path, servers: List[Server]) -> Serve:
    def make(env: Optional[Dict[str, str]] = None, token: Optional[str] = None,
             apiserver_port: Optional[int] = None, kubeconfig_as_secret: bool = True
             ) -> Server:
        workdir = tmp_path / f"openfaas-{len(servers)}"
        workdir.mkdir()
        host = network().host("function", [GATEWAY])
        if apiserver_port is not None:
            host.reach_loopback(apiserver_port)
        secrets = {}
        if token is not None:
            secrets[SECRET] = workdir / SECRET
            secrets[SECRET].write_text(token + "\n")
        environment = {**openfaas.environment(image, python_bin, stack_env(token is not None)),
                       "FALCO_RESPONDER_CLUSTER": "off", **(env or {})}
        if "KUBECONFIG" in environment and kubeconfig_as_secret:
            # The function runs as the image's user `app`: its kubeconfig comes as a secret.
            secrets["kubeconfig"] = self_contained(Path(environment["KUBECONFIG"]),
                                                   workdir / "kubeconfig")
            environment["KUBECONFIG"] = f"{openfaas.SECRETS}/kubeconfig"
        process = openfaas.start(workdir, host, image, environment, secrets)
        server = Server("openfaas", f"http://{host.ip}:{openfaas.PORT}", process, host)
        servers.append(server)
        return server

    return make


def test_stack_file_builds_this_handler_with_the_core_and_the_secret() -> None:
    assert (STACK["version"], STACK["provider"]["name"]) == (1.0, "openfaas")
    assert SPEC["lang"] == "python3-http"
    assert (REPO / SPEC["handler"]).resolve() == ADAPTER
    assert STACK["configuration"]["copy"] == ["./function"]
    assert SPEC["environment"]["FALCO_RESPONDER_TOKEN_FILE"] == f"{openfaas.SECRETS}/{SECRET}"


def test_faas_cli_lays_out_the_core_under_the_template_package(image: openfaas.Image) -> None:
    app = image.home_app
    assert (app / "index.py").read_text() == (
        openfaas.peers.source_dir(openfaas.TEMPLATE_PEER) / "template" / "python3-http"
        / "index.py").read_text()  # the template's own server, unmodified
    assert (app / "function" / "handler.py").read_bytes() == (ADAPTER / "handler.py").read_bytes()
    assert (app / "function" / "function" / "runtime.py").is_file()
    assert not (app / "function" / "runtime.py").exists()  # nothing flattened
    assert image.env["mode"] == "http" and image.env["fprocess"] == "python index.py"


def test_the_watchdog_and_the_template_run_as_the_images_user_app(serve: Serve) -> None:
    server = serve()
    (template,) = procs.children(server.process.pid)  # fprocess: python index.py
    uid, gid = (str(i) for i in openfaas.APP)
    app = {"Uid": [uid] * 4, "Gid": [gid] * 4, "Groups": [gid]}
    assert procs.ids(server.process.pid) == procs.ids(template) == app
    with server.reach():
        reply = post(server.url, OPENFAAS_HEADERS, contract.wire_body_for("default", "a", TIME))
    assert reply.status == 200, (reply.body, server.log())


def test_a_kubeconfig_secret_never_created_is_503_not_a_dry_run(serve: Serve) -> None:
    """KUBECONFIG names a secret's file, and no such secret was created: the function
    refuses to start instead of deciding in a dry run, and says why through the watchdog."""
    missing = f"{openfaas.SECRETS}/kubeconfig"
    server = serve({"KUBECONFIG": missing, "FALCO_RESPONDER_CLUSTER": "auto"},
                   kubeconfig_as_secret=False)
    with server.reach():
        reply = post(server.url, OPENFAAS_HEADERS, contract.wire_body_for("default", "a", TIME))
    assert reply.status == 503, reply.body
    assert reply.json()["error"]["message"] == (
        f"not ready: cannot use the kubeconfig {missing} (KUBECONFIG): no such file")
    assert "actions" not in reply.json()


def test_contract(serve: Serve) -> None:
    server = serve()
    with server.reach():
        ran = contract.check_contract(server.url, PLAIN_JSON, token=False)
    assert {"wire/openfaas_gateway_direct.http", "json-too-large"} <= set(ran)


def test_contract_with_the_token_from_the_openfaas_secret(serve: Serve) -> None:
    server = serve(token=contract.TOKEN)
    with server.reach():
        assert contract.check_contract(server.url, PLAIN_JSON, token=True)


def test_reply_is_the_cores_json_through_the_watchdog(serve: Serve) -> None:
    server = serve()
    with server.reach():
        reply = post(server.url + GATEWAY_PATH, OPENFAAS_HEADERS,
                     contract.wire_body_for("default", "alpine", TIME))
    assert reply.status == 200 and reply.headers["content-type"] == "application/json"
    assert "x-duration-seconds" in reply.headers  # of-watchdog's own header: it was there
    contract.would_terminate("default/alpine")(reply.json())


def test_503_passes_through_when_kubernetes_is_unreachable(
        serve: Serve, tmp_path: Path, free_port: Callable[..., int]) -> None:
    server = serve(unreachable_cluster(tmp_path, free_port()))
    with server.reach():
        reply = post(server.url, OPENFAAS_HEADERS,
                     contract.wire_body_for("default", "alpine", TIME))
    assert reply.status == 503, (reply.body, server.log())
    assert reply.json()["error"]["type"] == "kubernetes_unavailable"


@pytest.mark.cluster
def test_end_to_end_through_the_watchdog(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str],
        alert_time: Callable[[], str]) -> None:
    server = serve(deployed_env, apiserver_port=contract.apiserver_port(kube))
    with server.reach():
        contract.check_end_to_end(server.url, OPENFAAS_HEADERS, kube, alert_time)


@pytest.mark.cluster
def test_falcosidekick_openfaas_output_kills_the_pod(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str], alert_time: Callable[[], str],
        falcosidekick: Callable[..., Sidekick]) -> None:
    server = serve(deployed_env, apiserver_port=contract.apiserver_port(kube))
    assert server.host is not None
    sidekick = falcosidekick(
        {"openfaas": {"functionname": FUNCTION, "functionnamespace": "openfaas-fn"}},
        host=server.host.network.host("falcosidekick"))
    contract.check_falcosidekick_chain(sidekick, kube, alert_time)


def webhook(token: str) -> Dict[str, Any]:
    """deploy/falcosidekick/values-webhook.yaml's output, as Falcosidekick's config."""
    return {"webhook": {"address": f"http://{GATEWAY}:{openfaas.PORT}{GATEWAY_PATH}",
                        "customheaders": {"X-Falco-Token": token}}}


@pytest.mark.cluster
def test_falcosidekick_webhook_output_with_the_token_kills_the_pod(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str], alert_time: Callable[[], str],
        falcosidekick: Callable[..., Sidekick]) -> None:
    server = serve(deployed_env, token=contract.TOKEN, apiserver_port=contract.apiserver_port(kube))
    assert server.host is not None
    sidekick = falcosidekick(webhook(contract.TOKEN),
                             host=server.host.network.host("falcosidekick"))
    contract.check_falcosidekick_chain(sidekick, kube, alert_time)


@pytest.mark.cluster
def test_falcosidekick_webhook_output_with_a_wrong_token_is_401_and_the_pod_stays(
        serve: Serve, kube: Kube, deployed_env: Dict[str, str], alert_time: Callable[[], str],
        falcosidekick: Callable[..., Sidekick]) -> None:
    server = serve(deployed_env, token=contract.TOKEN, apiserver_port=contract.apiserver_port(kube))
    assert server.host is not None
    sidekick = falcosidekick(webhook("not-the-token"),
                             host=server.host.network.host("falcosidekick"))
    contract.check_falcosidekick_refused(sidekick, kube, alert_time, 401)


def test_get_metrics_through_the_watchdog(serve: Serve) -> None:
    """The template routes every path to the handler, which answers GET /metrics itself."""
    server = serve()
    with server.reach():
        alert_then_scrape(server.url + "/", server.url + "/metrics")
