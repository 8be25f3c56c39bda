"""Multiple-choice scoring by log-likelihood (the lm-eval-harness method), prefix-shared and batched.

For each item and choice: LL = sum of log P(choice tokens | question). acc picks the
highest LL; acc_norm divides by the choice's length in characters first, so long
choices are not penalised for having more tokens.

The choices of a question share its tokens, so the question is run once (its keys and values
kept in the model's cache) and only the choices are run per choice, in batches of similar
length; the language-model head runs on choice positions only. `loglik_one_by_one` is the
plain definition this must equal (one forward of question + choice per choice).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pwd_git.model.text import Rendering
from pwd_git.model.text import rendering as text_rendering

#: One choice to score: (prefix token ids, continuation token ids); LL sums the continuation's.
Request = tuple[list[int], list[int]]


@dataclass
class ItemScore:
    id: str
    loglik: list[float]
    correct: bool
    correct_norm: bool


def split_request(context: list[int], continuation: list[int], max_length: int) -> Request:
    """(prefix, scored continuation) of context + continuation cut to its last `max_length`
    tokens; the first kept token is never scored (nothing predicts it)."""
    ids = (context + continuation)[-max_length:]
    n = max(0, min(len(continuation), len(ids) - 1))
    return ids[: len(ids) - n], ids[len(ids) - n:]


def encode_items(rendering: Rendering, items: list[dict], max_length: int) -> list[list[Request]]:
    """Per item, per choice: the question as the model was trained to read it and the choice as
    its continuation, tokenized apart (model.text.Rendering: in the plain formats ' ' + choice,
    lm-eval's target delimiter), as a Request."""
    out = []
    for item in items:
        ctx = rendering.prompt_ids(item["question"])
        out.append([split_request(ctx, rendering.continuation_ids(choice), max_length) for choice in item["choices"]])
    return out


def loglik_one_by_one(model, requests: list[Request], device: str = "cpu") -> list[float]:
    """The definition of a choice's LL: one unpadded forward of prefix + continuation per
    request, no cache (what `loglik_batched` must equal; tests and benchmarks compare them)."""
    import torch

    out = []
    model.eval()
    with torch.no_grad():
        for prefix, cont in requests:
            if not cont:
                out.append(0.0)
                continue
            ids = torch.tensor([prefix + cont], device=device)
            logprobs = torch.log_softmax(model(input_ids=ids).logits[0, len(prefix) - 1:-1].float(), dim=-1)
            out.append(float(logprobs.gather(-1, ids[0, len(prefix):, None]).sum()))
    return out


@dataclass
class _Group:
    """Requests with one prefix. The prefix is run once, and its last logits score each
    request's first token. A row is a continuation but its last token, run once against the
    prefix's cached keys and values for every request it begins (choices of one token need no
    row: their key is empty), each request reading its own next tokens."""

    prefix: list[int]
    rows: dict[tuple[int, ...], list[tuple[int, list[int]]]]  # row input ids -> (request index, continuation)

    @property
    def width(self) -> int:
        return max(len(row) for row in self.rows)

    @property
    def size(self) -> int:
        """What the group adds to a batch: its rows, or its prefix alone."""
        return max(1, sum(1 for row in self.rows if row))


def _groups(requests: list[Request]) -> list[_Group]:
    by_prefix: dict[tuple[int, ...], _Group] = {}
    for r, (prefix, cont) in enumerate(requests):
        if cont:  # an empty continuation has LL 0; a continuation has a prefix (split_request)
            group = by_prefix.setdefault(tuple(prefix), _Group(prefix, {}))
            group.rows.setdefault(tuple(cont[:-1]), []).append((r, cont))
    # rows of similar length (then prefixes) share a batch, so little of it is padding
    return sorted(by_prefix.values(), key=lambda g: (-g.width, -len(g.prefix)))


def _batches(groups: list[_Group], batch_size: int) -> list[list[_Group]]:
    """Consecutive groups of at most `batch_size` rows in all (a bigger group goes alone)."""
    out: list[list[_Group]] = []
    size = 0
    for group in groups:
        if out and size + group.size <= batch_size:
            out[-1].append(group)
            size += group.size
        else:
            out.append([group])
            size = group.size
    return out


def _padded(seqs: list[list[int]], pad: int, *, left: bool = False):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        span = slice(width - len(seq), width) if left else slice(0, len(seq))
        ids[row, span] = torch.tensor(seq, dtype=torch.long)
        mask[row, span] = 1
    return ids, mask


def _cache_name(model) -> str:
    """What the model's forward calls its key/value cache: `cache` (transformers >= 5.24) or
    `past_key_values` (before); it is also the output's field."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def loglik_batched(model, requests: list[Request], *, batch_size: int = 64, pad_id: int = 0, device: str = "cpu",
                   on_batch: Callable[[int, int], None] | None = None) -> list[float]:
    """LL of each request, equal to `loglik_one_by_one` up to float rounding. Per batch: the
    prefixes, left-padded, run once (the language-model head on their last position only,
    the cache kept); then the rows, right-padded, against their prefix's cache. Positions are
    explicit and padding is masked, so it changes no score. log P(token) is its logit minus
    the logsumexp over the vocabulary (no log-softmax tensor is written)."""
    import torch

    cache = _cache_name(model)
    out = [0.0] * len(requests)
    total, done = len(requests), sum(1 for _, cont in requests if not cont)
    model.eval()
    with torch.no_grad():
        for batch in _batches(_groups(requests), batch_size):
            reqs = [(g, row, r, cont) for g, group in enumerate(batch) for row, readers in group.rows.items()
                    for r, cont in readers]
            head_ids, head_mask = (t.to(device) for t in _padded([group.prefix for group in batch], pad_id, left=True))
            rows = [(g, row) for g, group in enumerate(batch) for row in group.rows if row]
            result = model(input_ids=head_ids, attention_mask=head_mask, position_ids=(head_mask.cumsum(1) - 1).clamp(min=0),
                           use_cache=bool(rows), logits_to_keep=1)
            first = result.logits[:, -1].float()
            at_group = torch.tensor([g for g, _, _, _ in reqs], device=device)
            first_token = torch.tensor([cont[0] for _, _, _, cont in reqs], device=device)
            ll = first[at_group, first_token] - torch.logsumexp(first, dim=-1)[at_group]
            if rows:
                owner = torch.tensor([g for g, _ in rows], device=device)
                past = result[cache]
                past.batch_select_indices(owner)
                row_ids, row_mask = (t.to(device) for t in _padded([list(row) for _, row in rows], pad_id))
                positions = head_mask.sum(dim=1)[owner, None] + torch.arange(row_ids.shape[1], device=device)
                logits = model(input_ids=row_ids, attention_mask=torch.cat([head_mask[owner], row_mask], dim=1),
                               position_ids=positions, use_cache=True, **{cache: past}).logits.float()
                row_index = {key: n for n, key in enumerate(rows)}
                later = [(q, row_index[g, row], k, tok) for q, (g, row, _, cont) in enumerate(reqs)
                         for k, tok in enumerate(cont[1:])]  # not empty: a row is a continuation of 2+ tokens
                q, at_row, at_pos, target = (torch.tensor(col, device=device) for col in zip(*later, strict=True))
                token_ll = logits[at_row, at_pos, target] - torch.logsumexp(logits, dim=-1)[at_row, at_pos]
                ll = ll.index_add(0, q, token_ll)
            for (_, _, r, _), value in zip(reqs, ll.tolist(), strict=True):
                out[r] = value
            done += len(reqs)
            if on_batch:
                on_batch(done, total)
    return out


def score_items(model, tokenizer, items: list[dict], *, batch_size: int = 64, max_length: int = 512,
                device: str = "cpu", on_batch: Callable[[int, int], None] | None = None,
                rendering: Rendering | None = None) -> list[ItemScore]:
    """`rendering`: the format the model was trained in (model.text.rendering); the tiny model's by default."""
    encoded = encode_items(rendering or text_rendering(tokenizer, tiny=True), items, max_length)
    flat = [req for reqs in encoded for req in reqs]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    lls = iter(loglik_batched(model, flat, batch_size=batch_size, pad_id=pad, device=device, on_batch=on_batch))
    out = []
    for item in items:
        ll = [next(lls) for _ in item["choices"]]
        norm = [v / max(1, len(c)) for v, c in zip(ll, item["choices"], strict=True)]
        best, best_norm = max(range(len(ll)), key=ll.__getitem__), max(range(len(norm)), key=norm.__getitem__)
        out.append(ItemScore(item["id"], ll, best == item["answer"], best_norm == item["answer"]))
    return out
