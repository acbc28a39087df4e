"""The Kubeless python3.8 runtime: upstream ``stable/python/_kubeless.py``, unmodified, run as
its image runs it.

From ``../shared/peers/kubeless-python-runtime-*.tar.gz``: ``Dockerfile.3.8`` says what the
image is (its ``pip install`` line: bottle, cherrypy, wsgi-request-logger, prometheus_client
on Python 3.8; ``WORKDIR /``; ``_kubeless.py`` at ``/``; ``CMD ["python", "/_kubeless.py"]``;
``PYTHONUNBUFFERED=1``) and ``python.jsonnet`` what Kubeless adds (the ``installation``
phase ``pip install --prefix=$KUBELESS_INSTALL_VOLUME -r $KUBELESS_DEPS_FILE``, the
runtime's ``PYTHONPATH``). The server reads the function from the fixed path ``/kubeless``:
it runs in a private root (``tests.testbed.private_root``) where ``/kubeless`` is a folder
of the test's and ``/_kubeless.py`` the upstream file.

The tests run the pod the real controller specifies (``tests.testbed.kubeless``).
:func:`layout` and :func:`function_env` give the runtime the same without a cluster, for
``bench/adapters_kubeless.py``; ``tests/adapters/test_kubeless_deploy.py`` checks that the
env is what the controller sets.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import zipfile
from pathlib import Path
from typing import Any, Dict, List

import yaml

from tests.testbed import peers, private_root, python

PEER = "kubeless-python-runtime"
VERSION = "3.8"
RUNTIME = "python3.8"
PORT = 8080
MOUNT = "/kubeless"
SERVER = "/_kubeless.py"
#: The image's ENV (``Dockerfile.3.8``) that the server reads.
IMAGE_ENV = {"PYTHONUNBUFFERED": "1"}


def folder() -> Path:
    return peers.source_dir(PEER) / "stable" / "python"


def server_file() -> Path:
    """The upstream server, as the image has it at ``/_kubeless.py``."""
    return folder() / "_kubeless.py"


def image_requirements(version: str = VERSION) -> List[str]:
    """What ``Dockerfile.<version>`` installs for the server (its ``RUN pip install``)."""
    text = (folder() / f"Dockerfile.{version}").read_text(encoding="utf-8")
    match = re.search(r"^RUN pip install (.+)$", text, re.MULTILINE)
    if match is None:
        raise RuntimeError(f"no `RUN pip install` line in Dockerfile.{version}")
    return match.group(1).split()


def runtime_phase(phase: str, version: str = VERSION) -> Dict[str, Any]:
    """A phase (``installation``, ``runtime``) of ``python.jsonnet`` for ``version``: the
    command or env Kubeless uses for it (the file is plain JSON-like jsonnet)."""
    document = yaml.safe_load((folder() / "python.jsonnet").read_text(encoding="utf-8"))
    (entry,) = [v for v in document["versions"] if v["version"] == version]
    (image,) = [i for i in entry["images"] if i["phase"] == phase]
    return dict(image)


def image_env() -> Dict[str, str]:
    """The image's own environment (its Dockerfile's ENV), and the runtime phase's
    ``PYTHONPATH`` with the install volume at ``/kubeless``, as the kubelet expands it."""
    env = {str(k): str(v).replace("$(KUBELESS_INSTALL_VOLUME)", MOUNT)
           for k, v in dict(runtime_phase("runtime").get("env") or {}).items()}
    return {**IMAGE_ENV, **env}


def layout(target: Path, archive: Path, requirements: Path, python_3_8: str) -> Path:
    """``/kubeless`` as the controller's init containers leave it, without a cluster (for the
    bench): the zip unpacked (``unzip -o``), ``requirements.txt`` beside it, then the
    installation phase's ``pip install --prefix=/kubeless -r /kubeless/requirements.txt``
    run at that path."""
    target.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(archive) as unpacked:
        unpacked.extractall(target)
    shutil.copyfile(requirements, target / "requirements.txt")
    command = str(runtime_phase("installation")["command"]).replace(
        "$KUBELESS_INSTALL_VOLUME", MOUNT).replace("$KUBELESS_DEPS_FILE",
                                                   f"{MOUNT}/requirements.txt")
    pip = f"{Path(python_3_8).parent}:/usr/local/bin:/usr/bin:/bin"
    argv = private_root.wrap(["/bin/sh", "-c", command], target.parent / "install",
                             {MOUNT: target})
    done = subprocess.run(argv, capture_output=True, text=True, timeout=600,
                          env={"PATH": pip, "HOME": str(target.parent)})
    if done.returncode != 0:
        raise RuntimeError(f"`{command}` failed ({done.returncode}):\n"
                           f"{done.stdout[-2000:]}{done.stderr[-3000:]}")
    return target


def pip_python() -> str:
    """The python:3.8 image's interpreter, whose ``pip`` the installation phase runs: a bare
    venv of Python 3.8, so the ``pip`` beside it is that Python's whatever else is on PATH."""
    return str(python.venv("python-image", VERSION, []) / "bin" / "python")


def runtime_python() -> Path:
    """The runtime image's interpreter: Python 3.8 with :func:`image_requirements`."""
    return python.venv("kubeless-runtime", VERSION, image_requirements()) / "bin" / "python"


def function_env(module: str, handler: str, timeout: str = "180") -> Dict[str, str]:
    """What the controller sets on the runtime container for ``--handler module.handler``
    and no ``--memory`` (``tests/adapters/test_kubeless_deploy.py`` compares it with the
    Deployment the real controller makes)."""
    return {"FUNC_HANDLER": handler, "MOD_NAME": module, "FUNC_TIMEOUT": timeout,
            "FUNC_RUNTIME": RUNTIME, "FUNC_MEMORY_LIMIT": "0", "FUNC_PORT": str(PORT)}


def command(runtime_python: Path) -> List[str]:
    """The image's ``CMD ["python", "/_kubeless.py"]``, its python being ``runtime_python``
    (a Python 3.8 with :func:`image_requirements`)."""
    return [str(runtime_python), SERVER]


def files(function_dir: Path) -> Dict[str, Path]:
    return {MOUNT: function_dir, SERVER: server_file()}
