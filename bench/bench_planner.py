"""The planner against its baselines, and how its solve time grows.

    python -m bench.bench_planner [--quick] [--true-gap]

1. environments/hybrid.yaml, within its placement policies (EU residency, spot caps) as
   `orchestrator plan` plans by default: cost against (a) single cloud, (b) greedy, (c)
   per-region GPU mix and (d) the LP bound; solve time and MIP gap.
2. Instances generated from the real catalog and the peak windows of the public traces:
   cost against (b)-(d), solve time against the targets (<= 2 s for 100 pools x 10 models x
   20 regions, <= 30 s for 1000 x 50 x 100), MIP gap against 0.5 %.
3. With --true-gap: the true gap of the default plan, on hybrid and on both generated sizes,
   with and without the policy guardrails — its cost against the best valid lower bound
   known (the larger of its own and that of one long exhaustive solve: every (model, pool)
   pair, MIP gap 1e-4, `--true-gap-limit` seconds, default 180), not the solver's own
   report; time and gap against the targets.
4. Scaling curves: pools 10 -> 1000, models 1 -> 50, user regions 1 -> 100.
Ratios are plan / baseline (below 1.00: the plan is cheaper).
"""

from __future__ import annotations

import sys
import time
from dataclasses import replace
from pathlib import Path

from bench.instances import generated_spec
from orchestrator.catalog.price_catalog import load_price_catalog
from orchestrator.inputs import load_inputs, resolve_inputs
from orchestrator.planner import PlanOptions, build_problem, plan_problem
from orchestrator.planner.baselines import all_baselines, greedy, lp_bound, per_region
from orchestrator.policy import planning_rules
from orchestrator.spec import parse_spec

REPO = Path(__file__).resolve().parent.parent
OPTIONS = PlanOptions(time_limit_s=30.0, mip_gap=0.005)
TRUE_GAP_LIMIT_S = 180.0


def ratio(cost: float, baseline) -> str:
    if baseline.cost_per_hour in (None, 0):
        return f"{baseline.name:<13} {'n/a':>10}   {baseline.detail}"
    note = "" if baseline.serves_all else "  (baseline misses SLOs)"
    return (f"{baseline.name:<13} ${baseline.cost_per_hour:>9,.2f}/h   plan/baseline {cost / baseline.cost_per_hour:5.2f}"
            f"   saving {1 - cost / baseline.cost_per_hour:6.1%}{note}   {baseline.detail}")


def solve_line(label: str, placement, seconds: float, target_s: float | None = None) -> str:
    gap = placement.solver.mip_gap
    target = f"   target {target_s:4.0f} s ratio {seconds / target_s:5.2f}" if target_s else ""
    return (f"{label:<34} {seconds:7.2f} s  {placement.solver.status:<19} gap {0 if gap is None else gap:6.2%}"
            f"  ${placement.cost_per_hour:>10,.2f}/h  unserved {len(placement.unserved)}{target}")


def generated(pools: int, models: int, regions: int, catalog):
    spec = parse_spec(generated_spec(pools, models, regions), f"generated-{pools}x{models}x{regions}")
    return spec, resolve_inputs(spec, catalog)


def true_gap(label: str, problem, limit_s: float, target_s: float | None) -> list[str]:
    """The default plan against the best lower bound known for the full problem (module docstring, 3)."""
    started = time.perf_counter()
    plan = plan_problem(problem, OPTIONS)
    seconds = time.perf_counter() - started
    started = time.perf_counter()
    exhaustive = plan_problem(problem, replace(OPTIONS, candidate_pools=None, mip_gap=1e-4, time_limit_s=limit_s))
    long_s = time.perf_counter() - started
    served = abs(sum(u.rps for u in plan.unserved) - sum(u.rps for u in exhaustive.unserved)) < 1e-4
    bound = max(plan.lower_bound_per_hour, exhaustive.lower_bound_per_hour)
    gap = (plan.cost_per_hour - bound) / plan.cost_per_hour if plan.cost_per_hour > 0 else 0.0
    lines = [f"{label:<44} default {seconds:7.2f} s" + (f" (target {target_s:g} s, ratio {seconds / target_s:5.2f})" if target_s else " " * 26)
             + f"  ${plan.cost_per_hour:>10,.2f}/h  true gap <= {gap:6.2%} (target 0.5 %, ratio {gap / 0.005:5.2f})"
             + f"  reported {plan.solver.mip_gap or 0:6.2%}  pairs {plan.solver.pairs[0]}/{plan.solver.pairs[1]}",
             f"{'':<44} exhaustive {long_s:7.2f} s {exhaustive.solver.status:<19} ${exhaustive.cost_per_hour:>10,.2f}/h"
             f"  bound ${exhaustive.lower_bound_per_hour:>10,.2f}/h  default/exhaustive cost {plan.cost_per_hour / exhaustive.cost_per_hour:6.4f}"
             f"  default bound ${plan.lower_bound_per_hour:,.2f}/h" + ("" if served else "  (different service levels: not comparable)")]
    return lines


