"""Run one stack's Pulumi program under Pulumi's own mocks and record what it declares.

`pulumi.runtime.set_mocks` replaces the engine: no Pulumi CLI, no provider plugins, no
cloud. The program runs exactly as `pulumi preview` would run it, and every resource it
registers arrives here with its inputs and options (provider, dependencies, ignoreChanges).
Outputs a real provider would compute (ids, ARNs, a launch template's version) are
stand-ins: an id names its resource (`<name>-id`), so references stay readable.
This is what `python -m stacks --engine pulumi` prints and what the tests compare.
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pulumi
from pulumi.runtime.mocks import MockCallArgs, MockMonitor, MockResourceArgs, Mocks

from stacks.environment import Environment, stack_name
from stacks.pulumi.program import declare_stack

PROJECT = "gpufleet"


@dataclass(frozen=True)
class Declared:
    """One resource as the program registered it."""

    type: str  # Pulumi type token: aws:eks/nodeGroup:NodeGroup
    name: str  # logical name: <pool>_<part>, as the CDK Terrain construct path
    inputs: dict[str, Any]  # the wire names: camelCase for bridged providers
    provider: str  # logical name of its provider resource ("" for the default one, or a provider itself)
    depends_on: tuple[str, ...]  # logical names
    ignore_changes: tuple[str, ...]  # Pulumi property paths

    @property
    def id(self) -> str:
        return f"{self.name}-id"

    def to_dict(self) -> dict[str, Any]:
        return {"type": self.type, "name": self.name, "provider": self.provider, "depends_on": list(self.depends_on),
                "ignore_changes": list(self.ignore_changes), "inputs": self.inputs}


class _StandIns(Mocks):
    """Ids and computed outputs a real provider would return; calls (data sources) answer empty."""

    def __init__(self) -> None:
        self.inputs: dict[str, dict[str, Any]] = {}  # logical name -> the inputs as the program set them

    def new_resource(self, args: MockResourceArgs) -> tuple[str, dict[str, Any]]:
        inputs = self.inputs[args.name] = _integral(args.inputs)
        name = inputs.get("name") or (f"{inputs['namePrefix']}mock" if "namePrefix" in inputs else args.name)
        return f"{args.name}-id", {**inputs, "name": name, "arn": f"arn:mock:{args.name}", "latestVersion": 1}

    def call(self, args: MockCallArgs) -> dict[str, Any]:
        if args.token == "aws:eks/getCluster:getCluster":  # the cluster's subnets and OIDC issuer, as EKS would answer
            return {"name": args.args.get("name"), "vpcConfig": {"subnetIds": ["subnet-mock-a", "subnet-mock-b"]},
                    "identities": [{"oidcs": [{"issuer": f"https://oidc.eks.mock/id/{args.args.get('name')}"}]}]}
        if args.token == "aws:iam/getOpenIdConnectProvider:getOpenIdConnectProvider":
            return {"arn": f"arn:mock:oidc-provider/{args.args.get('url', '').removeprefix('https://')}"}
        if args.token == "aws:iam/getPolicyDocument:getPolicyDocument":  # the JSON the data source would write
            return {"json": policy_json(args.args.get("statements", []))}
        if args.token == "gcp:organizations/getClientConfig:getClientConfig":
            return {"project": "mock-project"}
        return {}


def policy_json(statements: list[dict[str, Any]]) -> str:
    """aws_iam_policy_document's statements (Pulumi's names) as the IAM policy JSON it answers with."""
    def statement(s: dict[str, Any]) -> dict[str, Any]:
        conditions: dict[str, dict[str, list]] = {}
        for c in s.get("conditions", []):
            conditions.setdefault(c["test"], {})[c["variable"]] = c["values"]
        return {"Effect": s.get("effect", "Allow"), "Action": s.get("actions", []),
                "Principal": {p["type"]: p["identifiers"] for p in s.get("principals", [])}, "Condition": conditions}

    return json.dumps({"Version": "2012-10-17", "Statement": [statement(s) for s in statements]})


class _Recorder(MockMonitor):
    """The mock engine, keeping each registration's inputs and options."""

    def __init__(self) -> None:
        self.stand_ins = _StandIns()
        super().__init__(self.stand_ins)
        self.declared: list[Declared] = []

    def RegisterResource(self, request):  # noqa: N802  (the engine's gRPC method name)
        response = super().RegisterResource(request)
        if request.type != "pulumi:pulumi:Stack":
            self.declared.append(Declared(
                type=request.type, name=request.name, inputs=self.stand_ins.inputs[request.name],
                provider=_logical(request.provider.split("::")[-1]) if request.provider else "",
                depends_on=tuple(u.split("::")[-1] for u in request.dependencies),
                ignore_changes=tuple(request.ignoreChanges),
            ))
        return response


def _logical(reference: str) -> str:
    """A provider reference is `<urn>::<id>`; the last URN part is the name, the id ours (`<name>-id`)."""
    return reference.removesuffix("-id")


def _integral(value: Any) -> Any:
    """Numbers cross the engine's wire as floats; a whole one was an int in the program."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _integral(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral(v) for v in value]
    return value


def declared_resources(environment: Environment, provider: str) -> list[Declared]:
    """Run the program of stack `<env>-<provider>` under mocks; what it declared."""
    return record(stack_name(environment.name, provider), lambda: declare_stack(environment, provider))


def record(stack: str, program: Callable[[], None]) -> list[Declared]:
    """Run `program` as Pulumi stack `stack` under mocks; what it declared, by type and name."""
    recorder = _Recorder()

    def run() -> None:
        # Pulumi's test runner takes the thread's current event loop; after any asyncio.run() there is none
        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        try:
            pulumi.runtime.set_mocks(recorder.stand_ins, project=PROJECT, stack=stack, preview=False, monitor=recorder)
            pulumi.runtime.test(program)()
        finally:
            asyncio.set_event_loop(None)
            loop.close()

    contextvars.Context().run(run)  # a fresh root stack per run: Pulumi keeps it in a context variable
    return sorted(recorder.declared, key=lambda d: (d.type, d.name))  # registrations arrive in any order
