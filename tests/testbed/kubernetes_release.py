"""The source tree of an older Kubernetes release, assembled the way its repository has it,
with the OpenAPI code its ``make`` generates, so that ``go build ./cmd/kube-apiserver
./cmd/kube-controller-manager`` works.

Kubernetes 1.21 is the last release serving ``apiextensions.k8s.io/v1beta1``, which
Kubeless's function-controller reads its CRD through. Its ``k8s.io/kubernetes`` module
carries neither the staging modules (``./staging/src/k8s.io/*``, its go.mod's replaces) nor
``pkg/generated/openapi/zz_generated.openapi.go``, which that release generated at build time
(``build/root/Makefile.generated_files``, target ``gen_openapi``). So:

1. the module is copied out of the module cache and each staging module is put back at
   ``staging/src/k8s.io/<name>`` from its published ``v0.<minor>.<patch>`` (the two sample
   modules the proxy refuses are not built from);
2. ``openapi-gen`` is built from the tree's own ``k8s.io/kube-openapi`` and run over every
   package tagged ``+k8s:openapi-gen=``, as that Makefile's ``KUBE`` target does; its API-rule
   report must equal the release's ``api/api-rules/violation_exceptions.list``, as there;
3. one dependency pair is moved to the patch releases made for newer Go (below);
4. the build then runs in the tree as the main module.
"""

from __future__ import annotations

import os
import re
import shutil
import stat
from pathlib import Path
from typing import Iterator, List

from tests.testbed.build import BuildError, download_modules, downloaded_dir, log, run_go
from tests.testbed.peers import Peer

MODULE = "k8s.io/kubernetes"
OPENAPI_PACKAGE = "pkg/generated/openapi"
OPENAPI_TAG = "+k8s:openapi-gen="
# The KUBE target filters these out; they have OpenAPI targets of their own.
NOT_IN_KUBE_OPENAPI = ("k8s.io/code-generator/", "k8s.io/sample-apiserver/")
# Staging modules the proxy refuses at the release's version; no command built here uses them.
REFUSED_SAMPLES = ("k8s.io/sample-cli-plugin", "k8s.io/sample-controller")
# The release was built with Go 1.16, which this machine cannot install (Go 1.19 is the
# oldest packaged). Built with a newer Go, its reflect2 1.0.1 (under json-iterator 1.1.10)
# panics iterating maps (Go 1.18 changed map internals): every custom resource write fails
# with "invalid memory address" in objectmeta.GetObjectMeta. reflect2 1.0.2 and
# json-iterator 1.1.12 are the releases made for that, the ones later Kubernetes moved to.
NEWER_GO_FIXES = {"github.com/modern-go/reflect2": "v1.0.2",
                  "github.com/json-iterator/go": "v1.1.12"}


def _writable_copy(source: Path, target: Path) -> None:
    shutil.copytree(source, target, symlinks=True)
    for folder, _, names in os.walk(target):
        os.chmod(folder, os.stat(folder).st_mode | stat.S_IWUSR)
        for name in names:
            path = Path(folder, name)
            if not path.is_symlink():
                os.chmod(path, path.stat().st_mode | stat.S_IWUSR)


def _staging_modules(tree: Path) -> List[str]:
    text = (tree / "go.mod").read_text(encoding="utf-8")
    return re.findall(r"^\s*(k8s\.io/[\w.-]+) => \./staging/src/\1\s*$", text, re.MULTILINE)


def _go_dirs(tree: Path) -> Iterator[Path]:
    """Folders with Go files, pruned as ``hack/make-rules/helpers/cache_go_dirs.sh`` does."""
    for folder, names, files in os.walk(tree):
        names[:] = [n for n in names if not n.startswith(("_", "."))
                    and not (folder == str(tree) and n == "vendor")]
        if any(f.endswith(".go") for f in files):
            yield Path(folder)


def _tagged_packages(tree: Path) -> List[str]:
    """Import paths of the packages with an ``+k8s:openapi-gen=`` tag, staging ones under
    their own module path."""
    staging = tree / "staging" / "src"
    packages = []
    for folder in _go_dirs(tree):
        if not any(OPENAPI_TAG in path.read_text(encoding="utf-8", errors="replace")
                   for path in folder.glob("*.go")):
            continue
        package = (str(folder.relative_to(staging)) if staging in folder.parents
                   else f"{MODULE}/{folder.relative_to(tree)}")
        if not package.startswith(NOT_IN_KUBE_OPENAPI):
            packages.append(package)
    return sorted(packages)


def _generate_openapi(go: str, tree: Path, log_file: Path, verbose: bool) -> None:
    work = tree / "_output"
    work.mkdir()
    generator = work / "openapi-gen"
    run_go([go, "build", "-mod=mod", "-o", str(generator), "k8s.io/kube-openapi/cmd/openapi-gen"],
           tree, "go build openapi-gen (the release's own kube-openapi)", log_file, verbose)
    packages = _tagged_packages(tree)
    report = work / "KUBE_violations.report"
    run_go([str(generator), "--logtostderr", "-i", ",".join(packages),
            "-p", f"{MODULE}/{OPENAPI_PACKAGE}", "-O", "zz_generated.openapi",
            "-h", "hack/boilerplate/boilerplate.generatego.txt", "-r", str(report),
            "-o", str(work / "gen")],
           tree, f"openapi-gen over {len(packages)} tagged packages", log_file, verbose)
    known = tree / "api" / "api-rules" / "violation_exceptions.list"
    if report.read_text(encoding="utf-8") != known.read_text(encoding="utf-8"):
        raise BuildError(f"openapi-gen's API rule report {report} differs from {known}: the "
                         f"generated code is not what the release's make would produce")
    shutil.copyfile(work / "gen" / MODULE / OPENAPI_PACKAGE / "zz_generated.openapi.go",
                    tree / OPENAPI_PACKAGE / "zz_generated.openapi.go")
    shutil.rmtree(work)


def assemble(peer: Peer, go: str, staging: Path, log_file: Path, verbose: bool) -> Path:
    """The release's tree under ``staging``, ready for ``go build``; returns it."""
    tree = staging / "tree"
    _writable_copy(downloaded_dir(go, f"{MODULE}@v{peer.version}", staging, log_file), tree)
    # The module has only vendor/modules.txt: with it, go would insist on -mod=vendor.
    shutil.rmtree(tree / "vendor", ignore_errors=True)
    version = "v0." + peer.version.split(".", 1)[1]
    modules = _staging_modules(tree)
    answers = download_modules(go, [f"{m}@{version}" for m in modules], staging, log_file)
    for module in modules:
        answer = answers.get(module, {})
        if "Dir" in answer:
            _writable_copy(Path(answer["Dir"]), tree / "staging" / "src" / module)
        elif module in REFUSED_SAMPLES:
            log(f"{peer.name}: {module}@{version} refused by the proxy, as known; "
                f"not used by {', '.join(b for b, _ in peer.binaries)}")
        else:
            raise BuildError(f"staging module {module}@{version} could not be downloaded: "
                             f"{answer.get('Error', 'no answer from go mod download')}")
    _generate_openapi(go, tree, log_file, verbose)
    run_go([go, "mod", "edit", *(f"-replace={m}={m}@{v}" for m, v in NEWER_GO_FIXES.items())],
           tree, "go mod edit (dependencies fixed for newer Go)", log_file, verbose)
    # Without a version, download resolves the replacement and records its go.sum lines.
    run_go([go, "mod", "download", *NEWER_GO_FIXES], tree, "go mod download (those fixes)",
           log_file, verbose)
    return tree
