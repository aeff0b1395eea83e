"""Where one gateway fronts several pools (and `local`): membership is the route, since vllm-router has no weights.

Checked against the pinned vllm-router (0.1.17): its worker API takes `priority` and `cost`
per worker (`POST /workers`) and lists them back, but no policy reads them — with priority
100 against 1 and cost 0.1 against 10, `round_robin` still sent 100 of 200 requests to each
worker — and a worker cannot be changed once added (`PUT`/`PATCH /workers/{url}` answer
405). So gpufleet sets no weights at a gateway, and does not claim to:

- a gateway's members are its route: every ready replica of a model is one (providers add a
  replica when ready and take it out before it stops), and each gets an equal part of the
  requests for its model under `round_robin`/`random` (load-aware policies shift that by load);
- a pool's realized share behind a gateway is therefore its replicas of the model over the
  gateway's replicas of the model. `membership_shares` sets that beside the split the plan
  wants and `gaps` names where they differ, so an operator sees it; nothing here changes a
  gateway.

Gateways are the pools' `gateway` field; `local` pools without one share the local gateway
(the vllm-router the local supervisor runs), whose members `local_members` reads.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from orchestrator.errors import ProviderError
from orchestrator.gateway import RouterClient, gateway_api_key
from orchestrator.planner.placement import Placement
from orchestrator.settings import Settings
from orchestrator.spec import FleetSpec

logger = logging.getLogger(__name__)

LOCAL_GATEWAY = "local"
ROUTER_HAS_WORKER_WEIGHTS = False  # vllm-router 0.1.17: see the module docstring
GAP_TOLERANCE = 0.05


@dataclass(frozen=True)
class MembershipShare:
    """One pool behind a shared gateway, for one (model, user region): the plan's split and what membership gives."""

    gateway: str
    model: str
    region: str
    pool: str
    planned: float
    realized: float
    replicas: int


def gateway_of(spec: FleetSpec) -> dict[str, str]:
    """pool -> the gateway in front of it: its `gateway`, or the local gateway for local pools without one."""
    return {p.name: p.gateway or LOCAL_GATEWAY for p in spec.pools if p.gateway or p.provider == "local"}


def membership_shares(spec: FleetSpec, placement: Placement,
                      replicas: Mapping[tuple[str, str], int] | None = None) -> list[MembershipShare]:
    """For every gateway fronting more than one pool, the plan's split between them next to membership's.

    `replicas` ((model, pool) -> ready replicas) defaults to the placement's counts; pass
    what a gateway reports (`local_members`) to compare with what runs.
    """
    gateways = gateway_of(spec)
    behind: dict[str, list[str]] = defaultdict(list)
    for pool, gateway in gateways.items():
        behind[gateway].append(pool)
    shared = {g: pools for g, pools in behind.items() if len(pools) > 1}
    counts = dict(replicas) if replicas is not None else {(r.model, r.pool): r.count for r in placement.replicas}
    planned: dict[tuple[str, str, str], dict[str, float]] = defaultdict(dict)
    for route in placement.routes:
        gateway = gateways.get(route.pool)
        if gateway in shared and route.share > 0:
            planned[(gateway, route.model, route.region)][route.pool] = route.share
    rows = []
    for (gateway, model, region), shares in sorted(planned.items()):
        members = {p: counts.get((model, p), 0) for p in shared[gateway]}
        total_share, total_members = sum(shares.values()), sum(members.values())
        for pool in sorted(p for p in shared[gateway] if p in shares or members[p]):
            rows.append(MembershipShare(gateway, model, region, pool, shares.get(pool, 0.0) / total_share,
                                        members[pool] / total_members if total_members else 0.0, members[pool]))
    return rows


def gaps(shares: list[MembershipShare], tolerance: float = GAP_TOLERANCE) -> list[str]:
    """One line per (gateway, model, region) whose membership split is more than `tolerance` off the plan's."""
    groups: dict[tuple[str, str, str], list[MembershipShare]] = defaultdict(list)
    for row in shares:
        groups[(row.gateway, row.model, row.region)].append(row)
    lines = []
    for (gateway, model, region), rows in groups.items():
        if all(abs(r.planned - r.realized) <= tolerance for r in rows):
            continue
        plan = ", ".join(f"{r.pool} {r.planned:.0%}" for r in rows)
        real = ", ".join(f"{r.pool} {r.realized:.0%} ({r.replicas} replicas)" for r in rows)
        lines.append(f"gateway {gateway}: {model} from {region}: the plan splits {plan}; its members give {real} "
                     "(vllm-router has no worker weights: each ready replica gets an equal part)")
    return lines


def local_members(spec: FleetSpec, environment: str, settings: Settings,
                  client: RouterClient | None = None) -> dict[tuple[str, str], int] | None:
    """Healthy members of the local gateway per (model, pool), read from the gateway itself; None when none runs.

    A member's pool is found by its URL among the replicas the local provider recorded; a
    member no record knows (added by hand) counts under pool "?".
    """
    from orchestrator.providers.local.supervisor import SITE
    from orchestrator.state import GatewayRecord, ReplicaRecord, open_state, state_url

    store = open_state(state_url(settings, environment, spec.state.url))
    try:
        with store.session() as session:
            record = session.get(GatewayRecord, (environment, SITE))
            pools = {r.url: r.pool for r in session.scalars(
                select(ReplicaRecord).where(ReplicaRecord.environment == environment))}
    finally:
        store.close()
    if client is None and (record is None or not record.running):
        return None
    key = None if client else gateway_api_key(settings, environment).value.get_secret_value()
    router = client or RouterClient(record.url, api_key=key)  # type: ignore[union-attr]  # the front asks the key
    try:
        workers = router.workers()
    except ProviderError as exc:
        logger.warning("routes: the local gateway did not list its members (%s)", exc)
        return None
    finally:
        if client is None:
            router.close()
    members: dict[tuple[str, str], int] = defaultdict(int)
    for worker in workers:
        if worker.is_healthy:
            members[(worker.model_id, pools.get(worker.url, "?"))] += 1
    return dict(members)
