"""`python -m stacks`: synthesize the stacks of every environment (or those named) into cdktf.out.

This is also the app `cdktf.json` names, so `npx cdktn synth` runs exactly this. Bad
input prints the orchestrator's located messages and exits 2, never a jsii traceback.
`--engine pulumi` runs the Pulumi programs of the same stacks under Pulumi's mocks instead
(no CLI, no plugins) and writes what they declare into pulumi.out (`stacks.pulumi.render`).
`--backend local` (or GPUFLEET_STACKS_BACKEND=local, which reaches the app through `npx cdktn
synth|diff`) keeps every stack's state in a local file, to try the stacks with no state bucket.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

# The jsii kernel warns on every start that Node 20 is past its end of life; Debian's node
# is what we have, and the warning would drown the output (set the variable to see it).
os.environ.setdefault("JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION", "20")

from orchestrator.cli.common import spec_path  # noqa: E402  (same --env/--spec resolution and errors as the CLI)
from orchestrator.errors import GpufleetError, InputError  # noqa: E402
from orchestrator.settings import load_settings  # noqa: E402


BACKENDS = ("spec", "local")
BACKEND_VARIABLE = "GPUFLEET_STACKS_BACKEND"


def _arguments(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m stacks", description=__doc__.splitlines()[0])
    parser.add_argument("--env", "-e", action="append", default=[], metavar="NAME",
                        help="environment (environments/NAME.yaml); repeatable; default: every environment")
    parser.add_argument("--spec", action="append", default=[], type=Path, metavar="PATH", help="a fleet spec file; repeatable")
    parser.add_argument("--outdir", "-o", help="output directory (default: $CDKTF_OUTDIR as set by the CLI, else cdktf.out; "
                                                  "pulumi.out with --engine pulumi)")
    parser.add_argument("--engine", choices=("cdktn", "pulumi"), default="cdktn",
                        help="cdktn: synthesize Terraform JSON (default); pulumi: run the Pulumi programs under mocks")
    parser.add_argument("--backend", choices=BACKENDS, default=os.environ.get(BACKEND_VARIABLE) or "spec",
                        help=f"where the stacks keep their state: spec (each cloud's, as stacks.state names it; default) "
                             f"or local (a file per stack, to try synth and diff without them); default from {BACKEND_VARIABLE}")
    args = parser.parse_args(argv)
    if args.backend not in BACKENDS:
        parser.error(f"{BACKEND_VARIABLE}={args.backend!r} is not a backend; allowed: {', '.join(BACKENDS)}")
    return args


def _spec_files(args: argparse.Namespace) -> list[Path]:
    if not args.env and not args.spec:
        directory = load_settings().environments_dir
        files = sorted(directory.glob("*.yaml"))
        if not files:
            raise InputError(f"no environments in {directory}. To fix: pass --spec PATH or set GPUFLEET_ENVIRONMENTS_DIR")
        return files
    return [spec_path(name, None) for name in args.env] + [spec_path(None, path) for path in args.spec]


def main(argv: list[str] | None = None) -> int:
    args = _arguments(argv)
    try:
        files = _spec_files(args)
        if args.engine == "pulumi":
            return _render_pulumi(files, Path(args.outdir) if args.outdir else None)
        from stacks.app import build_app, load_environment, stack_name  # after argument errors: importing cdktn starts node

        environments = [load_environment(path) for path in files]
        app = build_app(environments, args.outdir, local_state=args.backend == "local")
        app.synth()
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except GpufleetError as exc:
        print(f"failed: {exc}", file=sys.stderr)
        return 1
    stacks = [stack_name(e.name, p) for e in environments for p in e.by_provider()]
    where = " (state: local files)" if args.backend == "local" else ""
    print(f"synthesized into {Path(app.outdir) / 'stacks'}{where}: {', '.join(stacks) or 'no stacks'}")
    return 0


def _render_pulumi(files: list[Path], outdir: Path | None) -> int:
    from stacks.environment import load_environment

    environments = [load_environment(path) for path in files]
    try:
        from stacks.pulumi.render import DEFAULT_OUTDIR, render
    except ModuleNotFoundError as exc:
        raise InputError(f"the Pulumi SDK is not installed ({exc.name}). To fix: .venv/bin/pip install -c constraints.txt -e '.[pulumi]'") from None
    outdir = outdir or DEFAULT_OUTDIR
    counts = render(environments, outdir)
    print(f"rendered under Pulumi mocks (nothing previewed or deployed) into {outdir / 'stacks'}: "
          + (", ".join(f"{name} ({n} resources)" for name, n in counts.items()) or "no stacks"))
    return 0


if __name__ == "__main__":
    sys.exit(main())
