"""Whether a model's ready pods carry a SetTraffic's weights: Kubernetes' only traffic split here is the pod ratio.

The model's Service balances over all of its ready pods, stable and canary, so a version's share of
the requests is its share of those pods (no mesh, no weighted gateway). SetTraffic therefore changes
nothing: it holds when, for every version the weights name or a ready pod runs,

    | ready pods of the version  -  its weight / all weights * all ready pods |  <=  1

and a version with a positive weight has at least one ready pod. A pod without a version label (its
Deployment was made before versions) counts as the one weighted version no labelled pod runs, when
there is exactly one such. Otherwise SetTraffic is a ProviderError saying which version is off: the
rollout sets the canary's pod count so that it holds (docs/rollouts-kubernetes.md).
"""

from __future__ import annotations

from collections import Counter

from orchestrator.errors import InputError

UNLABELLED = "(no version label)"


def weights_problem(weights: dict[str, float], ready: Counter[str | None]) -> str | None:
    """Why the ready pods per version (`ready`; None: unlabelled) do not carry `weights` within one pod, else None."""
    total_weight = sum(weights.values())
    if any(w < 0 for w in weights.values()) or total_weight <= 0:
        raise InputError(f"traffic weights {weights}: allowed: weights >= 0, at least one positive")
    pods: Counter[str] = Counter({version: n for version, n in ready.items() if version is not None})
    if ready.get(None):
        unclaimed = [v for v, w in weights.items() if w > 0 and not pods[v]]
        pods[unclaimed[0] if len(unclaimed) == 1 else UNLABELLED] += ready[None]
    total = sum(pods.values())
    off = []
    for version in sorted(set(weights) | set(pods)):
        share = weights.get(version, 0.0) / total_weight
        if abs(pods[version] - share * total) > 1 + 1e-9 or (share > 0 and not pods[version]):
            off.append(f"{version} has {pods[version]} of {total} ready pods for {share:.0%} of the traffic")
    return "; ".join(off) or None
