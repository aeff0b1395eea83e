"""Capacity profiles: GPUs per replica and sustainable requests/s per (model, GPU type).

Estimates come from a calibrated performance model (`perf_model`, docs/capacity.md);
measured profiles from `orchestrator profile` override them.
"""

from orchestrator.profiles.architectures import Architecture, architecture, known_architectures
from orchestrator.profiles.capacity import (
    CapacityEstimate,
    CapacityProfile,
    Slo,
    TokenMix,
    estimate_capacity,
    gpus_per_replica,
    load_measured_profile,
    profile_path,
    MixCapacity,
    best_mix_capacity,
    replica_capacity,
    save_measured_profile,
)
from orchestrator.profiles.perf_model import Calibration, ReplicaModel, bundled_calibration

__all__ = [
    "Architecture",
    "Calibration",
    "CapacityEstimate",
    "CapacityProfile",
    "ReplicaModel",
    "Slo",
    "TokenMix",
    "architecture",
    "bundled_calibration",
    "estimate_capacity",
    "gpus_per_replica",
    "known_architectures",
    "load_measured_profile",
    "profile_path",
    "MixCapacity",
    "best_mix_capacity",
    "replica_capacity",
    "save_measured_profile",
]
