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

Then ``chroot`` into it, as the container's user when one is given (:class:`User`: the
folders on the way to what it must reach, such as an interpreter under ``/root``, are re-made
open to others), and ``cd`` to the image's working directory. Only the files the caller
names differ from the machine; the machine's own root is never written. Needs root,
``unshare``, ``mount`` and ``chroot`` (util-linux, coreutils).
"""

from __future__ import annotations

import os
import shlex
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Set, Tuple


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise RuntimeError(f"the {name} command is missing (util-linux / coreutils)")
    return path


def _inside(path: str) -> str:
    """``path`` with the machine's existing symlinks on the way resolved (``/var/run`` is
    ``/run``): a new name must be made where the program will look for it."""
    return os.path.realpath(path)


@dataclass(frozen=True)
class User:
    """Who the program runs as (a container's ``runAsUser``/``runAsGroup``, its pod's
    ``fsGroup`` among the supplementary ``groups``), and the folders of the machine it must
    reach though they are closed to others (``reachable``: an interpreter under ``/root``,
    which an image would have in ``/usr/local``)."""

    uid: int
    gid: int = 0
    groups: Tuple[int, ...] = ()
    reachable: Tuple[str, ...] = ()

    def chroot_options(self) -> List[str]:
        # Always named: left out, chroot would take the groups the machine's /etc/group
        # gives that uid, which differ from machine to machine.
        groups = dict.fromkeys((self.gid, *self.groups))
        return [f"--userspec={self.uid}:{self.gid}",
                "--groups=" + ",".join(str(g) for g in groups)]

    def closed_on_the_way(self) -> Set[str]:
        """The folders on the way to a reachable path (as given and resolved) that others
        may not pass through on this machine."""
        folders: Set[str] = set()
        for path in self.reachable:
            for place in {os.path.abspath(path), os.path.realpath(path)}:
                parent = os.path.dirname(place)
                while parent != "/":
                    if not os.stat(parent).st_mode & 0o001:
                        folders.add(parent)
                    parent = os.path.dirname(parent)
        return folders


def _script(root: Path, files: Mapping[str, Path], cwd: str,
            user: Optional[User] = None) -> List[str]:
    for target in files:
        # Checked before resolving: realpath would make a relative path absolute under cwd.
        if not os.path.isabs(target) or _inside(target) == "/":
            raise ValueError(f"a fixed path must be absolute and not / itself: {target!r}")
    targets = {_inside(target): source for target, source in files.items()}
    # Folders re-made in the tmpfs: every ancestor of a fixed path, and the folders closed
    # to others that the user must pass through (re-made open to them) with theirs.
    opened = user.closed_on_the_way() if user is not None else set()
    remade: Set[str] = {"/"}
    for inner_path in (*targets, *(os.path.join(folder, "") for folder in opened)):
        parent = os.path.dirname(inner_path)
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
            bits = os.stat(path).st_mode & 0o7777 if os.path.isdir(path) else 0o755
            mode = oct(bits | (0o011 if path in opened else 0))[2:]
            if path != "/":
                lines.append(f"mkdir -m {mode} {inner}")
            children = set(os.listdir(path)) if os.path.isdir(path) else set()
            children |= {os.path.basename(t) for t in (*targets, *remade)
                         if t != "/" and os.path.dirname(t) == path}
            # The folder holding the new root first: its copy inside is then still empty.
            for child in sorted(children, key=lambda c: not str(root).startswith(
                    os.path.join(path, c, ""))):
                place(os.path.join(path, child))
        elif os.path.islink(path):
            lines.append(f"ln -s {shlex.quote(os.readlink(path))} {inner}")
        elif os.path.isdir(path):
            lines.extend([f"mkdir {inner}", f"mount --rbind {shlex.quote(path)} {inner}"])
        elif os.path.exists(path):
            lines.extend([f"touch {inner}", f"mount --bind {shlex.quote(path)} {inner}"])

    place("/")
    identity = " ".join(user.chroot_options()) + " " if user is not None else ""
    lines.append(f'exec {_tool("chroot")} {identity}"$R" /bin/sh -c \'cd "$0" && exec "$@"\' '
                 f'{shlex.quote(cwd)} "$@"')
    return lines


def wrap(argv: Sequence[str], workdir: Path, files: Mapping[str, Path],
         cwd: str = "/", user: Optional[User] = None) -> List[str]:
    """``argv`` run with ``files`` (path seen by the program -> file or folder here) bound
    at their paths, in ``cwd``, as ``user`` (root when None); the script doing it is kept in
    ``workdir/private-root.sh``."""
    workdir.mkdir(parents=True, exist_ok=True)
    root = workdir / "private-root"
    root.mkdir(exist_ok=True)
    script = workdir / "private-root.sh"
    script.write_text("\n".join(_script(root, dict(files), cwd, user)) + "\n",
                      encoding="utf-8")
    return [_tool("unshare"), "--mount", "--propagation", "private", "/bin/sh", str(script),
            *argv]


def secret_files(folder: Path, data: Dict[str, str]) -> Path:
    """A folder with one file per key, as the kubelet writes a Secret or ConfigMap volume."""
    folder.mkdir(parents=True, exist_ok=True)
    for key, value in data.items():
        (folder / key).write_text(value, encoding="utf-8")
    return folder


def image_tmp(folder: Path) -> Path:
    """A ``/tmp`` of the program's own (an image's, not the machine's: two tests' programs
    must not share one), open to every user as an image's is."""
    folder.mkdir(parents=True, exist_ok=True)
    folder.chmod(0o1777)
    return folder
