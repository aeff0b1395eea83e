"""Process-wide settings, read once from `GPUFLEET_*` environment variables.

Everything location-dependent lives here so no code or config names a machine's path.
Grouped by component; units are part of field names.
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


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

    @property
    def catalog_dir(self) -> Path:
        """Refreshed price catalogs, one CSV per provider; they win over the bundled copy."""
        return self.home / "catalog"

    @property
    def profiles_dir(self) -> Path:
        """Measured capacity profiles (one JSON per model x GPU); they win over estimates."""
        return self.home / "profiles"

    def state_dir(self, environment: str) -> Path:
        """Per-environment state: the default SQLite database, logs, the gateway key."""
        return self.home / "state" / environment


def load_settings() -> Settings:
    """Read settings from the environment now (tests change it between calls)."""
    return Settings()
