"""The debugger: trace failed benchmark items to KB nodes (diagnose) and repair the data (patch)."""
