"""`orchestrator policy ...`: Rego guardrails over the synthesized stacks and the plan."""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from orchestrator.cli.common import EnvOption, FormatOption, OutputFormat, SpecOption, console, errors, print_json, spec_path

app = typer.Typer(help="Policy-as-code: Rego guardrails over synthesized stacks and plans (docs/policies.md).", no_args_is_help=True)


class RuleSet(str, enum.Enum):
    terraform = "terraform"
    placement = "placement"


PlanOption = Annotated[Path | None, typer.Option("--plan", help="Placement JSON to check (default: the latest stored plan, else plan now).", dir_okay=False)]
StacksOption = Annotated[Path | None, typer.Option("--stacks", help="Directory of synthesized stacks (<env>-<provider>/cdk.tf.json), read as is (default: cdktf.out/stacks, synthesized when stale).", file_okay=False)]


@app.command()
def check(
    env: EnvOption = None,
    spec: SpecOption = None,
    plan: PlanOption = None,
    stacks: StacksOption = None,
    only: Annotated[RuleSet | None, typer.Option("--only", help="Check one rule set: terraform (stacks) or placement (plan).")] = None,
    output: FormatOption = OutputFormat.table,
) -> None:
    """Run the terraform rules over the environment's synthesized stacks and the placement
    rules over its plan.

    Exit 0 when no deny rule fires (warnings are shown), 1 when one does, 2 when the
    policies, the spec or an input cannot be read.
    """
    from orchestrator.policy import check_environment
    from orchestrator.spec import load_spec

    path = spec_path(env, spec)
    report = check_environment(load_spec(path), path, Path.cwd(), plan_file=plan, stacks_dir=stacks,
                               only=only.value if only else None)
    if output is OutputFormat.json:
        print_json(report.to_dict())
    else:
        for document in report.documents:
            console.print(f"[dim]checked {document.namespace} {document.name}: {escape(document.source)}[/]", highlight=False, soft_wrap=True)
        for v in report.violations:
            style = "red" if v.severity == "deny" else "yellow"
            console.print(f"[{style}]{v.severity.upper()}[/] {escape(v.document)}: {escape(v.message)}", highlight=False, soft_wrap=True)
        verdict = "[red]✗ blocked[/]" if report.denials else "[green]✓ passed[/]"
        console.print(f"{verdict}: {len(report.denials)} denials, {len(report.warnings)} warnings "
                      f"over {len(report.documents)} documents of '{report.environment}'.")
    if report.denials:
        raise typer.Exit(1)


@app.command()
def test(
    paths: Annotated[list[Path] | None, typer.Argument(help="Policy directories (default: policies).", file_okay=False)] = None,
    output: FormatOption = OutputFormat.table,
) -> None:
    """Run the Rego unit tests (`test_*` rules in `*_test.rego`) and report policy lines no test reaches.

    Exit 0 when every test passes and every rule line is covered, 1 otherwise.
    """
    from orchestrator.policy import PolicySet

    run = PolicySet(paths or [Path("policies")], tests=True).run_tests()
    ok = not (run.failed or run.uncovered or run.unreached)
    if output is OutputFormat.json:
        print_json({"passed": ok, "counts": {"passed": len(run.passed), "failed": len(run.failed)},
                    "tests": [{"file": t.file, "test": f"{t.package}.{t.rule}", "passed": True} for t in run.passed]
                    + [{"file": t.file, "test": f"{t.package}.{t.rule}", "passed": False, "reason": reason} for t, reason in run.failed],
                    "uncovered": run.uncovered, "unreached": list(run.unreached)})
        if not ok:
            raise typer.Exit(1)
        return
    for test, reason in run.failed:
        console.print(f"[red]FAIL[/] {escape(test.file)}: {test.package}.{test.rule}: {escape(reason)}", highlight=False, soft_wrap=True)
    for file, lines in run.uncovered.items():
        console.print(f"[yellow]UNCOVERED[/] {escape(file)}: lines {', '.join(map(str, lines))}", highlight=False, soft_wrap=True)
    for file in run.unreached:
        console.print(f"[yellow]UNCOVERED[/] {escape(file)}: no test reaches it", highlight=False, soft_wrap=True)
    console.print(f"{len(run.passed)} passed, {len(run.failed)} failed")
    if not ok:
        raise typer.Exit(1)


@app.command()
def export(
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory to write data.json and placement.json into.", file_okay=False)],
    env: EnvOption = None,
    spec: SpecOption = None,
    plan: PlanOption = None,
    output: FormatOption = OutputFormat.table,
) -> None:
    """Write the rules' data (data.json) and the plan as they read it (placement.json), to run
    the same policies under conftest or OPA:

        conftest test --all-namespaces -p policies -d OUT/data.json OUT/placement.json cdktf.out/stacks/ENV-*/cdk.tf.json
    """
    from orchestrator.policy.check import conftest_inputs
    from orchestrator.spec import load_spec

    path = spec_path(env, spec)
    data, document = conftest_inputs(load_spec(path), path, Path.cwd(), plan)
    out.mkdir(parents=True, exist_ok=True)
    (out / "data.json").write_text(json.dumps(data, indent=2) + "\n")
    (out / "placement.json").write_text(json.dumps(document.content, indent=2) + "\n")
    if output is OutputFormat.json:
        print_json({"data": str(out / "data.json"), "placement": str(out / "placement.json"), "plan": document.source})
        return
    errors.print(f"wrote {out / 'data.json'} and {out / 'placement.json'} (plan: {document.source})")
