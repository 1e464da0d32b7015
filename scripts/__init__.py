"""Tools that read saved results: the loader, derived metrics, plots, the report and the gate.

Nothing here imports ``bench``: scripts read the JSON that runs saved, never the harness.
"""
