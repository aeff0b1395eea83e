"""Providers: one module per place replicas run (aws, gcp, azure, kubernetes, local) behind `base.Provider`."""
