"""Routes: make users' traffic reach the plan's pools in the plan's shares (docs/routes.md).

    weights.py   shares -> integer weights (largest remainder)
    base.py      weighted records, the diff, the `RouteSetter` interface of a DNS service
    table.py     the records a placement wants (pure)
    route53.py   Route 53 through boto3
    gateway.py   shared gateways and `local`: membership is the route (vllm-router has no weights)
    realize.py   `realize_routes`, what a rebalance calls after applying its steps
"""

from orchestrator.routes.base import Change, RouteSetter, Target, WeightedRecord, diff
from orchestrator.routes.gateway import MembershipShare, gaps, membership_shares
from orchestrator.routes.realize import realize_routes, setter_for
from orchestrator.routes.table import RouteTable, dns_label
from orchestrator.routes.weights import integer_weights

__all__ = [
    "Change", "MembershipShare", "RouteSetter", "RouteTable", "Target", "WeightedRecord", "diff", "dns_label",
    "gaps", "integer_weights", "membership_shares", "realize_routes", "setter_for",
]
