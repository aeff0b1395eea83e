"""Measured capacity: vLLM's serving benchmark against a live replica, written as a capacity profile."""

from orchestrator.profiling.runner import ProfileResult, RateStep, measure_capacity, parse_rates

__all__ = ["ProfileResult", "RateStep", "measure_capacity", "parse_rates"]
