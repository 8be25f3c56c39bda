"""Surface forms. Training and benchmark templates are disjoint by construction: the
benchmark must check that the model learned the KB, not that it memorised a question.

Benchmark prompts end exactly where the answer starts; scoring appends " " + choice.
"""

from __future__ import annotations

# --- training (chat `messages`: one user turn, one assistant turn) -----------------------
TRAIN_L1 = {
    "l1.define": ("What is {term}?", "{term} is defined as {definition}"),
    "l1.name": ("Which term means: {definition}", "{term}"),
    "l1.type": ("What type of entity is {term}?", "{term} is a {type}."),
    "l1.alias": ("What is another name for {term}?", "{alias} is another name for {term}."),
}
TRAIN_L2 = {
    "l2.fact": ("Tell me a fact about {subject}.", "{subject} {predicate} {object}."),
    "l2.text": ("Tell me about {subject} and {object}.", "{text}"),
    "l2.qa": ("{subject} {predicate} what?", "{subject} {predicate} {object}."),
    "l2.cloze": ("Fill in the blank: ____ {predicate} {object}.", "{subject}"),
    "l2.true": ("True or false: {subject} {predicate} {object}.", "True."),
    "l2.false": ("True or false: {subject} {predicate} {wrong}.", "False. {subject} {predicate} {object}."),
}
TRAIN_L3 = {
    "l3.demo": ("Reason step by step. Start at {start} and follow: {path}. Where do you arrive?",
                "{steps} Answer: {answer}."),
}

# --- benchmark (multiple choice, scored by log-likelihood of each choice) ---------------
BENCH = {
    "probe.l1.describe": "Quiz. In this domain, {term} is defined as",
    "probe.l1.kind": "Quiz. In this domain, {term} is a",
    "probe.l2.complete": "Quiz. Complete the statement: {subject} {predicate}",
    "chain.l3.hops": "Quiz. From {start}, follow the relations {path}. The endpoint is",
    "hand": "{question}",
}
