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


def encode_items(tokenizer, items: list[dict], max_length: int) -> list[list[Request]]:
    """Per item, per choice: the question and ' ' + choice, tokenized apart (lm-eval's target
    delimiter), as a Request."""
    out = []
    for item in items:
        ctx = tokenizer(item["question"], add_special_tokens=False)["input_ids"]
        out.append([split_request(ctx, tokenizer(" " + choice, add_special_tokens=False)["input_ids"], max_length)
                    for choice in item["choices"]])
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
    """Requests with one prefix. Its head (all but the last token) is run once; a row is the
    prefix's last token and a continuation but its last token, run once for every continuation
    that shares it (choices of one token share one row), each request reading its own targets."""

    head: list[int]
    rows: dict[tuple[int, ...], list[tuple[int, list[int]]]]  # row input ids -> (request index, target ids)

    @property
    def width(self) -> int:
        return max(len(row) for row in self.rows)


def _groups(requests: list[Request]) -> list[_Group]:
    by_prefix: dict[tuple[int, ...], _Group] = {}
    for r, (prefix, cont) in enumerate(requests):
        if cont:  # an empty continuation has LL 0
            group = by_prefix.setdefault(tuple(prefix), _Group(prefix[:-1], {}))
            group.rows.setdefault((prefix[-1], *cont[:-1]), []).append((r, cont))
    # rows of similar length (then heads) share a batch, so little is padding; empty heads go last
    return sorted(by_prefix.values(), key=lambda g: (not g.head, -g.width, -len(g.head)))


def _batches(groups: list[_Group], batch_size: int) -> list[list[_Group]]:
    """Consecutive groups with at most `batch_size` rows in all (a bigger group goes alone)."""
    out: list[list[_Group]] = []
    rows = 0
    for group in groups:
        if out and rows + len(group.rows) <= batch_size and bool(out[-1][0].head) == bool(group.head):
            out[-1].append(group)
            rows += len(group.rows)
        else:
            out.append([group])
            rows = len(group.rows)
    return out


def _padded(seqs: list[list[int]], pad: int):
    import torch

    width = max(len(s) for s in seqs)
    ids = torch.full((len(seqs), width), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), width), dtype=torch.long)
    for row, seq in enumerate(seqs):
        ids[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
        mask[row, : len(seq)] = 1
    return ids, mask


def _cache_name(model) -> str:
    """What the model's forward calls its key/value cache: `cache` (transformers >= 5.24) or
    `past_key_values` (before); it is also the output's field."""
    import inspect

    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    return "cache" if "cache" in inspect.signature(base.forward).parameters else "past_key_values"


def loglik_batched(model, requests: list[Request], *, batch_size: int = 64, pad_id: int = 0, device: str = "cpu",
                   on_batch: Callable[[int, int], None] | None = None) -> list[float]:
    """LL of each request, equal to `loglik_one_by_one` up to float rounding: each batch runs its
    prefixes' heads once (right-padded, keeping the cache), then every request's row against its
    head's cached keys and values, with explicit positions so padding changes nothing."""
    import torch

    cache = _cache_name(model)
    out = [0.0] * len(requests)
    total, done = len(requests), sum(1 for _, cont in requests if not cont)
    model.eval()
    with torch.no_grad():
        for batch in _batches(_groups(requests), batch_size):
            rows = [row for group in batch for row in group.rows]
            owner = torch.tensor([g for g, group in enumerate(batch) for _ in group.rows], device=device)
            row_ids, row_mask = _padded(rows, pad_id)
            row_ids, row_mask = row_ids.to(device), row_mask.to(device)
            positions = torch.arange(row_ids.shape[1], device=device).expand(len(rows), -1)
            past, mask = None, row_mask
            if batch[0].head:
                head_ids, head_mask = _padded([group.head for group in batch], pad_id)
                head_ids, head_mask = head_ids.to(device), head_mask.to(device)
                past = model(input_ids=head_ids, attention_mask=head_mask, position_ids=torch.arange(
                    head_ids.shape[1], device=device).expand(len(batch), -1), use_cache=True, logits_to_keep=1)[cache]
                past.batch_select_indices(owner)
                mask = torch.cat([head_mask[owner], row_mask], dim=1)
                positions = positions + head_mask.sum(dim=1)[owner, None]
            logits = model(input_ids=row_ids, attention_mask=mask, position_ids=positions, use_cache=past is not None,
                           **{cache: past}).logits.float()
            # log P(target) = its logit - logsumexp over the vocabulary, read per request from its row
            reqs = [req for group in batch for readers in group.rows.values() for req in readers]
            row_of = [n for n, readers in enumerate(r for group in batch for r in group.rows.values()) for _ in readers]
            at_row = torch.tensor([n for n, (_, t) in zip(row_of, reqs, strict=True) for _ in t], device=device)
            at_pos = torch.tensor([k for _, t in reqs for k in range(len(t))], device=device)
            target = torch.tensor([tok for _, t in reqs for tok in t], device=device)
            token_ll = logits[at_row, at_pos, target] - torch.logsumexp(logits, dim=-1)[at_row, at_pos]
            owner_req = torch.tensor([n for n, (_, t) in enumerate(reqs) for _ in t], device=device)
            per_req = torch.zeros(len(reqs), device=device).index_add_(0, owner_req, token_ll).tolist()
            for (r, _), ll in zip(reqs, per_req, strict=True):
                out[r] = ll
            done += len(reqs)
            if on_batch:
                on_batch(done, total)
    return out


def score_items(model, tokenizer, items: list[dict], *, batch_size: int = 64, max_length: int = 512,
                device: str = "cpu", on_batch: Callable[[int, int], None] | None = None) -> list[ItemScore]:
    encoded = encode_items(tokenizer, items, max_length)
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
