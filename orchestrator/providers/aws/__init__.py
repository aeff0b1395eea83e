"""AWS node pools: EKS managed node groups, and plain Auto Scaling groups (boto3)."""
