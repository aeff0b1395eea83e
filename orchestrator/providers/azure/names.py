"""The AKS agent pool name of a pool: one rule shared by the stacks that declare it and the scaler that sizes it."""

from __future__ import annotations

import hashlib
import re

AKS_POOL_NAME_LIMIT = 12


def aks_pool_name(name: str) -> str:
    """A valid AKS node pool name: 1-12 lower-case letters and digits, starting with a letter
    (a long name keeps its head and a 4-hex hash of the whole, so two pools never share one)."""
    cleaned = re.sub(r"[^a-z0-9]", "", name.lower())
    head = cleaned if cleaned[:1].isalpha() else f"p{cleaned}"
    if len(head) <= AKS_POOL_NAME_LIMIT:
        return head
    return head[:AKS_POOL_NAME_LIMIT - 4] + hashlib.sha256(name.encode()).hexdigest()[:4]
