"""Rebalance: move a running fleet to a new placement, make-before-break."""

from orchestrator.rebalance.steps import Fleet, RebalanceUnsafe, ResizePool, check_steps, plan_steps

__all__ = ["Fleet", "RebalanceUnsafe", "ResizePool", "check_steps", "plan_steps"]
