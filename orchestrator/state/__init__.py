"""The state database: what runs where, as providers recorded it (SQLAlchemy; SQLite by default)."""

from orchestrator.state.db import StateStore, open_state, state_url
from orchestrator.state.tables import Base, DesiredReplicas, GatewayRecord, ReplicaRecord, ReplicaStatus, SupervisorRecord

__all__ = [
    "Base", "DesiredReplicas", "GatewayRecord", "ReplicaRecord", "ReplicaStatus", "StateStore", "SupervisorRecord",
    "open_state", "state_url",
]
