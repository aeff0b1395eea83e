"""gpufleet's control plane: spec, catalogs, planner, rebalance, providers, CLI."""

__version__ = "0.1.0"
