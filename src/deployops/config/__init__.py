"""Configuration: the project file ``deployops.yaml`` and the application's per-environment
settings (CFG-*)."""
