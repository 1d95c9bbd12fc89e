"""The mesh spec: YAML models, loading with line numbers, and cross-file lint."""
