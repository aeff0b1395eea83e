"""Rendered manifests as files for GitOps (Argo CD, Flux): one kustomization per cluster, one file per object.

    OUT/<cluster>/kustomization.yaml           resources in apply order (`kubectl apply -k`, Argo CD, Flux)
    OUT/<cluster>/<namespace>/<kind>-<name>.yaml

Every file starts with `HEADER`. A render replaces the files a previous one wrote (those with the
header) that it no longer writes, so a model moved out of a pool leaves Git with it; files
without the header are never touched.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from orchestrator.kube.manifests import PoolManifests

HEADER = "# Rendered by `orchestrator manifests` from the fleet spec and its plan: change those, not this file.\n"
KUSTOMIZATION = "kustomization.yaml"


def _dump(documents: list[dict]) -> str:
    return HEADER + yaml.safe_dump_all(documents, sort_keys=False, default_flow_style=False)


def manifest_stream(pools: list[PoolManifests]) -> str:
    """Every pool's manifests as one YAML stream (`kubectl apply -f -`)."""
    return _dump([m for pool in pools for m in pool.manifests])


def write_manifests(pools: list[PoolManifests], out: Path) -> list[Path]:
    """Write the layout above under `out`; returns the files written."""
    written: dict[Path, str] = {}
    for cluster in dict.fromkeys(p.cluster for p in pools):
        resources = []
        for manifest in (m for p in pools if p.cluster == cluster for m in p.manifests):
            meta = manifest["metadata"]
            relative = f"{meta.get('namespace', meta['name'])}/{manifest['kind'].lower()}-{meta['name']}.yaml"
            resources.append(relative)
            written[out / cluster / relative] = _dump([manifest])
        kustomization = {"apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization", "resources": resources}
        written[out / cluster / KUSTOMIZATION] = HEADER + yaml.safe_dump(kustomization, sort_keys=False)
    if out.exists():
        for old in out.rglob("*.yaml"):
            if old not in written and old.read_text(errors="replace").startswith(HEADER):
                old.unlink()
    for path, text in written.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return list(written)
