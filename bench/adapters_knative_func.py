"""Knative func (func-python, func's own scaffolding): our function against an empty one.

    .venv/bin/python -m bench.adapters_knative_func      (part of `make bench`)

Both are built the way func's host builder builds a function (``tests.testbed.knative_func``:
the archive's ``instanced-cloudevents`` scaffolding, ``pip install . --target lib``) and run
as its image runs them: ``python service/main.py`` (func-python's CloudEvent middleware on
hypercorn). They get the same request: Falcosidekick's binary CloudEvent
(../shared/fixtures/wire). Ours runs dry (no cluster), so the numbers are the adapter + core
cost, not Kubernetes latency.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from bench.compare import Contender, compare, report
from tests.function.wire import SHARED, parse_wire
from tests.testbed import knative_func

# A function as `func create -l python -t cloudevents` lays one out, answering at once.
EMPTY_PROJECT = """
[project]
name = "function"
version = "0.1.0"
dependencies = []

[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[tool.setuptools]
packages = ["function"]
"""
EMPTY = """
from cloudevents.core.v1.event import CloudEvent


class Empty:
    async def handle(self, scope, receive, send):
        await send.binary(CloudEvent(attributes={
            "type": "empty", "source": "empty", "id": "1", "specversion": "1.0"},
            data={"ok": True}))


def new():
    return Empty()
"""


def empty_function(root: Path) -> Path:
    (root / "function").mkdir(parents=True)
    (root / "pyproject.toml").write_text(EMPTY_PROJECT)
    (root / "function" / "__init__.py").write_text(EMPTY)
    return root


def main() -> int:
    request = parse_wire(SHARED / "wire" / "cloudevents_binary.http")
    env = {**os.environ, "FALCO_RESPONDER_CLUSTER": "off"}
    env.pop("FALCO_RESPONDER_TOKEN", None)
    ours = knative_func.build()
    with tempfile.TemporaryDirectory(prefix="bench-knative-") as tmp:
        contenders = []
        for label, root in (("empty function", empty_function(Path(tmp) / "empty")),
                            ("falco-responder", None)):
            build_dir = ours if root is None else knative_func.build(root)
            contenders.append(Contender(
                label, knative_func.command(build_dir), str(build_dir), request.headers,
                request.body, {**knative_func.environment(build_dir),
                               "LISTEN_ADDRESS": "127.0.0.1:{port}"}))
        rows = compare(contenders, env)
    report("Knative func (func's scaffolding, func-python on hypercorn), binary CloudEvent",
           rows, [("falco-responder", "empty function")], knative_func.interpreter(),
           python_env={**env, "PYTHONPATH": str(ours / "lib")})
    return 0


if __name__ == "__main__":
    sys.exit(main())
