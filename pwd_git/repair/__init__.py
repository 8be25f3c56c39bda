"""The debugger: trace failed benchmark items to KB nodes (diagnose) and repair the data (patch)."""

#: Where `git pwd patch` and `git pwd repair` propose their commits (status and report list them).
PATCH_BRANCH_PREFIX = "pwd/patch/"
REPAIR_BRANCH_PREFIX = "pwd/repair/"
