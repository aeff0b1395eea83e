"""The replica entrypoint's settings and vLLM command line (its run and drain are exercised end to end
by tests/orchestrator/providers/local/test_local_fleet.py, where every replica runs through it)."""

from __future__ import annotations

import pytest

from orchestrator.errors import InputError
from orchestrator.replica.entrypoint import replica_config, vllm_command
from orchestrator.settings import Settings


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("GPUFLEET_REPLICA_MODEL_SOURCE", "s3://models/llama-3.1-8b/")
    monkeypatch.setenv("GPUFLEET_REPLICA_TENSOR_PARALLEL_SIZE", "2")
    monkeypatch.setenv("GPUFLEET_REPLICA_MAX_MODEL_LEN", "8192")
    monkeypatch.setenv("GPUFLEET_REPLICA_PORT", "9000")
    monkeypatch.setenv("GPUFLEET_REPLICA_VLLM_ARGS", "--dtype bfloat16 --enable-prefix-caching")
    config = replica_config(Settings())
    assert config.served_name == "llama-3.1-8b"  # the source's last part when no name is given
    assert (config.tensor_parallel_size, config.max_model_len, config.port) == (2, 8192, 9000)
    assert config.vllm_args == ("--dtype", "bfloat16", "--enable-prefix-caching")


def test_a_replica_without_a_model_source_is_bad_input():
    with pytest.raises(InputError, match="GPUFLEET_REPLICA_MODEL_SOURCE is not set"):
        replica_config(Settings())


def test_vllm_runs_its_openai_server_module_with_a_drain_timeout(monkeypatch, tmp_path):
    monkeypatch.setenv("GPUFLEET_REPLICA_MODEL_SOURCE", "./m")
    monkeypatch.setenv("GPUFLEET_REPLICA_SERVED_NAME", "tiny-llama")
    monkeypatch.setenv("GPUFLEET_REPLICA_DRAIN_TIMEOUT_S", "45")
    command = vllm_command(replica_config(Settings()), tmp_path)
    assert command[1:3] == ["-m", "vllm.entrypoints.openai.api_server"]
    args = dict(zip(command[3::2], command[4::2], strict=False))
    assert args["--model"] == str(tmp_path) and args["--served-model-name"] == "tiny-llama"
    assert args["--shutdown-timeout"] == "45" and args["--port"] == "8000" and args["--host"] == "0.0.0.0"
    assert "--max-model-len" not in args


def test_with_a_key_vllm_loads_the_middleware_that_guards_every_path(monkeypatch, tmp_path):
    import importlib

    from orchestrator.gateway.auth import RequireApiKey

    monkeypatch.setenv("GPUFLEET_REPLICA_MODEL_SOURCE", "./m")
    assert "--middleware" not in vllm_command(replica_config(Settings()), tmp_path)  # no key: nothing to check
    monkeypatch.setenv("VLLM_API_KEY", "gf-key")
    command = vllm_command(replica_config(Settings()), tmp_path)
    module, name = command[command.index("--middleware") + 1].rsplit(".", 1)  # as vLLM's loader splits it
    assert getattr(importlib.import_module(module), name) is RequireApiKey
    assert "gf-key" not in " ".join(command)  # the key travels in the environment only
