"""An OpenFaaS function as ``faas-cli up`` would ship it, served behind the real of-watchdog.

- :func:`shrinkwrap`: the real ``python3-http`` template (``../shared/peers``) put into
  ``./template/`` as ``faas-cli template store pull python3-http`` does, then the real
  ``faas-cli build --shrinkwrap -f STACK`` from the repository root: ``./build/<function>/``
  is the exact Docker build context ``faas-cli up`` would build.
- :func:`realise`: that context laid out as its ``Dockerfile`` builds the image: ``index.py``
  and ``requirements.txt`` in ``/home/app``, an empty ``function/__init__.py`` overlaid with
  the context's ``function/``, a virtualenv with the template's then the function's
  requirements (the image's ``python``), and the Dockerfile's ``ENV`` lines (``fprocess``,
  ``mode=http``, ``upstream_url``, ...) with ``stack.yml``'s environment on top.
- :func:`start`: the built ``fwatchdog`` (the image's ``CMD``) on a network host, in
  ``/home/app``, as the image's ``USER app``, with ``/home/app`` (``app``'s, as the
  Dockerfile's ``chown`` and ``COPY --chown`` leave it) and each secret at
  ``/var/openfaas/secrets/NAME`` in a private root (``tests.testbed.private_root``): the
  watchdog listens on 8080 and starts the template's ``index.py`` (Flask + waitress on
  127.0.0.1:5000) as its ``fprocess``.

Not run: the OpenFaaS gateway and faas-netes. Falcosidekick's openfaas output posts to
``http://gateway.openfaas:8080/function/NAME.NAMESPACE``; the test bed gives that name to the
function's own host, so the watchdog receives the gateway's path (the template routes every
path to the handler) where the gateway would have proxied the request to it as ``/``.
"""

from __future__ import annotations

import fcntl
import filecmp
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

import yaml

from tests.testbed import peers, private_root, procs
from tests.testbed.netns import Host

REPO = peers.REPO
STACK = REPO / "adapters" / "openfaas" / "stack.yml"
TEMPLATE_PEER = "openfaas-python3-http-template"
PORT = 8080
UPSTREAM_PORT = 5000
SECRETS = "/var/openfaas/secrets"
HOME_APP = "/home/app"
#: The image's ``USER app`` (uid, gid): a system user and group made by alpine's ``adduser -S``
#: and ``addgroup -S``; what matters is that it is not root, the numbers are the test bed's.
APP = (100, 101)


def stack(path: Path = STACK) -> Dict[str, Any]:
    document: Dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
    return document


def pull_template(lang: str, root: Path = REPO) -> Path:
    """``./template/<lang>`` as ``faas-cli template store pull`` leaves it (replaced when it
    differs from the pinned template)."""
    source = peers.source_dir(TEMPLATE_PEER) / "template" / lang
    target = root / "template" / lang
    if target.is_dir() and _same_tree(source, target):
        return target
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(source, target)
    return target


def _same_tree(a: Path, b: Path) -> bool:
    names = sorted(p.relative_to(a) for p in a.rglob("*"))
    return names == sorted(p.relative_to(b) for p in b.rglob("*")) and all(
        filecmp.cmp(a / n, b / n, shallow=False) for n in names if (a / n).is_file())


def shrinkwrap(stack_file: Path = STACK, function: str = "falco-responder",
               copy_to: Optional[Path] = None) -> Path:
    """Run ``faas-cli build --shrinkwrap`` from the repository root; returns the context
    (copied to ``copy_to`` when given: the next run rewrites ``./build``)."""
    lang = stack(stack_file)["functions"][function]["lang"]
    (REPO / "build").mkdir(exist_ok=True)
    with open(REPO / "build" / ".faas-cli.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pull_template(lang)
        done = subprocess.run(
            [str(peers.binary("faas-cli")), "build", "--shrinkwrap", "-f",
             str(stack_file.relative_to(REPO)), "--filter", function],
            cwd=str(REPO), capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"faas-cli build --shrinkwrap failed ({done.returncode}):\n"
                               f"{done.stdout[-2000:]}{done.stderr[-2000:]}")
        context = REPO / "build" / function
        if copy_to is None:
            return context
        shutil.copytree(context, copy_to, ignore=shutil.ignore_patterns("__pycache__"))
        return copy_to


@dataclass(frozen=True)
class Image:
    """A realised image: ``home_app`` is its ``/home/app``; ``env`` its ENV lines."""

    home_app: Path
    env: Dict[str, str]
    requirements: List[str]


def dockerfile_env(dockerfile: Path) -> Dict[str, str]:
    """Every ``ENV`` the Dockerfile sets (``KEY=value`` and ``KEY value`` forms), in order;
    ``$PATH`` is left to the caller."""
    env: Dict[str, str] = {}
    text = dockerfile.read_text(encoding="utf-8").replace("\\\n", " ")
    for line in text.splitlines():
        match = re.match(r"\s*ENV\s+(.*)", line)
        if not match:
            continue
        body = match.group(1).strip()
        pairs = re.findall(r'(\w+)=("[^"]*"|\S+)', body)
        if not pairs and " " in body:
            key, value = body.split(None, 1)
            pairs = [(key, value)]
        env.update({key: value.strip('"') for key, value in pairs})
    return env


def _requirement_lines(path: Path) -> List[str]:
    lines = path.read_text(encoding="utf-8").splitlines() if path.is_file() else []
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]


