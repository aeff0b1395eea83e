"""Process-wide settings, read once from `GPUFLEET_*` environment variables.

Everything location-dependent lives here so no code or config names a machine's path.
Grouped by component; units are part of field names.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from orchestrator.errors import InputError
from orchestrator.spec.models import NAME_PATTERN


class Settings(BaseSettings):
    """gpufleet settings; each field maps to `GPUFLEET_<FIELD>`."""

    model_config = SettingsConfigDict(env_prefix="GPUFLEET_", extra="ignore")

    home: Path = Field(
        default=Path.home() / ".gpufleet",
        description="Root of gpufleet's own files: per-environment state, refreshed price "
        "catalogs, measured capacity profiles, logs. Default ~/.gpufleet.",
    )
    environments_dir: Path = Field(
        default=Path("environments"),
        description="Where `--env NAME` looks for NAME.yaml. Relative paths are taken "
        "from the current directory.",
    )
    shared_data: Path = Field(
        default=Path(__file__).resolve().parent.parent.parent / "shared" / "data",
        description="The public data sets the bundled catalogs are built from "
        "(maintainers only; users never need it). Default: ../shared/data beside the repo.",
    )

    # catalog refresh: price API endpoints (a proxy, a mirror, or a test's fakes)
    aws_endpoint_url: str | None = Field(
        None, description="One endpoint for both AWS Pricing and EC2 (e.g. a moto server). Unset: AWS's own.")
    gcp_billing_endpoint: str | None = Field(
        None, description="Cloud Billing Catalog API endpoint; an http:// URL is called without "
        "credentials. Unset: cloudbilling.googleapis.com.")
    gcp_api_key: SecretStr | None = Field(
        None, description="API key for the Cloud Billing Catalog API. Unset: Application Default Credentials.")
    azure_prices_url: str | None = Field(
        None, description="Azure Retail Prices API URL. Unset: https://prices.azure.com/api/retail/prices.")

    # replicas: what the entrypoint every image runs (`python -m orchestrator.replica`) serves
    replica_model_source: str | None = Field(
        None, description="Weights: s3://bucket/prefix, gs://bucket/prefix, az://account/container/prefix, "
        "a Hugging Face id, or a local path (absolute, ./, ~/ or ${GPUFLEET_HOME}/...).")
    replica_served_name: str | None = Field(
        None, description="Model name clients ask for (the spec's model name). Unset: the source's last path part.")
    replica_version: str | None = Field(
        None, description="The model release the replica runs; it also answers to `<served name>@<version>`, the name the local gateway routes a version by.")
    replica_tensor_parallel_size: int = Field(1, ge=1, le=16, description="GPUs per replica (vLLM --tensor-parallel-size).")
    replica_max_model_len: int | None = Field(None, gt=0, description="Longest context served, tokens. Unset: the model's own.")
    replica_host: str = Field("0.0.0.0", description="Address vLLM listens on (containers: all; local replicas: 127.0.0.1).")
    replica_port: int = Field(8000, ge=1, le=65535, description="Port of vLLM's OpenAI server.")
    replica_drain_timeout_s: int = Field(
        30, ge=0, description="On SIGTERM, how long in-flight requests may finish before they are aborted "
        "(vLLM --shutdown-timeout). Keep below the pod's terminationGracePeriodSeconds.")
    replica_vllm_args: str = Field("", description="Extra vLLM server arguments, shell-quoted (e.g. '--dtype bfloat16').")
    weights_cache_dir: Path | None = Field(
        None, description="Where fetched weights are kept (resumable, checksummed). Unset: GPUFLEET_HOME/weights.")

    # gateway (vllm-router in front of a site's replicas) and the local provider
    api_key: SecretStr | None = Field(
        None, description="API key clients must send to the gateway. Unset: one is generated once per environment "
        "and kept in its state directory (mode 0600).")
    gateway_policy: str = Field("round_robin", description="vllm-router load-balancing policy (--policy).")
    rollout_prometheus_url: str | None = Field(
        None, description="Prometheus that scrapes the replicas (with their version label, docs/rollouts-kubernetes.md): where `rollout` reads each version's figures. Unset: the local gateway and replicas.")
    replica_ready_timeout_s: float = Field(
        600.0, gt=0, description="How long `up` waits for replicas to load and pass /health before failing.")
    local_kv_cache_gib: int = Field(1, ge=1, description="KV cache per local CPU replica, GiB (VLLM_CPU_KVCACHE_SPACE).")
    local_replica_command: str = Field(
        "", description="What each local replica runs, shell-quoted; it gets the GPUFLEET_REPLICA_* variables and "
        "must serve /health on GPUFLEET_REPLICA_PORT. Unset: the replica entrypoint (`python -m orchestrator.replica`, vLLM).")

    # spend: the ledger, billing imports, `orchestrator dashboard` and `spend report`
    dashboard_host: str = Field(
        "127.0.0.1", description="Address the dashboard binds. Anything but loopback requires the dashboard token.")
    dashboard_port: int = Field(8765, ge=0, le=65535, description="Port of the dashboard (0: any free port).")
    dashboard_token: SecretStr | None = Field(
        None, description="Token the dashboard requires when bound beyond loopback (`?token=` or "
        "`Authorization: Bearer`). Unset: one is generated per run and shown once.")
    dashboard_refresh_s: int = Field(60, ge=0, description="How often the served page reloads itself, seconds; 0: never.")
    spend_window_days: int = Field(30, ge=1, description="Default window of the dashboard and `spend report`, days back from now.")
    spend_scrape_interval_s: float = Field(
        60.0, gt=0, description="How often a running dashboard collects the replicas' token counters into the ledger, seconds.")
    billing_tolerance_ratio: float = Field(
        0.05, ge=0, description="A provider-day whose billed cost is within this ratio of the ledger counts as reconciled.")

    # providers: cloud node pools and Kubernetes deployments that `rebalance` drives (orchestrator/providers)
    provider_retry_attempts: int = Field(
        5, ge=1, description="Tries per cloud or Kubernetes call; throttling (429), 5xx and timeouts are retried.")
    provider_backoff_s: float = Field(
        1.0, gt=0, description="Wait after a call's first failed try, seconds; doubles per try (with jitter).")
    provider_backoff_max_s: float = Field(30.0, gt=0, description="Longest wait between two tries of a call, seconds.")
    provider_call_timeout_s: float = Field(
        30.0, gt=0, description="Longest one cloud or Kubernetes API request may take before it counts as failed, seconds.")
    provider_poll_s: float = Field(
        15.0, gt=0, description="How soon to look again at a resize or a rollout still under way (StepPending), seconds.")
    gcp_project: str | None = Field(None, description="GCP project of the GKE clusters and instance groups.")
    gcp_container_endpoint: str | None = Field(
        None, description="GKE API endpoint; an http:// URL (a local fake) is called without credentials. "
        "Unset: container.googleapis.com.")
    gcp_compute_endpoint: str | None = Field(
        None, description="Compute Engine API endpoint; http:// as above. Unset: compute.googleapis.com.")
    azure_subscription_id: str | None = Field(None, description="Azure subscription of the AKS clusters and scale sets.")
    azure_resource_group: str | None = Field(
        None, description="Resource group of the AKS clusters and scale sets. Unset: `rg-<cluster>` for AKS "
        "(the stacks' convention); required for scale sets.")
    azure_arm_endpoint: str | None = Field(None, description="Azure Resource Manager endpoint. Unset: management.azure.com.")
    azure_access_token: SecretStr | None = Field(
        None, description="A bearer token for Resource Manager (e.g. `az account get-access-token`). "
        "Unset: DefaultAzureCredential (environment, workload identity, managed identity, Azure CLI).")
    kubeconfig: Path | None = Field(
        None, description="Kubeconfig whose contexts are the pools' `cluster` names. Unset: $KUBECONFIG or ~/.kube/config.")
    kubernetes_image: str | None = Field(
        None, description="Replica image the Deployments run (images/vllm, pushed to your registry, pinned by digest).")
    kubernetes_allow_image_tag: bool = Field(
        False, description="Accept a replica image by tag (what it runs may change under the same name). Unset: a digest is required.")

    @property
    def catalog_dir(self) -> Path:
        """Refreshed price catalogs, one CSV per provider; they win over the bundled copy."""
        return self.home / "catalog"

    @property
    def profiles_dir(self) -> Path:
        """Measured capacity profiles (one JSON per model x GPU); they win over estimates."""
        return self.home / "profiles"

    @property
    def weights_dir(self) -> Path:
        """Fetched model weights, one directory per source."""
        return self.weights_cache_dir or self.home / "weights"

    def state_dir(self, environment: str) -> Path:
        """Per-environment state: the default SQLite database, logs, the gateway key.

        `environment` must be a name (as the spec's `environment:` is), so the directory is always
        one level below `home/state`: never `..`, never a path of its own."""
        if not re.fullmatch(NAME_PATTERN, environment) or len(environment) > 63:
            raise InputError(f"'{environment}' is not an environment name; allowed: 1-63 lower-case letters, digits, "
                             "'.', '_' and '-', starting and ending with a letter or digit. To fix: set `environment:` "
                             "in the spec, or pass --env with such a name")
        return self.home / "state" / environment


PRIVATE_UMASK = 0o077
"""Files made 0600 and directories 0700: the state database and its WAL, logs, plans, keys and caches under
GPUFLEET_HOME are the owner's alone (the database holds the ledger, logs may hold prompts)."""


def keep_files_private() -> None:
    """Make every file this process and its children (supervisor, vLLM, router, SQLite's WAL) create owner-only.

    A umask, not a chmod per file: several of those files are made by libraries and child processes
    that take no mode. Called once by each gpufleet entry point."""
    os.umask(PRIVATE_UMASK)


def load_settings() -> Settings:
    """Read settings from the environment now (tests change it between calls)."""
    return Settings()
