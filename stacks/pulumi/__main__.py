"""The program the Pulumi CLI runs (Pulumi.yaml beside it): `pulumi preview --stack hybrid-aws`."""

from stacks.pulumi.program import main

main()
