"""Trimmed provider assemblies: every resource the stacks import is in them, and little else."""

from __future__ import annotations

import ast
import io
import json
import tarfile
from pathlib import Path

from stacks import bindings

STACKS = Path(bindings.__file__).parent


def _provider_imports() -> dict[str, set[str]]:
    """package -> submodules imported anywhere in stacks/."""
    found: dict[str, set[str]] = {}
    for path in STACKS.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("cdktn_provider_"):
                package, _, submodule = node.module.partition(".")
                found.setdefault(package, set()).add(submodule)
    return found


def test_every_imported_provider_submodule_is_listed():
    imported = _provider_imports()
    assert imported and imported == {package: set(modules) for package, modules in bindings.SUBMODULES.items()}
    assert {p for packages in bindings.PACKAGES.values() for p in packages} == set(bindings.SUBMODULES)


def test_trimmed_assembly_holds_only_the_listed_submodules_and_their_dependencies(synthesized):
    assembly = bindings.PackageAssembly.find("cdktn_provider_aws")
    path = bindings.trimmed_tarball(assembly, bindings.SUBMODULES["cdktn_provider_aws"])  # built by the synth already
    with tarfile.open(path) as tar:
        manifest = json.load(io.BytesIO(tar.extractfile("package/.jsii").read()))
        index = tar.extractfile("package/lib/index.js").read().decode()
    namespaces = {t["namespace"].split(".")[0] for t in manifest["types"].values()}
    wanted = {assembly.fqn_by_module[m].split(".", 1)[1] for m in bindings.SUBMODULES["cdktn_provider_aws"]}
    assert wanted <= namespaces <= wanted | {"providerFunctions"}  # the provider requires its functions
    assert {k.split(".", 1)[1] for k in manifest["submodules"]} == namespaces
    assert all(f"exports.{ns} = " in index for ns in namespaces)
    assert path.stat().st_size < assembly.tarball.stat().st_size / 50


def test_a_trimmed_tarball_is_built_once_per_package_version(synthesized, monkeypatch):
    assembly = bindings.PackageAssembly.find("cdktn_provider_helm")
    first = bindings.trimmed_tarball(assembly, bindings.SUBMODULES["cdktn_provider_helm"])
    monkeypatch.setattr(bindings, "_trim", lambda *_: (_ for _ in ()).throw(AssertionError("rebuilt")))
    assert bindings.trimmed_tarball(assembly, bindings.SUBMODULES["cdktn_provider_helm"]) == first
