"""`git pwd bisect`: find the data commit that made the model regress, with real `git bisect`.

How it works (docs/bisect-and-hooks.md has the user-facing version):

- GOOD is judged first; its per-item results are the baseline of every verdict.
- `git bisect start --no-checkout --first-parent BAD GOOD` then `git bisect run` run in a
  temporary linked worktree under .git/pwd/bisect/, so the user's checkout, branch, index
  and uncommitted changes are never touched (with --no-checkout git only moves BISECT_HEAD
  there; no files are written). The worktree is removed afterwards, on success, error,
  Ctrl-C or SIGTERM. A run killed with -9 takes its `git bisect run` and step with it (the
  step watches a pipe only the session writes to), and the next run removes its worktree;
  every run has its own folder (run-XXXX/: worktree and state), never a dead run's.
- The step command (`git pwd bisect-step`) answers, in order of cost: the judgment of a
  commit with the same KB state already judged in this session (same build key and run
  key; in continue mode only the same commit); a result recorded in git notes for that KB
  state (no training); otherwise it builds, trains and tests the commit from the object
  store and records a note.
- Verdicts use the `test` rule (verdict.judge: thresholds plus the one-sided exact McNemar
  test against GOOD's items). A regression that is suggestive but not significant
  (alpha <= p < 2 alpha) is inconclusive and skipped (exit 125), never guessed.

Modules:
  metric.py   Metric (which items decide) and Judgment (good, bad or skip against GOOD)
  step.py     one commit's Result, the State shared with the step, `git pwd bisect-step`
  session.py  bisect(): range checks, `git bisect run` in a temporary worktree, cleanup
  report.py   BisectReport and what it says about the first bad commit
"""

from pwd_git.bisect.metric import ABORT, Judgment, Metric, judge_against
from pwd_git.bisect.report import BisectReport
from pwd_git.bisect.session import bisect, kb_states
from pwd_git.bisect.step import run_step

__all__ = ["ABORT", "BisectReport", "Judgment", "Metric", "bisect", "judge_against", "kb_states", "run_step"]
