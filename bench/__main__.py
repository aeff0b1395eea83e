"""`python -m bench` runs every benchmark in turn."""

from bench import (
    bench_bursts, bench_calibration, bench_capacity_sim, bench_cold_start, bench_dashboard_serving, bench_gateway, bench_inputs, bench_planner, bench_policies,
    bench_providers, bench_rebalance_clusters, bench_rebalance_local, bench_scale_to_zero, bench_size_aware, bench_spend,
    bench_stacks,
)

bench_inputs.main()
print()
bench_planner.main()
print()
bench_policies.main()
print()
bench_stacks.main()
print()
bench_spend.main()
print()
bench_dashboard_serving.main()
print()
bench_providers.main()
print()
bench_rebalance_clusters.main()
print()
bench_gateway.main()
print()
bench_rebalance_local.main()
print()
bench_scale_to_zero.main([])
print()
bench_cold_start.main()
print()
bench_bursts.main()
print()
bench_size_aware.main()
print()
bench_capacity_sim.main()
print()
bench_calibration.main([])
