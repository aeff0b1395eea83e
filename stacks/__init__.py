"""gpufleet's GPU node pools as code: a CDK Terrain app, one stack per environment x provider.

`python -m stacks` synthesizes without the CLI; `npx cdktn synth|diff|deploy` runs the
same app through `cdktf.json`. See docs/stacks.md.
"""