def main(quick: bool = False, with_true_gap: bool = False, true_gap_limit_s: float = TRUE_GAP_LIMIT_S) -> None:
    print(__doc__.splitlines()[0] + "\n")
    catalog = load_price_catalog()

    spec, inputs = load_inputs(REPO / "environments" / "hybrid.yaml", catalog)
    problem = build_problem(spec, inputs, rules=planning_rules(spec, REPO))  # as `orchestrator plan` does by default
    started = time.perf_counter()
    placement = plan_problem(problem, OPTIONS)
    print(solve_line("hybrid (9 pools, 3 models, 7 regions)", placement, time.perf_counter() - started))
    for baseline in all_baselines(spec, problem, catalog, OPTIONS):
        print("   " + ratio(placement.cost_per_hour, baseline))

    print("\nGenerated from the catalog and traces:")
    sizes = [(100, 10, 20, 2.0)] + ([] if quick else [(300, 20, 50, None), (1000, 50, 100, 30.0)])
    for pools, models, regions, target in sizes:
        spec, inputs = generated(pools, models, regions, catalog)
        problem = build_problem(spec, inputs)
        started = time.perf_counter()
        placement = plan_problem(problem, OPTIONS)
        print(solve_line(f"{pools} pools x {models} models x {regions} regions", placement, time.perf_counter() - started, target))
        for baseline in (greedy(problem, OPTIONS), per_region(problem, OPTIONS), lp_bound(problem, OPTIONS)):
            print("   " + ratio(placement.cost_per_hour, baseline))

    if with_true_gap:
        print(f"\nTrue gap: default plan vs the best bound known (exhaustive solve: every pair, gap 1e-4, {true_gap_limit_s:g} s limit):")
        cases = [("hybrid", None, True), ("hybrid", None, False)]
        cases += [((100, 10, 20), 2.0, rules) for rules in (False, True)]
        cases += [] if quick else [((1000, 50, 100), 30.0, rules) for rules in (False, True)]
        for size, target, rules in cases:
            if size == "hybrid":
                spec, inputs = load_inputs(REPO / "environments" / "hybrid.yaml", catalog)
                label = "hybrid"
            else:
                spec, inputs = generated(*size, catalog)
                label = "{} x {} x {}".format(*size)
            problem = build_problem(spec, inputs, rules=planning_rules(spec, REPO) if rules else None)
            label += ", policy guardrails" if rules else ", no guardrails"
            for line in true_gap(label, problem, true_gap_limit_s, target):
                print(line, flush=True)

    if quick:
        return
    print("\nScaling (time limit 30 s, gap 0.5 %):")
    curves = [("pools", [(p, 10, 20) for p in (10, 30, 100, 300, 1000)]),
              ("models", [(100, m, 20) for m in (1, 5, 10, 20, 50)]),
              ("regions", [(100, 10, r) for r in (1, 10, 20, 50, 100)])]
    for name, points in curves:
        for pools, models, regions in points:
            spec, inputs = generated(pools, models, regions, catalog)
            started = time.perf_counter()
            placement = plan_problem(build_problem(spec, inputs), OPTIONS)
            print(solve_line(f"{name:<8} {pools:>4} x {models:>2} x {regions:>3}", placement, time.perf_counter() - started))


if __name__ == "__main__":
    limit = next((float(a.split("=", 1)[1]) for a in sys.argv if a.startswith("--true-gap-limit=")), TRUE_GAP_LIMIT_S)
    main(quick="--quick" in sys.argv, with_true_gap="--true-gap" in sys.argv, true_gap_limit_s=limit)
