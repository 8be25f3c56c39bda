"""`git pwd extract`: raw corpus documents -> KB nodes, each with a verified verbatim quote.

corpus.py reads and chunks the documents, patterns.py (offline) proposes candidates per
document, merge.py turns every document's candidates into concept files (stable content ids,
quotes checked, contradictions and hand-written files respected), run.py ties it together and
commits the result on a `pwd/extract/...` branch.
"""
