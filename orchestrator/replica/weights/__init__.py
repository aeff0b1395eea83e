"""Model weights for a replica: from object stores, the Hugging Face hub or a local path, cached and verified."""

from orchestrator.replica.weights.base import Checksum, ObjectStore, RemoteObject, WeightsError
from orchestrator.replica.weights.fetch import fetch_weights, local_source, sync

__all__ = ["Checksum", "ObjectStore", "RemoteObject", "WeightsError", "fetch_weights", "local_source", "sync"]
