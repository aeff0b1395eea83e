"""Provider GPU names mapped onto gpufleet's canonical GPU names.

Each cloud spells GPUs its own way ("NVIDIA A10G", "A100-80GB", "H100-MEGA",
"Standard_NC24ads_A100_v4"). Everything downstream (capacity profiles, the planner,
policies) keys on one canonical name, so the mapping lives in exactly one place.
"""

from __future__ import annotations

import re

CANONICAL_GPUS: tuple[str, ...] = (
    "T4", "L4", "A10", "A10G", "L40", "L40S", "V100", "V100-32GB",
    "A100", "A100-80GB", "H100", "H200", "B200", "MI300X",
)

# Provider spellings that differ from the canonical name (compared upper-case,
# after dropping an "NVIDIA "/"AMD " vendor prefix).
_ALIASES = {
    "H100-MEGA": "H100",  # GCP a3-megagpu: same H100 SXM, more network
    "H100-80GB": "H100",
    "A100-40GB": "A100",
    "L40S-48GB": "L40S",
    "B200 BLACKWELL": "B200",
}

# AWS prices instance types, not GPUs: the family fixes the GPU model.
AWS_FAMILY_GPU = {
    "g4dn": "T4", "g5": "A10G", "g6": "L4", "g6e": "L40S", "gr6": "L4",
    "p3": "V100", "p3dn": "V100-32GB", "p4d": "A100", "p4de": "A100-80GB",
    "p5": "H100", "p5e": "H200", "p5en": "H200", "p6-b200": "B200",
}


def canonical_gpu(name: str) -> str | None:
    """The canonical name for a provider's GPU name, or None for GPUs gpufleet does not serve on."""
    cleaned = re.sub(r"^(NVIDIA|AMD)\s+", "", name.strip(), flags=re.IGNORECASE).upper()
    if cleaned in _ALIASES:
        return _ALIASES[cleaned]
    for gpu in CANONICAL_GPUS:
        if cleaned == gpu.upper():
            return gpu
    return None


def aws_instance_gpu(instance_type: str) -> str | None:
    """The GPU of an AWS instance type from its family (`p5.48xlarge` -> H100)."""
    family = instance_type.split(".", 1)[0]
    return AWS_FAMILY_GPU.get(family)
