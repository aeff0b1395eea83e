"""What a rebalance calls once its steps are applied: make the routes give the new plan's shares.

DNS (`routing.dns`) is written; gateways are only read, because vllm-router has no worker
weights (`gateway.py`): where a shared gateway's membership splits traffic differently from
the plan, that is logged as a warning, not changed. Nothing happens without `routing`.
"""

from __future__ import annotations

import logging

from orchestrator.planner.placement import Placement
from orchestrator.routes.base import RouteSetter
from orchestrator.routes.gateway import gaps, local_members, membership_shares
from orchestrator.routes.table import RouteTable
from orchestrator.settings import Settings
from orchestrator.spec import FleetSpec
from orchestrator.spec.models import Route53Dns

logger = logging.getLogger(__name__)


def setter_for(dns: Route53Dns, settings: Settings) -> RouteSetter:
    """The DNS service the spec names (route53 today; Cloud DNS and Traffic Manager would go here)."""
    from orchestrator.routes.route53 import Route53Records

    return Route53Records(dns, settings)


def realize_routes(spec: FleetSpec, placement: Placement, settings: Settings,
                   setter: RouteSetter | None = None) -> list[str]:
    """Write the placement's weighted DNS records and report shared gateways; returns the changes made.

    [] when the spec has no `routing`, or when every record already holds the plan's weights.
    Raises InputError for a spec that cannot be routed (a pool with traffic and no
    `gateway`, ...) and the provider errors of `providers/errors.py` for Route 53 failures.
    `setter` replaces the DNS service the spec names (tests).
    """
    if spec.routing is None:
        return []
    changes: list[str] = []
    if spec.routing.dns is not None:
        table = RouteTable.from_placement(spec, placement)
        for note in table.unrouted:
            logger.warning("routes: %s", note)
        changes = (setter or setter_for(spec.routing.dns, settings)).apply(table.records)
    replicas = {(r.model, r.pool): r.count for r in placement.replicas}
    if any(p.provider == "local" for p in spec.pools):
        members = local_members(spec, placement.environment, settings)
        local = {p.name for p in spec.pools if p.provider == "local"}
        if members is not None:
            replicas = {k: v for k, v in replicas.items() if k[1] not in local} | members
    for line in gaps(membership_shares(spec, placement, replicas)):
        logger.warning("routes: %s", line)
    return changes
