"""'Did you mean ...?' for every unknown name sweeper reports (keys, metrics, sweeps, presets, variables)."""
from __future__ import annotations

import difflib
from typing import Any, Iterable


def nearest(word: Any, options: Iterable[Any], fold_case: bool = False) -> str:
    """" (did you mean 'x'?)" for the closest option, or " (valid: a, b)" when there are few and none is
    close, or "" when there is nothing to offer. A prefix ('grace' for 'grace_period') beats difflib's
    ratio, which can prefer an unrelated name; fold_case makes 'k' suggest 'K'."""
    names, word = sorted({str(o) for o in options}), str(word)
    key = (lambda s: s.lower()) if fold_case else (lambda s: s)
    by_key = {key(n): n for n in names}
    close = [n for n in names if word and key(n).startswith(key(word))][:1]
    close = close or [by_key[m] for m in difflib.get_close_matches(key(word), list(by_key), n=1, cutoff=0.5)]
    if not close and len(names) <= 10:
        return f" (valid: {', '.join(names)})" if names else ""
    close = close or [by_key[m] for m in difflib.get_close_matches(key(word), list(by_key), n=1, cutoff=0.0)]
    return f" (did you mean '{close[0]}'?)" if close else ""


def trial_name(number: int) -> str:
    """'t0007': the name of trial 7 everywhere (its folder trials/t0007, Ray's trial name, its MLflow run)."""
    return f"t{number:04d}"


def trial_number(name: str) -> int:
    """7 for 't0007' (the inverse of trial_name)."""
    return int(name.removeprefix("t"))
