"""Run a benchmark against the test bed's own etcd + kube-apiserver, in a temporary folder."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Callable

from tests.testbed.apiserver import ApiServer, start_apiserver


def with_apiserver(prefix: str, run: Callable[[ApiServer, Path], int]) -> int:
    with tempfile.TemporaryDirectory(prefix=prefix) as tmp:
        work = Path(tmp)
        print("starting etcd + kube-apiserver ...", flush=True)
        server = start_apiserver(work / "apiserver")
        try:
            return run(server, work)
        finally:
            server.stop()
