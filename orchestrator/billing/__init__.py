"""Billing data in FOCUS: importing providers' exports (to reconcile against the ledger) and exporting the ledger."""

from orchestrator.billing.exporter import export_focus
from orchestrator.billing.importer import ImportResult, import_focus

__all__ = ["ImportResult", "export_focus", "import_focus"]
