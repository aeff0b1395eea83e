"""The state database: what runs where, as providers recorded it (SQLAlchemy; SQLite by default)."""

from orchestrator.state.db import StateStore, open_state, state_url
from orchestrator.state.tables import (
    AsleepReplicas, Base, CanaryReplicas, DesiredReplicas, GatewayRecord, ReplicaRecord, ReplicaStatus, SupervisorRecord, TrafficWeights,
)

__all__ = [
    "AsleepReplicas", "Base", "CanaryReplicas", "DesiredReplicas", "GatewayRecord", "ReplicaRecord", "ReplicaStatus", "StateStore", "SupervisorRecord",
    "TrafficWeights", "open_state", "state_url",
]
