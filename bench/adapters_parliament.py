"""Knative func legacy runtime (parliament-functions 0.1.0): our adapter against an empty
function, same server.

    .venv/bin/python -m bench.adapters_parliament

Both are served by parliament's own ``__main__`` (Flask on waitress, 4 threads) in the same
venv, only the bind address moved to a free loopback port as in the tests, and get the
same requests: Falcosidekick's binary CloudEvent and its webhook POST
(../shared/fixtures/wire). Both answer a CloudEvent with a binary CloudEvent. Ours runs dry
(no cluster). Loopback only, bounded request counts.
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

from bench.compare import Contender, compare, report
from tests.adapters import runtimes
from tests.adapters.test_parliament import ADAPTER, LAUNCH, requirements
from tests.function.wire import SHARED, parse_wire
from tests.testbed.python import venv

EMPTY = """
from cloudevents.http import CloudEvent

def main(context):
    if context.cloud_event is not None:
        return CloudEvent({"type": "empty", "source": "empty",
                           "datacontenttype": "application/json"}, {"ok": True})
    return {"ok": True}, 200
"""


def main() -> int:
    folder = venv("parliament", "3.11", requirements())
    python = str(folder / "bin" / "python")
    event = parse_wire(SHARED / "wire" / "cloudevents_binary.http")
    webhook = parse_wire(SHARED / "wire" / "webhook_post.http")
    env = {**os.environ, "PYTHONPATH": str(runtimes.REPO), "FALCO_RESPONDER_CLUSTER": "off"}
    env.pop("FALCO_RESPONDER_TOKEN", None)
    with tempfile.TemporaryDirectory(prefix="bench-parliament-") as tmp:
        (Path(tmp) / "func.py").write_text(EMPTY)
        contenders = []
        for kind, request in (("cloudevent", event), ("webhook", webhook)):
            for label, where in ((f"empty {kind}", tmp),
                                 (f"falco-responder {kind}", str(ADAPTER))):
                argv = [python, "-c", LAUNCH, "{port}", "."]
                contenders.append(Contender(label, argv, where, request.headers,
                                            request.body))
        rows = compare(contenders, env)
    report("parliament 0.1.0 (Flask on waitress)", rows,
           [("falco-responder cloudevent", "empty cloudevent"),
            ("falco-responder webhook", "empty webhook")], python)
    return 0


if __name__ == "__main__":
    sys.exit(main())
