"""`python -m stacks --engine pulumi`: every stack's program run under mocks, written beside each other.

Per stack `<outdir>/stacks/<env>-<provider>/`: `resources.json` (what the program declared:
type, name, inputs, provider, dependencies, ignoreChanges) and `cdk.tf.json`, the same
resources as Terraform JSON (`stacks.pulumi.document`), where `orchestrator policy check
--stacks <outdir>/stacks` runs the Terraform rules over them. Nothing is deployed or previewed
against a cloud: that is `pulumi preview` in stacks/pulumi/ (docs/stacks.md).
"""

from __future__ import annotations

import json
from pathlib import Path

from stacks.environment import Environment, stack_name
from stacks.pulumi.document import terraform_document
from stacks.pulumi.mocked import declared_resources

DEFAULT_OUTDIR = Path("pulumi.out")


def render(environments: list[Environment], outdir: Path) -> dict[str, int]:
    """Write every stack of the environments; the number of resources each declared, by stack."""
    counts = {}
    for environment in environments:
        for provider in environment.by_provider():
            name = stack_name(environment.name, provider)
            declared = declared_resources(environment, provider)
            directory = outdir / "stacks" / name
            directory.mkdir(parents=True, exist_ok=True)
            (directory / "resources.json").write_text(json.dumps([d.to_dict() for d in declared], indent=2, sort_keys=True) + "\n")
            (directory / "cdk.tf.json").write_text(json.dumps(terraform_document(declared), indent=2, sort_keys=True) + "\n")
            counts[name] = len(declared)
    return counts
