"""GCP node pools: GKE node pools and zonal managed instance groups (google-cloud-container, -compute)."""
