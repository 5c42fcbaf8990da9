"""The engine: no tornado, no Jupyter imports (design §3)."""
