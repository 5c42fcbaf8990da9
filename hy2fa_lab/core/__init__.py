"""The engine: no tornado, no Jupyter imports (see docs/architecture.md)."""
