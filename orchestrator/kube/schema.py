"""Rendered manifests checked against the Kubernetes API's own OpenAPI schema of a given version, offline.

The schemas are kubernetes-validate's: the official OpenAPI documents of every supported version
as JSON Schema, in their strict form (a field the version does not know is an error, as the API
server's strict field validation makes it). Its own `validate` parses the version's 1.3 MB
definitions again on every call (30 ms a manifest); here one validator per (version, kind) is
kept, so an environment's manifests check in milliseconds, and every problem is reported, not
only the first. A manifest that fails is gpufleet's bug, not the user's: a failure (exit 1).
"""

from __future__ import annotations

import json
import re
from functools import lru_cache
from importlib.resources import files
from typing import Any

from orchestrator.errors import GpufleetError
from orchestrator.providers.errors import import_sdk


def _schema_dir(version: str) -> Any:
    import_sdk("kubernetes_validate", "kubernetes")  # the schemas ship with it
    return files("kubernetes_validate") / "kubernetes-json-schema" / f"v{version}.0-local-strict"


@lru_cache(maxsize=None)
def _definitions(version: str) -> Any:
    """The version's shared definitions, as a referencing registry."""
    from referencing import Registry, Resource

    contents = json.loads((_schema_dir(version) / "_definitions.json").read_text())
    return Resource.from_contents(contents) @ Registry()


@lru_cache(maxsize=None)
def _validator(version: str, kind: str, api_version: str) -> Any:
    """The schema of one kind at one version (None when the version has no such kind)."""
    from jsonschema import Draft202012Validator

    group_version = re.sub(r"^([^./]*)(?:\.[^/]*)?/", r"\1-", api_version)  # rbac.authorization.k8s.io/v1 -> rbac-v1
    path = _schema_dir(version) / f"{kind.lower()}-{group_version}.json"
    if not path.is_file():
        return None
    return Draft202012Validator(json.loads(path.read_text()), registry=_definitions(version))


def schema_problems(manifests: list[dict], version: str) -> list[str]:
    """Every problem the schema of Kubernetes `version` (`1.30`) finds in `manifests`, one line each (empty: valid)."""
    problems = []
    for manifest in manifests:
        meta = manifest.get("metadata", {})
        where = f"{manifest.get('kind')} {meta.get('namespace', '')}/{meta.get('name')}".replace(" /", " ")
        validator = _validator(version, str(manifest.get("kind")), str(manifest.get("apiVersion")))
        if validator is None:
            problems.append(f"{where}: Kubernetes {version} has no {manifest.get('apiVersion')} {manifest.get('kind')}")
            continue
        for error in sorted(validator.iter_errors(manifest), key=lambda e: list(map(str, e.path))):
            problems.append(f"{where}: {'.'.join(str(p) for p in error.path) or '(top)'}: {error.message}")
    return problems


def check_schema(manifests: list[dict], version: str, where: str) -> None:
    """GpufleetError naming every problem the schema of `version` finds in `manifests`."""
    problems = schema_problems(manifests, version)
    if problems:
        raise GpufleetError(f"{where}: the manifests fail the Kubernetes {version} schema: " + "; ".join(problems)
                            + ". To fix: report it (a gpufleet bug); meanwhile check the pool's kubernetes_version")
