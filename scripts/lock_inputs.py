"""Print the fingerprint of what requirements/lock.txt is compiled from: pyproject.toml's
dependency tables, requirements/lock.in and requirements/torch.txt. scripts/lock.sh writes it
into the lock's header; tests/test_lock.py fails when the inputs changed and the lock did not."""

import hashlib
import json
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
text = (ROOT / "pyproject.toml").read_text()
deps = re.search(r"^dependencies = \[.*?^\]", text, re.S | re.M).group(0)
extras = re.search(r"^\[project\.optional-dependencies\]\n(.*?)(?=^\[)", text, re.S | re.M).group(1)
parts = [deps, extras, (ROOT / "requirements/lock.in").read_text(), (ROOT / "requirements/torch.txt").read_text()]
print(hashlib.sha256(json.dumps(parts).encode()).hexdigest()[:16])
