"""Azure node pools: AKS agent pools and VM scale sets (azure-mgmt-containerservice, -compute)."""
