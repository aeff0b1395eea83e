"""The spend dashboard: a web page of the ledger (server-side SVG), Prometheus metrics, and the same page as a file."""

from orchestrator.dashboard.page import render_page
from orchestrator.dashboard.server import Dashboard, DashboardServer, TokenCollector, dashboard_token

__all__ = ["Dashboard", "DashboardServer", "TokenCollector", "dashboard_token", "render_page"]
