"""A fake provider: an in-memory fleet that applies rebalance steps like a real provider would.

Absolute targets, idempotent; a ScaleUp is "still loading" (StepPending) on its first ask,
as a replica loading its model is. Every state it passes through is kept, so tests can
check invariants at each moment, and every change is counted, so they can spot a double
scale-up. Not a model of any cloud's API.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from typing import ClassVar

from orchestrator.providers.base import (
    Capability, FleetState, ObservedPool, ObservedReplica, ResizePool, ScaleDown, ScaleUp, StepPending,
)
from orchestrator.rebalance.steps import Fleet


@dataclass
class FakeProvider:
    capabilities: ClassVar[frozenset[Capability]] = frozenset({Capability.node_scaling})

    nodes: dict[str, int]
    replicas: dict[tuple[str, str], int] = field(default_factory=dict)
    history: list[Fleet] = field(default_factory=list)
    changes: list[str] = field(default_factory=list)
    loading: set[tuple[str, str, int]] = field(default_factory=set)

    def apply(self, step: ResizePool | ScaleUp | ScaleDown) -> None:
        if isinstance(step, ResizePool):
            if self.nodes.get(step.pool) != step.nodes:
                self.nodes[step.pool] = step.nodes
                self.changes.append(f"resize {step.pool} {step.nodes}")
        else:
            key = (step.model, step.pool)
            if self.replicas.get(key, 0) == step.count:
                return
            if isinstance(step, ScaleUp) and (key + (step.count,)) not in self.loading:
                self.loading.add(key + (step.count,))
                raise StepPending(f"{step.model} on {step.pool} loading", retry_after_s=0)
            self.replicas[key] = step.count
            self.changes.append(f"{step.kind} {step.model} {step.pool} {step.count}")
        self.history.append(self.fleet())

    def fleet(self) -> Fleet:
        return Fleet(dict(self.nodes), {k: v for k, v in self.replicas.items() if v})

    def observe(self) -> FleetState:
        return FleetState(
            gateway=None,
            pools=[ObservedPool(pool=p, nodes=n, healthy_nodes=n) for p, n in self.nodes.items()],
            replicas=[ObservedReplica(model=m, pool=p, url=f"fake://{m}/{p}/{i}", healthy=True)
                      for (m, p), count in self.replicas.items() for i in range(count)],
        )
