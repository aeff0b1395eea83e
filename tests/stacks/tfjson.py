"""Reading synthesized Terraform JSON in tests."""

from __future__ import annotations


def resources(stack: dict, kind: str) -> list[dict]:
    """The resources of one Terraform type in a synthesized stack, in name order."""
    found = stack.get("resource", {}).get(kind, {})
    return [found[name] for name in sorted(found)]


def by_name(stack: dict, kind: str, field: str = "name") -> dict[str, dict]:
    """Resources of one type keyed by one of their fields (the cloud-side name, usually)."""
    return {r[field]: r for r in resources(stack, kind)}
