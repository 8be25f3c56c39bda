"""`git pwd extract`: raw corpus documents -> KB nodes, each with a verified verbatim quote.

corpus.py reads and chunks the documents; patterns.py (offline) or llm.py (an OpenAI-compatible
server) proposes candidates per chunk, structured.py per row of a CSV/TSV/RDF file; merge.py turns
every document's candidates into concept files (stable content ids, quotes checked,
contradictions and a person's files respected) and chains.py proposes L3 chains; run.py ties it
together and commits the result on a `pwd/extract/...` branch (docs/extract.md).
"""
