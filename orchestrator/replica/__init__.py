"""One replica: the entrypoint every vLLM image runs, its weights fetching, and the tiny test model."""
