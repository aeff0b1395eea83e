"""The same GPU node pools as Pulumi programs: one Pulumi stack per environment x provider.

Each provider module renders `stacks.facts` (what the CDK Terrain constructs render too)
as Pulumi resources; `program` picks the environment's pools of one provider; `mocked`
runs a program under Pulumi's mocks (no CLI, no plugins, no cloud) and records what it
declared; `document` turns that record into the Terraform JSON shape the Rego rules in
policies/terraform read. docs/stacks.md.
"""
