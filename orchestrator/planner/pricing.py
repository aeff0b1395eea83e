r"""Pricing left-out (model, pool) pairs against the LP duals: what makes candidate pruning exact.

The MILP starts from a few pools per demand (`problem.candidate_hosts`). A left-out pair
(m, p) enters the model as a column group: replicas x_mp, a capacity row Σ_k f_kp / a_kp ≤ x_mp
and flows f_kp for every class k of m that p may serve. With the LP's row duals y (HiGHS's
convention: reduced cost = c − Aᵀy) the group's reduced cost, choosing the new capacity row's
dual w ≥ 0 as small as the flows allow (each flow's reduced cost ε·rtt − y_k + w/a_kp ≥ 0), is

    rc_mp = δ·g_mp + [κ]  − a_pack·y_pack(p) − y_min(m) − y_dom(m, d(p)) − a_spot·y_spot(m) − w*
    w*    = max(0, max_k a_kp · (y_k − ε·rtt_kp))

(κ: a new pair starts every replica it has, in churn-aware mode; y_dom is the spread row's
dual when p opens a new domain.) Two uses:

* column generation (threshold 0): a pair with rc < 0 would lower the LP, so it is added and
  the LP solved again, until none is: then the LP bound is the full problem's LP bound;
* the certificate (threshold UB − LP): for any placement X, objective(X) ≥ LP + Σ rc_j·X_j with
  every term ≥ 0, so a pair whose rc exceeds UB − LP has x_mp = 0 in every placement cheaper
  than the incumbent UB (x is an integer: one replica already costs rc). Adding every pair
  within that distance and solving again makes the pruned MILP's answer, and its bound, hold
  for the full problem.

For a pool whose packing row holds no replica yet (0 ≤ G·n), any y_pack in [−c_p(1−y_budget)/G_p, 0]
is an optimal dual (the row is tight, n_p sits at 0); the most negative, i.e. the pool's own
price per GPU, is taken, so a pool is not added just because the LP had no reason to price it.
"""

from __future__ import annotations

import numpy as np

from orchestrator.planner.formulation import Formulation, derated, is_power_of_two, spot_cap, spot_coefficient

TOLERANCE = 1e-7


def price_out(form: Formulation, duals: np.ndarray, hosts: dict[str, list[str]], threshold: float) -> dict[str, list[str]]:
    """Pairs not in `hosts` whose reduced cost is at most `threshold` (below 0 for threshold 0), by model."""
    problem, options = form.problem, form.options
    tie = 0.0 if form.mode == "service" else 1.0
    tolerance = TOLERANCE * max(1.0, abs(threshold))
    limit = threshold + tolerance if threshold > 0 else -tolerance

    classes_of: dict[str, list] = {}
    for k in problem.classes:
        if k in form.demand_rows:
            classes_of.setdefault(k.model, []).append(k)
    hosted = {pool for _, pool in form.replicas}
    packing = {p.pool: _packing_dual(form, duals, p.pool, p.pool in hosted) for p in problem.pools}
    added: dict[str, list[str]] = {}
    for model, pools in problem.hosts.items():
        have = set(hosts.get(model, []))
        spread = problem.spread.get(model)
        cap = spot_cap(problem, options, model)
        for pool in pools:
            if pool in have:
                continue
            c = problem.capacity[(model, pool)]
            coefficient = float(c.gpus_per_replica) if form.exact_rows[pool] and is_power_of_two(c.gpus_per_replica) \
                else 1.0 / problem.replicas_per_node(model, pool)
            rc = options.replica_weight_usd * c.gpus_per_replica * tie
            if problem.current and tie:
                rc += options.churn_usd_per_replica
            rc -= coefficient * packing[pool]
            if model in form.min_replica_rows:
                rc -= duals[form.min_replica_rows[model]]
            if spread is not None and model in form.spread_rows:
                row = form.domain_rows.get((model, problem.domain(pool, spread.across)))
                rc += duals[row] if row is not None else -duals[form.spread_rows[model]]
            if model in form.spot_rows:
                rc -= spot_coefficient(problem, pool, cap, model) * duals[form.spot_rows[model]]
            value = 0.0
            for k in classes_of.get(model, []):
                if pool in problem.routes[k]:
                    rate = derated(problem, options, pool, problem.rate(k, pool))
                    value = max(value, rate * (duals[form.demand_rows[k]] - options.latency_weight_usd * problem.rtt[(k.region, pool)] * tie))
            rc -= value
            if rc <= limit:
                added.setdefault(model, []).append(pool)
    return added


def _packing_dual(form: Formulation, duals: np.ndarray, pool: str, has_replicas: bool) -> float:
    """The packing row's dual; for a row without replicas, the pool's own price per GPU (module docstring)."""
    problem = form.problem
    if has_replicas:
        return float(duals[form.packing_rows[pool]])
    info = problem.pool_by_name[pool]
    if info.min_nodes > 0 or form.mode == "service":
        return 0.0  # paid for anyway (the row is slack), or cost does not count
    budget = float(duals[form.budget_row]) if form.budget_row is not None else 0.0
    return -info.cost_per_node_hour * (1.0 - budget) / info.gpus_per_node
