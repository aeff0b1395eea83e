"""What a route is wherever it is realized, and the one interface every DNS service sits behind.

A route is a weighted record: one DNS name (per user region, and per model unless the
spec's template leaves the model out) whose answers point at the pools' gateways in
integer weights. `RouteSetter` is what Route 53 implements now and Cloud DNS or Traffic
Manager would implement later; `diff` is the part they share, so that "idempotent: change
only what differs" means the same for every service.
"""

from __future__ import annotations

import ipaddress
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Literal

RecordType = Literal["CNAME", "A", "AAAA"]


def record_type(target: str) -> RecordType:
    """A for an IPv4 address, AAAA for IPv6, else CNAME (a host name)."""
    try:
        address = ipaddress.ip_address(target)
    except ValueError:
        return "CNAME"
    return "A" if address.version == 4 else "AAAA"


def fqdn(name: str) -> str:
    """`name` lower-case with one trailing dot, as DNS services list names."""
    return name.strip().lower().rstrip(".") + "."


@dataclass(frozen=True, order=True)
class Target:
    """One answer of a weighted record: the pool it stands for (its set identifier), where it points, its weight."""

    set_id: str
    value: str
    weight: int
    type: RecordType = "CNAME"


@dataclass(frozen=True)
class WeightedRecord:
    """A DNS name and every weighted answer it should give (or gives); `targets` sorted by set id."""

    name: str
    ttl: int
    targets: tuple[Target, ...]

    def weights(self) -> dict[str, int]:
        return {t.set_id: t.weight for t in self.targets}


@dataclass(frozen=True)
class Change:
    """One record set to write (UPSERT) or remove (DELETE); `before` is what the service held."""

    action: Literal["UPSERT", "DELETE"]
    name: str
    target: Target
    ttl: int
    before: Target | None = None
    before_ttl: int | None = None

    def describe(self, where: str) -> str:
        """A line for the operator: what changed, from what to what."""
        t, b = self.target, self.before
        if self.action == "DELETE":
            return f"{where}: {self.name} {t.type} {t.set_id}: deleted (was weight {t.weight} -> {t.value})"
        if b is None:
            return f"{where}: {self.name} {t.type} {t.set_id}: created, weight {t.weight} -> {t.value}"
        was = [f"weight {b.weight}" if b.weight != t.weight else "",
               f"-> {b.value}" if b.value != t.value else "",
               f"ttl {self.before_ttl}" if self.before_ttl != self.ttl else ""]
        return (f"{where}: {self.name} {t.type} {t.set_id}: weight {t.weight} -> {t.value}"
                f" (was {', '.join(w for w in was if w)})")


def _same_value(a: str, b: str) -> bool:
    return a.lower().rstrip(".") == b.lower().rstrip(".")


def diff(desired: Iterable[WeightedRecord], observed: Iterable[WeightedRecord]) -> list[Change]:
    """The changes that make each desired name give exactly its targets, and nothing for names already right.

    Only names in `desired` are touched: an answer under such a name that no desired target
    has (a pool that left the plan) is deleted; one whose type must change (a gateway moved
    from a host name to an address) is deleted and written anew. Deletes come first, so a
    batch applied in order never holds a CNAME beside another type.
    """
    held: dict[str, list[tuple[Target, int]]] = {}
    for record in observed:
        for target in record.targets:
            held.setdefault(fqdn(record.name), []).append((target, record.ttl))
    deletes: list[Change] = []
    upserts: list[Change] = []
    for record in desired:
        name = fqdn(record.name)
        now = {t.set_id: (t, ttl) for t, ttl in held.get(name, [])}
        wanted = {t.set_id for t in record.targets}
        for set_id, (target, ttl) in sorted(now.items()):
            if set_id not in wanted:
                deletes.append(Change("DELETE", name, target, ttl))
        for target in record.targets:
            before, before_ttl = now.get(target.set_id, (None, None))
            if before is not None and before.type != target.type:
                deletes.append(Change("DELETE", name, before, before_ttl or record.ttl))
                before = before_ttl = None
            if (before is not None and before.weight == target.weight and _same_value(before.value, target.value)
                    and before_ttl == record.ttl):
                continue
            upserts.append(Change("UPSERT", name, target, record.ttl, before, before_ttl))
    return deletes + upserts


class RouteSetter(ABC):
    """A DNS service holding weighted records: read them, and make named records hold what a plan wants."""

    @abstractmethod
    def observe(self) -> list[WeightedRecord]:
        """The weighted records the service holds now under the configured domain."""

    @abstractmethod
    def apply(self, records: Sequence[WeightedRecord]) -> list[str]:
        """Make each record's name give exactly its targets; write only what differs.

        Returns one human-readable line per change made ([] when everything already held).
        Names not in `records` are left alone.
        """
