"""Run a program with files at fixed paths (``/kubeless``, ``/var/openfaas/secrets/NAME``,
``/var/run/secrets/kubernetes.io/serviceaccount``) that exist for it alone.

Images put files where the program insists on finding them; the machine must not get them.
The program runs in a mount namespace of its own (``unshare --mount --propagation private``:
nothing mounted there is seen outside) whose root is a fresh tmpfs holding:

- every entry of the machine's ``/``, bound in (``mount --rbind``; symlinks recreated), so
  the program sees the machine as it is and writes to ``/tmp`` land where they always do;
- down each fixed path, the folders on the way re-made in that tmpfs with the machine's
  entries bound into them, so a new name (``/kubeless``, ``/var/openfaas``) is created in the
  tmpfs, never in a folder of the machine;
- each fixed path bound from the test's own file or folder.

Then ``chroot`` into it and ``cd`` to the image's working directory. Only the files the
caller names differ from the machine; the machine's own root is never written. Needs root,
``unshare``, ``mount`` and ``chroot`` (util-linux, coreutils).
"""

from __future__ import annotations

import os
import shlex
import shutil
from pathlib import Path
from typing import Dict, List, Mapping, Sequence, Set


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"the {name} command is missing (util-linux / coreutils)")
    return path


def _inside(path: str) -> str:
    """``path`` with the machine's existing symlinks on the way resolved (``/var/run`` is
    ``/run``): a new name must be made where the program will look for it."""
    return os.path.realpath(path)


def _script(root: Path, files: Mapping[str, Path], cwd: str) -> List[str]:
    for target in files:
        # Checked before resolving: realpath would make a relative path absolute under cwd.
        if not os.path.isabs(target) or _inside(target) == "/":
            raise ValueError(f"a fixed path must be absolute and not / itself: {target!r}")
    targets = {_inside(target): source for target, source in files.items()}
    # Folders re-made in the tmpfs: every ancestor of a fixed path.
    remade: Set[str] = {"/"}
    for target in targets:
        parent = os.path.dirname(target)
        while parent not in remade:
            remade.add(parent)
            parent = os.path.dirname(parent)
    lines = ["set -eu", f"R={shlex.quote(str(root))}",
             'mount -t tmpfs -o mode=0755 private-root "$R"']

    def place(path: str) -> None:
        inner = '"$R"' + shlex.quote(path)
        if path in targets:
            source = targets[path]
            kind = "mkdir -p" if source.is_dir() else "touch"
            lines.extend([f"{kind} {inner}", f"mount --bind {shlex.quote(str(source))} {inner}"])
        elif path in remade:
            mode = oct(os.stat(path).st_mode & 0o7777)[2:] if os.path.isdir(path) else "755"
            if path != "/":
                lines.append(f"mkdir -m {mode} {inner}")
            children = set(os.listdir(path)) if os.path.isdir(path) else set()
            children |= {os.path.basename(t) for t in (*targets, *remade)
                         if t != "/" and os.path.dirname(t) == path}
            # The folder holding the new root first: its copy inside is then still empty.
            for child in sorted(children, key=lambda c: not str(root).startswith(f"/{c}/")):
                place(os.path.join(path, child))
        elif os.path.islink(path):
            lines.append(f"ln -s {shlex.quote(os.readlink(path))} {inner}")
        elif os.path.isdir(path):
            lines.extend([f"mkdir {inner}", f"mount --rbind {shlex.quote(path)} {inner}"])
        elif os.path.exists(path):
            lines.extend([f"touch {inner}", f"mount --bind {shlex.quote(path)} {inner}"])

    place("/")
    lines.append(f'exec {_tool("chroot")} "$R" /bin/sh -c \'cd "$0" && exec "$@"\' '
                 f'{shlex.quote(cwd)} "$@"')
    return lines


def wrap(argv: Sequence[str], workdir: Path, files: Mapping[str, Path],
         cwd: str = "/") -> List[str]:
    """``argv`` run with ``files`` (path seen by the program -> file or folder here) bound
    at their paths, in ``cwd``; the script doing it is kept in ``workdir/private-root.sh``."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "private-root"
    root.mkdir(exist_ok=True)
    script = workdir / "private-root.sh"
    script.write_text("\n".join(_script(root, dict(files), cwd)) + "\n", encoding="utf-8")
    return [_tool("unshare"), "--mount", "--propagation", "private", "/bin/sh", str(script),
            *argv]


def secret_files(folder: Path, data: Dict[str, str]) -> Path:
    """A folder with one file per key, as the kubelet writes a Secret or ConfigMap volume."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        (folder / key).write_text(value, encoding="utf-8")
    return folder
