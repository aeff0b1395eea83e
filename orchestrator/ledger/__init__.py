"""The spend ledger: what ran where, from when to when, at what price, serving how many tokens.

Facts are recorded as they happen (`record_placement`, `record_prices`, `record_tokens` /
`collect_tokens`); hourly entries are accrued from them (`refresh_entries`) and summarized
for the dashboard and reports (`spend_summary`). Tables live in the state database
(`open_ledger`).
"""

from orchestrator.ledger.entries import refresh_entries
from orchestrator.ledger.rates import PoolRate, current_rates
from orchestrator.ledger.record import record_placement, record_prices
from orchestrator.ledger.store import open_ledger
from orchestrator.ledger.summary import SpendSummary, Window, spend_summary
from orchestrator.ledger.tokens import ReplicaTokens, TokenScrape, collect_tokens, record_tokens

__all__ = [
    "PoolRate", "ReplicaTokens", "SpendSummary", "TokenScrape", "Window", "collect_tokens", "current_rates", "open_ledger",
    "record_placement", "record_prices", "record_tokens", "refresh_entries", "spend_summary",
]
