"""`orchestrator manifests`: the Kubernetes objects of the environment's replicas, for review and GitOps."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from orchestrator.cli.common import EnvOption, FormatOption, OutputFormat, SpecOption, errors, print_json, spec_path
from orchestrator.errors import InputError
from orchestrator.settings import load_settings


def manifests(
    env: EnvOption = None,
    spec: SpecOption = None,
    plan: Annotated[Path | None, typer.Option("--plan", help="Placement JSON to render (default: the latest stored plan, else plan now).", dir_okay=False)] = None,
    out: Annotated[Path | None, typer.Option("--out", "-o", help="Write one kustomization per cluster under this directory (default: one YAML stream on stdout).", file_okay=False)] = None,
    output: FormatOption = OutputFormat.table,
) -> None:
    """Render the Deployments, Services, ServiceAccounts, cache claims, disruption budgets and
    autoscalers of every Kubernetes pool the plan runs replicas in: the objects rebalance
    creates, from the same functions, checked against each pool's Kubernetes version's schema.

    With --out DIR: a kustomization per cluster (DIR/CLUSTER/kustomization.yaml) and one file
    per object, for Argo CD or Flux; files an earlier render wrote and this one does not are
    removed. Secrets are not rendered: create the gateway key's and the pools' identity
    Secrets in the cluster.
    """
    from orchestrator.catalog.price_catalog import load_price_catalog
    from orchestrator.kube import environment_manifests
    from orchestrator.kube.gitops import manifest_stream, write_manifests
    from orchestrator.kube.schema import check_schema
    from orchestrator.plan_store import latest_placement, read_placement
    from orchestrator.planning import load_planning

    settings = load_settings()
    path = spec_path(env, spec)
    how, _notes = load_planning(path, load_price_catalog(settings.catalog_dir), root=Path.cwd(),
                                profiles_dir=settings.profiles_dir)
    environment = how.spec.environment or path.stem
    placement = read_placement(plan) if plan else latest_placement(settings, environment) or how.plan()
    if placement.environment != environment:
        raise InputError(f"{plan}: the plan is for environment '{placement.environment}', not '{environment}'. "
                         "To fix: pass that environment's spec, or a plan of this one")
    pools = environment_manifests(how.spec, placement, settings)
    for pool in pools:
        check_schema(pool.manifests, pool.kubernetes_version, f"pool {pool.pool}")
    if output is OutputFormat.json:
        print_json({"environment": environment, "pools": [
            {"pool": p.pool, "cluster": p.cluster, "kubernetes_version": p.kubernetes_version, "manifests": p.manifests}
            for p in pools]})
    elif out is None:
        typer.echo(manifest_stream(pools), nl=False)
    if out is not None:
        files = write_manifests(pools, out)
        errors.print(f"wrote {len(files)} files for {len({p.cluster for p in pools})} clusters under {escape(str(out))}")
