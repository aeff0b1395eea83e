"""The planner: a cost- and latency-optimal placement of replicas over pools (HiGHS MILP)."""

from orchestrator.planner.formulation import PlanOptions
from orchestrator.planner.placement import Placement
from orchestrator.planner.plan import plan_fleet, plan_problem
from orchestrator.planner.problem import PlacementRules, Problem, ResidencyArea, build_problem

__all__ = ["PlacementRules", "PlanOptions", "Placement", "Problem", "ResidencyArea", "build_problem", "plan_fleet", "plan_problem"]
