"""Load into the jsii kernel only the provider resources the stacks use.

A prebuilt provider package (`cdktn_provider_aws`, ...) ships one jsii assembly for
every resource of its provider: AWS's is a 46 MB tarball holding a 155 MB type
manifest and 2,400 JavaScript modules. Importing any one resource class makes the
kernel unpack, parse and `require` all of it (about 4 s and 770 MB for AWS, 14 s and
2.15 GB for the five provider packages of a hybrid fleet), which is most of a synth.

So before a construct imports its resource classes, `load(package)` hands the kernel a
*trimmed* copy of the package's assembly: the same name and version, holding only the
submodules listed in `SUBMODULES` (and what they require). The kernel treats a second
load of an already-loaded name and version as a look-up, so the package's own import
of the full tarball becomes a no-op. The trimmed tarball is built once per package
version and kept in the user's cache directory.

A resource class whose submodule is missing from `SUBMODULES` fails at synth with the
kernel's "type not found"; `tests/stacks/test_bindings.py` checks the list against the
imports in `stacks/`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import json
import logging
import os
import re
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jsii

logger = logging.getLogger(__name__)

# Every provider submodule a construct imports, per package (Python names).
SUBMODULES: dict[str, tuple[str, ...]] = {
    "cdktn_provider_aws": (
        "provider", "data_aws_eks_cluster", "data_aws_iam_openid_connect_provider", "data_aws_iam_policy_document",
        "eks_node_group", "iam_role", "iam_role_policy", "iam_role_policy_attachment", "launch_template",
    ),
    "cdktn_provider_google": ("provider", "container_node_pool", "data_google_client_config", "service_account_iam_member",
                              "storage_bucket_iam_member"),
    "cdktn_provider_azurerm": ("provider", "data_azurerm_kubernetes_cluster", "kubernetes_cluster_node_pool"),
    "cdktn_provider_kubernetes": ("provider", "namespace_v1", "priority_class_v1", "resource_quota_v1"),
    "cdktn_provider_helm": ("provider", "release"),
}
PACKAGES = {  # gpufleet provider -> the provider packages its construct uses
    "aws": ("cdktn_provider_aws",),
    "gcp": ("cdktn_provider_google",),
    "azure": ("cdktn_provider_azurerm",),
    "onprem": ("cdktn_provider_kubernetes", "cdktn_provider_helm"),
}
TRIM_FORMAT = "1"  # bump when the trimmed layout changes, to rebuild cached copies
_REQUIRE = re.compile(rb'require\("\.\./([^/"]+)/')
_loaded: set[str] = set()


@dataclass(frozen=True)
class PackageAssembly:
    """Where a provider package's jsii assembly is, without importing the package."""

    package: str
    name: str
    version: str
    tarball: Path
    fqn_by_module: dict[str, str]  # python submodule -> jsii submodule fqn

    @classmethod
    def find(cls, package: str) -> PackageAssembly:
        spec = importlib.util.find_spec(package)
        if spec is None or not spec.submodule_search_locations:
            raise ModuleNotFoundError(f"{package} is not installed; install the pinned provider packages (docs/stacks.md)")
        jsii_dir = Path(spec.submodule_search_locations[0]) / "_jsii"
        source = (jsii_dir / "__init__.py").read_text()
        load = re.search(r'JSIIAssembly\.load\(\s*"([^"]+)",\s*"([^"]+)",\s*__name__\[0:-6\],\s*"([^"]+)"', source)
        if load is None:
            raise RuntimeError(f"{package}: unexpected layout of {jsii_dir / '__init__.py'} (no JSIIAssembly.load call)")
        name, version, filename = load.groups()
        fqns = dict((module, fqn) for fqn, module in re.findall(rf'"({re.escape(name)}\.\w+)": "{package}\.(\w+)"', source))
        return cls(package, name, version, jsii_dir / filename, fqns)


def cache_dir() -> Path:
    """Trimmed assemblies live beside other caches: $XDG_CACHE_HOME/gpufleet/jsii (default ~/.cache)."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "gpufleet" / "jsii"


def load_provider(provider: str, *, trim: bool = True) -> None:
    """Load the packages a gpufleet provider's construct uses (see `load`)."""
    for package in PACKAGES[provider]:
        load(package, trim=trim)


def load(package: str, *, trim: bool = True) -> None:
    """Load `package`'s assembly into the kernel (trimmed unless `trim=False`); later calls do nothing."""
    if package in _loaded:
        return
    import cdktn  # noqa: F401  (its assembly, and constructs', must be in the kernel before a provider's)

    if trim:
        assembly = PackageAssembly.find(package)
        jsii.load(assembly.name, assembly.version, os.fspath(trimmed_tarball(assembly, SUBMODULES[package])))
    _loaded.add(package)


