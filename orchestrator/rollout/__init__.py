"""`orchestrator rollout`: move a model to a new version make-before-break, traffic in steps, gated by its metrics."""
