"""`python -m bench` runs every benchmark in turn."""

from bench import bench_inputs

bench_inputs.main()
