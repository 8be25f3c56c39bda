"""Multiple-choice scoring by log-likelihood, batched (the lm-eval-harness method).

For each item and choice: LL = sum of log P(choice tokens | question). acc picks the
highest LL; acc_norm divides by the choice's length in characters first, so long
choices are not penalised for having more tokens.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from pwd_git.model.text import Rendering
from pwd_git.model.text import rendering as text_rendering


@dataclass
class ItemScore:
    id: str
    loglik: list[float]
    correct: bool
    correct_norm: bool


def _requests(rendering: Rendering, items: list[dict], max_length: int) -> list[tuple[int, int, list[int], int]]:
    """(item index, choice index, token ids, number of continuation tokens) per choice."""
    reqs = []
    for i, item in enumerate(items):
        ctx = rendering.prompt_ids(item["question"])
        for j, choice in enumerate(item["choices"]):
            cont = rendering.continuation_ids(choice)
            ids = (ctx + cont)[-max_length:]
            reqs.append((i, j, ids, min(len(cont), len(ids) - 1)))
    return reqs


def score_items(model, tokenizer, items: list[dict], *, batch_size: int = 64, max_length: int = 512,
                device: str = "cpu", on_batch: Callable[[int, int], None] | None = None,
                rendering: Rendering | None = None) -> list[ItemScore]:
    """`rendering`: the format the model was trained in (model.text.rendering); the tiny model's by default."""
    import torch

    reqs = _requests(rendering or text_rendering(tokenizer, tiny=True), items, max_length)
    order = sorted(range(len(reqs)), key=lambda r: -len(reqs[r][2]))  # similar lengths share a batch
    loglik = [[0.0] * len(item["choices"]) for item in items]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    model.eval()
    done = 0
    with torch.no_grad():
        for start in range(0, len(order), batch_size):
            chunk = [reqs[r] for r in order[start:start + batch_size]]
            width = max(len(ids) for _, _, ids, _ in chunk)
            input_ids = torch.full((len(chunk), width), pad, dtype=torch.long)
            mask = torch.zeros((len(chunk), width), dtype=torch.long)
            for row, (_, _, ids, _) in enumerate(chunk):
                input_ids[row, : len(ids)] = torch.tensor(ids)
                mask[row, : len(ids)] = 1
            logits = model(input_ids=input_ids.to(device), attention_mask=mask.to(device)).logits.float()
            logprobs = torch.log_softmax(logits[:, :-1], dim=-1)
            targets = input_ids[:, 1:].to(device)
            token_ll = logprobs.gather(-1, targets.unsqueeze(-1)).squeeze(-1).cpu()
            for row, (i, j, ids, n_cont) in enumerate(chunk):
                end = len(ids) - 1
                loglik[i][j] = float(token_ll[row, end - n_cont: end].sum())
            done += len(chunk)
            if on_batch:
                on_batch(done, len(reqs))
    out = []
    for item, lls in zip(items, loglik, strict=True):
        norm = [ll / max(1, len(c)) for ll, c in zip(lls, item["choices"], strict=True)]
        best, best_norm = max(range(len(lls)), key=lls.__getitem__), max(range(len(norm)), key=norm.__getitem__)
        out.append(ItemScore(item["id"], lls, best == item["answer"], best_norm == item["answer"]))
    return out
