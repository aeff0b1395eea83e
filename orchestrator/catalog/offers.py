"""The price catalog's row type and the query a user or planner runs against it.

An offer is one instance type in one region (or zone) of one provider, with the GPUs it
carries and what an hour of it costs on each capacity market. Bundled offers ship with
the package; refreshed offers (per provider, with their own as-of date) replace the
bundled ones of that provider.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Provider = Literal["aws", "gcp", "azure", "onprem", "local"]
CLOUD_PROVIDERS: tuple[str, ...] = ("aws", "gcp", "azure")
PRICE_FIELDS: tuple[str, ...] = ("on_demand_per_hour", "spot_per_hour", "reserved_per_hour")


class PriceOffer(BaseModel):
    """One priced instance type in one place; prices are USD per instance-hour."""

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False)  # NaN/inf are never prices

    provider: Provider
    region: str
    zone: str | None = Field(None, description="Zone (GCP zone, AWS AZ id) when priced per zone.")
    instance_type: str
    gpu: str = Field(description="Canonical GPU name, e.g. H100, A100-80GB, L4 (see catalog.gpu_names).")
    gpu_count: int = Field(gt=0)
    gpu_memory_gb: float = Field(gt=0, description="Memory of one GPU, GB (10^9 bytes).")
    vcpus: float | None = Field(None, gt=0)
    memory_gb: float | None = Field(None, gt=0, description="Host memory, GiB as the provider states it.")
    on_demand_per_hour: float | None = Field(None, gt=0, description="None: no such market (never 0).")
    spot_per_hour: float | None = Field(None, gt=0)
    reserved_per_hour: float | None = Field(None, gt=0, description="1-year reserved, $/h equivalent.")
    as_of: dt.date
    source: str = Field(description="Where the prices come from (data set or API).")

    def price(self, capacity: str) -> float | None:
        """Price per hour on a capacity market (on_demand, spot, reserved); None if not offered."""
        return {
            "on_demand": self.on_demand_per_hour,
            "spot": self.spot_per_hour,
            "reserved": self.reserved_per_hour,
        }.get(capacity)

    @property
    def anomalies(self) -> list[str]:
        """Data-quality flags a user should see before trusting this row."""
        flags = []
        if self.spot_per_hour is not None and self.on_demand_per_hour is not None:
            if self.spot_per_hour > self.on_demand_per_hour:
                flags.append("spot above on-demand")
        if self.on_demand_per_hour is None and self.spot_per_hour is None and self.reserved_per_hour is None:
            flags.append("no price")
        return flags
