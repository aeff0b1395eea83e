"""`python -m stacks`: synthesizes, and turns bad input into the orchestrator's messages and exit 2."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from stacks.__main__ import main
from tests.conftest import REPO

BROKEN = """
pools:
  - {name: a, provider: aws, region: us-east-1, instance_type: g6.12xlarg, max_nodes: 2, cluster: eks}
models:
  - {name: m, architecture: llama-3.1-8b, source: s3://m/, slo: {ttft_p95_ms: 1000, tpot_p95_ms: 100, max_rtt_ms: 100}}
"""


def test_synthesizes_the_named_environment(tmp_path, capsys):
    assert main(["--env", "local", "--outdir", str(tmp_path)]) == 0
    assert (tmp_path / "stacks" / "local-local" / "cdk.tf.json").is_file()
    assert capsys.readouterr().out == f"synthesized into {tmp_path / 'stacks'}: local-local\n"


def test_bad_spec_is_a_located_message_and_exit_2(tmp_path, capsys):
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN)
    assert main(["--spec", str(spec), "--outdir", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {spec}:3: pools[0].instance_type: unknown aws GPU instance type 'g6.12xlarg'")
    assert not (tmp_path / "out").exists()


def test_unknown_environment_lists_the_known_ones(capsys):
    assert main(["--env", "hybird"]) == 2
    err = capsys.readouterr().err
    assert "no environment 'hybird'" in err and "Did you mean 'hybrid'?" in err


def test_the_module_entry_point_prints_no_traceback(tmp_path):
    spec = tmp_path / "broken.yaml"
    spec.write_text(BROKEN.replace("max_nodes: 2", "max_nodes: -1"))
    result = subprocess.run([sys.executable, "-m", "stacks", "--spec", str(spec)], cwd=REPO, capture_output=True,
                            text=True, env={**os.environ, "GPUFLEET_HOME": str(tmp_path / "home")}, timeout=120)
    assert result.returncode == 2
    assert "Traceback" not in result.stderr and "jsii" not in result.stderr
    assert f"{spec}:3: pools[0].max_nodes" in result.stderr
    assert not Path(REPO / "cdktf.out" / "stacks" / "broken-aws").exists()
