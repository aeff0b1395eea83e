"""Weighted records in an Amazon Route 53 hosted zone, through boto3.

One weighted record set per (record name, pool): `SetIdentifier` is the pool's name,
`Weight` its integer weight, the value its gateway (CNAME to a host name, A/AAAA to an
address), `TTL` the spec's `routing.dns.ttl`. `apply` reads the zone
(`ListResourceRecordSets`), writes only the sets that differ in one
`ChangeResourceRecordSets` batch per group of names (UPSERT; DELETE of the exact set read,
for a pool that left), then waits on `GetChange` until Route 53 reports the batch `INSYNC`.

Clients, retries and errors are the AWS provider's (`providers/aws/api.py`,
`providers/retry.py`): botocore's own retries off, throttling, 5xx and timeouts retried
with backoff, `GPUFLEET_AWS_ENDPOINT_URL` pointing them elsewhere. Two Route 53 codes are
read here first: `PriorRequestNotComplete` (a change to the same sets still under way) is
retried like throttling, and `NoSuchHostedZone` is the spec's `routing.dns.zone_id`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any, TypeVar

from orchestrator.errors import InputError, ProviderError
from orchestrator.providers.aws.api import client, session, translate_errors
from orchestrator.providers.errors import ProviderUnavailable
from orchestrator.providers.retry import Backoff, call_with_retries
from orchestrator.routes.base import Change, RouteSetter, Target, WeightedRecord, diff, fqdn
from orchestrator.settings import Settings
from orchestrator.spec.models import Route53Dns

logger = logging.getLogger(__name__)

T = TypeVar("T")

SIGNING_REGION = "us-east-1"  # Route 53 is global; its API is signed for us-east-1
BATCH_CHANGES = 200  # changes per ChangeResourceRecordSets call (Route 53 takes up to 1000 values)
INSYNC_POLL_S = 5.0
INSYNC_TIMEOUT_S = 300.0  # Route 53 documents propagation "generally within 60 seconds"
_RETRIED_CODES = {"PriorRequestNotComplete"}


@contextmanager
def route53_errors(where: str) -> Iterator[None]:
    """The AWS provider's error translation, with Route 53's own retryable and input codes read first."""
    from botocore.exceptions import ClientError

    with translate_errors(where):
        try:
            yield
        except ClientError as exc:
            error = exc.response.get("Error", {})
            if error.get("Code") in _RETRIED_CODES:
                raise ProviderUnavailable(f"{where}: {error.get('Message', '')} ({error.get('Code')})") from exc
            if error.get("Code") == "NoSuchHostedZone":
                raise InputError(f"{where}: {error.get('Message', 'no such hosted zone')}. To fix: set routing.dns.zone_id "
                                 "to a hosted zone these credentials can see (aws route53 list-hosted-zones)") from exc
            raise


def _code(exc: BaseException) -> str | None:
    """The AWS error code behind a translated error, if any."""
    cause = exc.__cause__
    response = getattr(cause, "response", None)
    return response.get("Error", {}).get("Code") if isinstance(response, dict) else None


def _target(raw: dict) -> Target:
    values = [r["Value"] for r in raw.get("ResourceRecords", [])] or [raw.get("AliasTarget", {}).get("DNSName", "")]
    return Target(raw["SetIdentifier"], values[0], int(raw["Weight"]), raw["Type"])


def _record_set(change: Change) -> dict:
    t = change.target
    return {"Name": change.name, "Type": t.type, "SetIdentifier": t.set_id, "Weight": t.weight, "TTL": change.ttl,
            "ResourceRecords": [{"Value": t.value}]}


class Route53Records(RouteSetter):
    """The weighted records under `dns.domain` in the hosted zone `dns.zone_id` (module docstring)."""

    def __init__(self, dns: Route53Dns, settings: Settings, backoff: Backoff | None = None, *,
                 poll_s: float = INSYNC_POLL_S, timeout_s: float = INSYNC_TIMEOUT_S) -> None:
        self.dns = dns
        self.backoff = backoff or Backoff.from_settings(settings)
        self.poll_s = poll_s
        self.timeout_s = timeout_s
        self.where = f"route53 zone {dns.zone_id}"
        self._route53 = client(session(), settings, "route53", SIGNING_REGION)

    def observe(self) -> list[WeightedRecord]:
        return self._weighted(self._record_sets())

    def apply(self, records: Sequence[WeightedRecord]) -> list[str]:
        held = self._record_sets()
        self._refuse_unweighted(records, held)
        changes = diff(records, self._weighted(held))
        if not changes:
            return []
        exact = {(fqdn(r["Name"]), r["Type"], r.get("SetIdentifier")): r for r in held}
        wanted = {fqdn(r.name): r for r in records}
        lines, submitted = [], []
        for batch in _batches(changes):
            change_id = self._send(batch, exact, [wanted[n] for n in dict.fromkeys(c.name for c in batch)])
            for change in batch:
                lines.append(change.describe(self.where))
                logger.info("%s", lines[-1])
            if change_id:
                submitted.append(change_id)
        for change_id in submitted:
            if not self._wait(change_id):
                lines.append(f"{self.where}: change {change_id} accepted but not INSYNC after {self.timeout_s:.0f} s; "
                             "Route 53 goes on propagating it")
                logger.warning("%s", lines[-1])
        return lines

    # --- calls ----------------------------------------------------------------------------------

    def _call(self, what: str, call: Callable[[], T]) -> T:
        return call_with_retries(call, backoff=self.backoff, translate=lambda: route53_errors(f"{self.where}: {what}"),
                                 what=f"{self.where}: {what}")

    def _record_sets(self) -> list[dict]:
        """Every record set of the zone (ListResourceRecordSets, page by page)."""
        sets: list[dict] = []
        start: dict[str, str] = {}
        while True:
            page: dict[str, Any] = self._call("ListResourceRecordSets", lambda: self._route53.list_resource_record_sets(
                HostedZoneId=self.dns.zone_id, **start))
            sets += page.get("ResourceRecordSets", [])
            if not page.get("IsTruncated"):
                return sets
            start = {"StartRecordName": page["NextRecordName"], "StartRecordType": page["NextRecordType"]}
            if page.get("NextRecordIdentifier"):
                start["StartRecordIdentifier"] = page["NextRecordIdentifier"]

    def _send(self, batch: list[Change], exact: dict[tuple, dict], wanted: list[WeightedRecord]) -> str | None:
        """One ChangeResourceRecordSets call; its change id, or None when a retried call had already been applied."""
        body = [{"Action": c.action,
                 "ResourceRecordSet": exact.get((c.name, c.target.type, c.target.set_id), _record_set(c))
                 if c.action == "DELETE" else _record_set(c)} for c in batch]
        try:
            answer = self._call("ChangeResourceRecordSets", lambda: self._route53.change_resource_record_sets(
                HostedZoneId=self.dns.zone_id, ChangeBatch={"Comment": "gpufleet routes", "Changes": body}))
        except ProviderError as exc:
            # A try that timed out may have been applied: its DELETE then finds nothing the next time.
            if _code(exc) != "InvalidChangeBatch" or diff(wanted, self.observe()):
                raise
            return None
        return answer["ChangeInfo"]["Id"]

    def _wait(self, change_id: str) -> bool:
        """Poll GetChange until INSYNC; False when `timeout_s` passed first."""
        for attempt in range(max(1, math.ceil(self.timeout_s / self.poll_s)) + 1):
            info = self._call("GetChange", lambda: self._route53.get_change(Id=change_id))["ChangeInfo"]
            if info["Status"] == "INSYNC":
                return True
            if attempt * self.poll_s >= self.timeout_s:
                break
            self.backoff.sleep(self.poll_s)
        return False

    # --- reading ----------------------------------------------------------------------------------

    def _under_domain(self, name: str) -> bool:
        domain = fqdn(self.dns.domain)
        return fqdn(name) == domain or fqdn(name).endswith("." + domain)

    def _weighted(self, held: list[dict]) -> list[WeightedRecord]:
        """The weighted sets under the domain, one WeightedRecord per name and TTL (sets of one name may differ)."""
        groups: dict[tuple[str, int], list[Target]] = {}
        for raw in held:
            if "Weight" in raw and "SetIdentifier" in raw and self._under_domain(raw["Name"]):
                groups.setdefault((fqdn(raw["Name"]), int(raw.get("TTL", 0))), []).append(_target(raw))
        return [WeightedRecord(name, ttl, tuple(sorted(targets))) for (name, ttl), targets in sorted(groups.items())]

    def _refuse_unweighted(self, records: Sequence[WeightedRecord], held: list[dict]) -> None:
        """A plain (or geolocation, latency...) record where a weighted one must go cannot be kept beside it."""
        for record in records:
            types = {t.type for t in record.targets}
            for raw in held:
                if fqdn(raw["Name"]) != fqdn(record.name) or "Weight" in raw:
                    continue
                if raw["Type"] in types or "CNAME" in types | {raw["Type"]}:
                    raise InputError(f"{self.where}: {record.name} already has a {raw['Type']} record that is not "
                                     "weighted; Route 53 cannot hold it beside gpufleet's weighted records. To fix: "
                                     "delete it, or choose another routing.dns.record or routing.dns.domain")


def _batches(changes: list[Change]) -> Iterator[list[Change]]:
    """Changes in batches of at most BATCH_CHANGES, never splitting one name (each batch is atomic)."""
    batch: list[Change] = []
    for name in dict.fromkeys(c.name for c in changes):
        of_name = [c for c in changes if c.name == name]
        if batch and len(batch) + len(of_name) > BATCH_CHANGES:
            yield batch
            batch = []
        batch += of_name
    if batch:
        yield batch
