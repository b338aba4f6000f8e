"""Waiting maths, pure: per-caller wait estimates, honest phrasing, and Erlang C staffing."""

from ivr.core.waits.bands import Announcement, Band, band_for, honest_announcement
from ivr.core.waits.estimator import BAND_QUANTILE, Estimate, EstimateError, estimate_wait
from ivr.core.waits.history import HistoryStats
from ivr.core.waits.staffing import StaffingResult, evaluate_staffing, required_agents

__all__ = [
    "BAND_QUANTILE",
    "Announcement",
    "Band",
    "Estimate",
    "EstimateError",
    "HistoryStats",
    "StaffingResult",
    "band_for",
    "estimate_wait",
    "evaluate_staffing",
    "honest_announcement",
    "required_agents",
]