def realise(context: Path, target: Path) -> Image:
    """``/home/app`` as the context's Dockerfile builds it (the ``ship`` stage)."""
    app = target / "home-app"
    app.mkdir(parents=True)
    for name in ("index.py", "requirements.txt"):  # COPY index.py / requirements.txt .
        shutil.copyfile(context / name, app / name)
    (app / "function").mkdir()  # RUN mkdir -p function && touch ./function/__init__.py
    (app / "function" / "__init__.py").write_text("")
    shutil.copytree(context / "function", app / "function", dirs_exist_ok=True,
                    ignore=shutil.ignore_patterns("__pycache__"))  # COPY function/ .
    requirements = (_requirement_lines(context / "requirements.txt")
                    + _requirement_lines(context / "function" / "requirements.txt"))
    # chown app /home/app; COPY --chown=app:app ...
    for folder, _, names in os.walk(app):
        os.chown(folder, *APP)
        for name in names:
            os.chown(os.path.join(folder, name), *APP)
    return Image(app, dockerfile_env(context / "Dockerfile"), requirements)


def environment(image: Image, python_bin: Path, stack_env: Mapping[str, str]) -> Dict[str, str]:
    """The container's environment: the image's ENV, then the function's from stack.yml."""
    env = {k: v for k, v in image.env.items() if k != "PATH"}
    # The image's PATH: its python first (here: the virtualenv's), then the system's.
    env["PATH"] = f"{python_bin}:/usr/local/bin:/usr/bin:/bin"
    env.update({"HOME": HOME_APP, "HOSTNAME": "falco-responder", **stack_env})
    return env


def watchdog_argv(workdir: Path, image: Image, env: Mapping[str, str],
                  secrets: Optional[Mapping[str, Path]] = None) -> List[str]:
    """``fwatchdog`` (the image's ``CMD``) in ``/home/app`` as the image's user ``app``, in a
    private root with ``/home/app``, each secret at ``/var/openfaas/secrets/NAME`` and a
    ``/tmp`` of its own (the watchdog's lock file goes there) open to all as an image's is."""
    files = {HOME_APP: image.home_app, "/tmp": private_root.image_tmp(workdir / "tmp"),
             **{f"{SECRETS}/{name}": path for name, path in (secrets or {}).items()}}
    watchdog = str(peers.binary("fwatchdog"))
    python = shutil.which("python", path=env.get("PATH"))
    if python is None:
        raise RuntimeError(f"no python on the image's PATH: {env.get('PATH')}")
    user = private_root.User(*APP, reachable=(watchdog, python))
    return private_root.wrap([watchdog], workdir, files, cwd=HOME_APP, user=user)


def start(workdir: Path, host: Host, image: Image, env: Mapping[str, str],
          secrets: Optional[Mapping[str, Path]] = None, timeout: float = 60.0) -> procs.Process:
    """``fwatchdog`` on ``host`` (port 8080), the function behind it; returns once both the
    watchdog and the template's server accept connections."""
    argv = watchdog_argv(workdir, image, env, secrets)
    process = procs.start("fwatchdog", host.exec_argv(argv), workdir / "fwatchdog.log",
                          env=dict(env))
    port = int(env.get("port", PORT))
    procs.wait_until(lambda: host.connectable(port, host.ip)
                     and host.connectable(UPSTREAM_PORT), timeout,
                     "of-watchdog and the template's server listening", process, interval=0.1)
    return process
