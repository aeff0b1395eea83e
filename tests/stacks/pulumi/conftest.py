"""The Pulumi back end's tests need the optional `.[pulumi]` extra; without it they skip, saying so."""

from __future__ import annotations

import importlib.util

import pytest

MISSING = [m for m in ("pulumi", "pulumi_aws", "pulumi_gcp", "pulumi_azure_native", "pulumi_kubernetes")
           if importlib.util.find_spec(m) is None]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if MISSING:
        skip = pytest.mark.skip(reason=f"Pulumi extras not installed ({', '.join(MISSING)}): "
                                       ".venv/bin/pip install -c constraints.txt -e '.[pulumi]'")
        for item in items:
            if "tests/stacks/pulumi/" in str(item.path).replace("\\", "/"):
                item.add_marker(skip)


@pytest.fixture(scope="session")
def hybrid(tmp_path_factory: pytest.TempPathFactory):
    """environments/hybrid.yaml, loaded as both back ends load it."""
    from stacks.environment import load_environment
    from tests.conftest import ENVIRONMENTS

    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("GPUFLEET_HOME", str(tmp_path_factory.mktemp("home")))
        return load_environment(ENVIRONMENTS / "hybrid.yaml")


@pytest.fixture(scope="session")
def declared(hybrid):
    """What each provider's program declares for hybrid, under mocks; each program runs once a session."""
    from stacks.pulumi.mocked import declared_resources

    return {provider: declared_resources(hybrid, provider) for provider in ("aws", "gcp", "azure", "onprem")}
