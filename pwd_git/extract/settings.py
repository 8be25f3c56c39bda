"""The `extract` section of pwd.yaml, typed, with the defaults in one place.

The JSON Schema (config.schema.json) already checked types and ranges; this only fills in
defaults and computes the key that says whether a cached extraction still applies.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

DEFAULT_CORPUS = ("corpus",)
DEFAULT_CHUNK_CHARS = 4000
DEFAULT_MAX_DOCUMENT_MB = 32
DEFAULT_CHAINS = 50


@dataclass(frozen=True)
class ExtractSettings:
    backend: str = "patterns"
    corpus: tuple[str, ...] = DEFAULT_CORPUS  # folders or files, relative to the domain root
    chunk_chars: int = DEFAULT_CHUNK_CHARS
    max_document_mb: float = DEFAULT_MAX_DOCUMENT_MB
    predicates: tuple[str, ...] = ()  # the predicates pwd.yaml declares (matched in sentences)
    functional: frozenset[str] = field(default_factory=frozenset)  # ... of which one object per subject
    llm: dict = field(default_factory=dict)  # the `extract.llm` section, read by extract/llm.py
    chains: int = DEFAULT_CHAINS  # at most this many L3 chains proposed from the extracted statements

    @classmethod
    def from_config(cls, config: dict) -> ExtractSettings:
        section = config.get("extract") or {}
        declared = config.get("predicates") or {}
        corpus = section.get("corpus", list(DEFAULT_CORPUS))
        return cls(
            backend=section.get("backend", "patterns"),
            corpus=tuple([corpus] if isinstance(corpus, str) else corpus),
            chunk_chars=int(section.get("chunk_chars", DEFAULT_CHUNK_CHARS)),
            max_document_mb=float(section.get("max_document_mb", DEFAULT_MAX_DOCUMENT_MB)),
            predicates=tuple(sorted(declared)),
            functional=frozenset(p for p, d in declared.items() if isinstance(d, dict) and d.get("functional")),
            llm=dict(section.get("llm") or {}),
            chains=int(section.get("chains", DEFAULT_CHAINS)),
        )

    def backend_key(self, backend_version: object) -> str:
        """What a document's cached candidates depend on besides its bytes: a change here
        re-extracts every document, anything else (e.g. `corpus`) re-extracts none."""
        relevant = {k: v for k, v in asdict(self).items() if k in ("backend", "chunk_chars", "predicates")}
        blob = json.dumps({"settings": relevant, "version": backend_version}, sort_keys=True, default=sorted)
        return hashlib.sha256(blob.encode()).hexdigest()[:16]
