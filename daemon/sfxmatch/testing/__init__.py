"""Test and benchmark tooling: real media fetched from package registries, synthetic media."""