def trimmed_tarball(assembly: PackageAssembly, modules: tuple[str, ...]) -> Path:
    """The cached trimmed tarball for these submodules, built on first use."""
    unknown = [m for m in modules if m not in assembly.fqn_by_module]
    if unknown:
        raise RuntimeError(f"{assembly.package} has no submodule(s) {', '.join(unknown)}")
    stat = assembly.tarball.stat()
    key = hashlib.sha256(f"{TRIM_FORMAT}:{assembly.tarball.name}:{stat.st_size}:{sorted(modules)}".encode()).hexdigest()[:16]
    path = cache_dir() / f"{assembly.package}-{assembly.version}-{key}.jsii.tgz"
    if not path.exists():
        logger.info("building trimmed jsii assembly %s for %s", path.name, ", ".join(modules))
        data = _trim(assembly, {assembly.fqn_by_module[m] for m in modules})
        path.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=path.parent, delete=False) as tmp:  # atomic for concurrent builders
            tmp.write(data)
        os.replace(tmp.name, path)
    return path


def _trim(assembly: PackageAssembly, wanted: set[str]) -> bytes:
    """A tarball of the package with only the `wanted` submodules and their dependencies."""
    with tarfile.open(assembly.tarball, "r:gz") as tar:  # pass 1: manifest, and which module requires which
        manifest: dict | None = None
        package_json = b""
        requires: dict[str, set[str]] = {}
        for member in tar:
            if not member.isfile():
                continue
            if member.name == "package/.jsii":
                manifest = json.loads(tar.extractfile(member).read())  # type: ignore[union-attr]
            elif member.name == "package/package.json":
                package_json = tar.extractfile(member).read()  # type: ignore[union-attr]
            elif member.name.startswith("package/lib/") and member.name.endswith(".js") and member.name.count("/") >= 3:
                directory = member.name.split("/")[2]
                found = _REQUIRE.findall(tar.extractfile(member).read())  # type: ignore[union-attr]
                requires.setdefault(directory, set()).update(d.decode() for d in found)
    if manifest is None or "types" not in manifest:
        raise RuntimeError(f"{assembly.tarball}: no inline .jsii manifest; this package layout is not supported")

    prefix = len(assembly.name) + 1
    directory_of = {fqn: sub["symbolId"].split("/")[1] for fqn, sub in manifest["submodules"].items()}
    fqn_of = {d: fqn for fqn, d in directory_of.items()}
    types_of: dict[str, list[dict]] = {}
    for t in manifest["types"].values():
        types_of.setdefault(f"{assembly.name}.{t.get('namespace', '').split('.')[0]}", []).append(t)
    referenced = re.compile(rf'"{re.escape(assembly.name)}\.(\w+)\.')
    keep: set[str] = set()
    todo = list(wanted)
    while todo:  # the closure over JavaScript requires and type references
        fqn = todo.pop()
        if fqn in keep:
            continue
        keep.add(fqn)
        todo += [fqn_of[d] for d in requires.get(directory_of[fqn], ()) if d in fqn_of]
        refs = {f"{assembly.name}.{ns}" for ns in referenced.findall(json.dumps(types_of.get(fqn, [])))}
        todo += sorted(refs & directory_of.keys())
    namespaces = {fqn[prefix:] for fqn in keep}
    manifest["types"] = {k: t for k, t in manifest["types"].items() if t.get("namespace", "").split(".")[0] in namespaces}
    manifest["submodules"] = {k: s for k, s in manifest["submodules"].items() if k in keep}
    index = '"use strict";\nObject.defineProperty(exports, "__esModule", { value: true });\n' + "".join(
        f'exports.{fqn[prefix:]} = require("./{directory_of[fqn]}/index");\n' for fqn in sorted(keep))
    directories = {directory_of[fqn] for fqn in keep}

    out = io.BytesIO()
    with tarfile.open(assembly.tarball, "r:gz") as tar, tarfile.open(fileobj=out, mode="w:gz", compresslevel=1) as trimmed:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            trimmed.addfile(info, io.BytesIO(data))

        add("package/package.json", package_json)
        add("package/.jsii", json.dumps(manifest).encode())
        add("package/lib/index.js", index.encode())
        for member in tar:  # pass 2: the kept submodules' code
            parts = member.name.split("/")
            if member.isfile() and len(parts) > 3 and parts[1] == "lib" and parts[2] in directories and member.name.endswith(".js"):
                add(member.name, tar.extractfile(member).read())  # type: ignore[union-attr]
    return out.getvalue()
