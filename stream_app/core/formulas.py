"""Score definitions from SPEC §4 (seed 004) and their 95% confidence intervals."""

from __future__ import annotations

import math
from typing import Literal

Z95 = 1.959963984540054

SurveyKind = Literal["csat", "nps", "ces"]

#: Allowed scales per survey and the default when the event has none (SPEC §3).
#: CSAT scale 2 is a good/bad rating (1 bad, 2 good), as Zendesk's satisfaction ratings.
SCALES: dict[str, tuple[int, ...]] = {"csat": (5, 10, 2), "ces": (7, 5), "nps": (10,)}


def score_range(survey: str, scale: int) -> tuple[int, int]:
    """Inclusive valid score range: NPS is 0–10, CSAT/CES scales start at 1."""
    return (0, 10) if survey == "nps" else (1, scale)


def csat_satisfied(score: int, scale: int) -> bool:
    """Top-two-box: 4–5 on a 5-point scale, 9–10 on a 10-point scale; on the
    good/bad scale (2) only 2 = good."""
    if scale == 2:
        return score == 2
    return score >= scale - 1


def nps_class(score: int) -> int:
    """+1 promoter (9–10), 0 passive (7–8), −1 detractor (0–6)."""
    if score >= 9:
        return 1
    return 0 if score >= 7 else -1


def ces_half_points(score: int, scale: int) -> int:
    """A CES answer on the 7-point scale, in half points (an integer, so sums stay
    exact and retractable): 5-point answers are rescaled linearly, 1→1, 5→7
    (SPEC §4), i.e. 7-point = 1.5 × score − 0.5; twice that is 3 × score − 1."""
    return 2 * score if scale == 7 else 3 * score - 1


def ces_agrees(score: int, scale: int) -> bool:
    """Agreement that the issue was easy to handle: 5–7 of 7, 4–5 of 5."""
    return score >= (5 if scale == 7 else 4)


def ratio(hits: int, n: int) -> float | None:
    """A share, or None when there is nothing to share (never a fake 0) or the
    counts cannot be one (hits < 0 or hits > n: inconsistent state, never a
    figure outside 0–1, and never a crash)."""
    return hits / n if 0 <= hits <= n and n > 0 else None


def wilson_interval(hits: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Wilson score interval: honest at small n and at 0%/100%, unlike Wald.
    None when n is 0 or the counts cannot be a share (see `ratio`)."""
    if n <= 0 or not 0 <= hits <= n:
        return None
    p = hits / n
    z2 = z * z
    denom = 1 + z2 / n
    centre = (p + z2 / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n)) / denom
    # At 0 % and 100 % the bound is exactly the edge; rounding must not nudge it inside.
    low = 0.0 if hits == 0 else max(0.0, centre - half)
    high = 1.0 if hits == n else min(1.0, centre + half)
    return (min(low, p), max(high, p))


def nps(promoters: int, detractors: int, n: int) -> float | None:
    """100 × (promoters − detractors) / responses. Seed 004: (50 − 27)/100 → 23."""
    if n <= 0:
        return None
    return 100.0 * (promoters - detractors) / n


def nps_interval(promoters: int, detractors: int, n: int, z: float = Z95) -> tuple[float, float] | None:
    """Normal approximation: NPS is the mean of a +100/0/−100 variable per response."""
    if n <= 0:
        return None
    p, d = promoters / n, detractors / n
    variance = (p + d) - (p - d) ** 2
    half = 100.0 * z * math.sqrt(max(variance, 0.0) / n)
    centre = 100.0 * (p - d)
    return (max(-100.0, centre - half), min(100.0, centre + half))


def mean(total: float, n: int) -> float | None:
    return total / n if n > 0 else None
