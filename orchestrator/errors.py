"""One root for every error gpufleet raises on purpose.

The CLI maps `InputError` (and subclasses) to exit code 2 and everything else under
`GpufleetError` to exit code 1, printing the message without a traceback. Messages
say what is wrong and end with "To fix: ..." where a fix is known.

    GpufleetError
    ├── InputError          bad input from the user: exit 2
    │   └── SpecError       a fleet spec that fails to load or validate (carries all issues)
    ├── CatalogError        a catalog that cannot be read or refreshed
    └── ProviderError       a cloud or local provider failed (issues of later layers)
"""

from __future__ import annotations

from dataclasses import dataclass


class GpufleetError(Exception):
    """Root of gpufleet's own errors; anything else reaching the CLI is a bug."""


class InputError(GpufleetError):
    """The user gave input we cannot use; the message says what and how to fix it."""


@dataclass(frozen=True)
class SpecIssue:
    """One problem in a fleet spec, located by file, path and (when known) line."""

    path: str
    message: str
    line: int | None = None

    def render(self, file: str) -> str:
        where = f"{file}:{self.line}" if self.line else file
        return f"{where}: {self.path or '<root>'}: {self.message}"


class SpecError(InputError):
    """A fleet spec with one or more problems; every problem is reported at once."""

    def __init__(self, file: str, issues: list[SpecIssue], spec: object | None = None):
        self.file = file
        self.issues = issues
        self.spec = spec
        """The spec as parsed when only its self-contained checks failed (the catalog checks can still run on it); else None."""
        super().__init__("\n".join(issue.render(file) for issue in issues))


class CatalogError(GpufleetError):
    """A price, GPU or latency catalog that cannot be read, or a refresh that failed."""


class ProviderError(GpufleetError):
    """A provider call failed; subclasses in later layers say whether to retry."""
