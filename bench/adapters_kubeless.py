"""Kubeless python3.8: our function against an empty one, on the upstream runtime.

    .venv/bin/python -m bench.adapters_kubeless      (part of `make bench`)

Both are served by the upstream ``_kubeless.py`` (``tests.testbed.kubeless_runtime``:
bottle 0.12 + cherrypy, one forkserver child per request) on the image's Python 3.8, each in
a private root whose ``/kubeless`` is its function (ours laid out as the controller's init
containers lay it out), each on a network host of its own. They get the same request:
Falcosidekick's kubeless output (../shared/fixtures/wire/kubeless_direct.http). Ours runs dry
(no cluster). Only the benchmark's own hosts are sent to, with bounded request counts.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from adapters.kubeless.bundle import bundle
from bench.compare import Contender, compare, report
from tests.adapters.test_kubeless import ADAPTER
from tests.function.wire import SHARED, parse_wire
from tests.testbed import kubeless_runtime, private_root
from tests.testbed.netns import create_network

REQUESTS = 600  # every request forks a child: a few hundred per second at most
EMPTY = "def handler(event, context):\n    return 'OK'\n"
# An empty function whose process holds what ours imports: what forking that costs.
HEAVY = "import kubernetes\n\n\ndef handler(event, context):\n    return 'OK'\n"


def main() -> int:
    python = kubeless_runtime.runtime_python()
    request = parse_wire(SHARED / "wire" / "kubeless_direct.http")
    with tempfile.TemporaryDirectory(prefix="bench-kubeless-") as tmp:
        empty_dir = Path(tmp) / "empty"
        empty_dir.mkdir()
        (empty_dir / "empty.py").write_text(EMPTY)
        ours_dir = kubeless_runtime.layout(Path(tmp) / "ours" / "kubeless",
                                           bundle(Path(tmp) / "f.zip"),
                                           ADAPTER / "requirements.txt",
                                           kubeless_runtime.pip_python())
        (ours_dir / "heavy.py").write_text(HEAVY)
        network = create_network(Path(tmp) / "network")
        try:
            contenders = []
            for label, folder, module in (("empty function", empty_dir, "empty"),
                                          ("empty importing kubernetes", ours_dir, "heavy"),
                                          ("falco-responder", ours_dir, "handler")):
                host = network.host(module)
                argv = host.exec_argv(private_root.wrap(
                    kubeless_runtime.command(python), Path(tmp) / f"{module}-run",
                    kubeless_runtime.files(folder)))
                env = {"PATH": "/usr/local/bin:/usr/bin:/bin", **kubeless_runtime.image_env(),
                       **kubeless_runtime.function_env(module, "handler"),
                       "FALCO_RESPONDER_STATE_FILE": f"{tmp}/guards.json"}
                contenders.append(Contender(label, argv, tmp, request.headers, request.body,
                                            env, host=host,
                                            fixed_port=kubeless_runtime.PORT))
            rows = compare(contenders, {"FALCO_RESPONDER_CLUSTER": "off"}, requests=REQUESTS)
        finally:
            network.delete()
        report("Kubeless python3.8, upstream _kubeless.py (bottle + cherrypy, forkserver child "
               "per request), kubeless output", rows, [("falco-responder", "empty function"),
                       ("falco-responder", "empty importing kubernetes")],
               str(python), REQUESTS, python_env={
                   "PYTHONPATH": f"{ours_dir}/lib/python3.8/site-packages:{ours_dir}"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
