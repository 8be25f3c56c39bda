"""Compiler-style diagnostics: `path:line:col: severity: message [code]`."""

from __future__ import annotations

from dataclasses import asdict, dataclass

ERROR, WARNING = "error", "warning"


@dataclass(frozen=True, order=True)
class Diagnostic:
    path: str
    line: int
    col: int
    severity: str
    code: str  # stable machine-readable kind, e.g. "schema", "missing-object"
    message: str
    json_path: str = ""

    def render(self) -> str:
        where = f" at {self.json_path}" if self.json_path and self.json_path != "$" else ""
        return f"{self.path}:{self.line}:{self.col}: {self.severity}: {self.message}{where} [{self.code}]"

    def as_dict(self) -> dict:
        return asdict(self)


def json_path(path: tuple) -> str:
    out = "$"
    for part in path:
        out += f"[{part}]" if isinstance(part, int) else f".{part}"
    return out
