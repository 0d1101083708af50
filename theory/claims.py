"""The schema every theory check reports in: claims with verdicts, and errata of the paper."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

# Verdict vocabulary (issue 2). "holds-certified" = an upper bound was shown to lie below a lower bound;
# "holds-exact" = exact computation (symbolic, or float64 of exact quantities within stated rounding).
VERDICTS = ("holds-exact", "holds-certified", "holds-approximately", "fails", "inconclusive")


@dataclass
class Claim:
    id: str  # stable, e.g. "thm42.logistic.exact.l2"
    statement: str  # the claim in words/formula
    source: str  # paper location, e.g. "Supp. B.2, eq. after 'Notice that'"
    verdict: str  # one of VERDICTS
    evidence: dict[str, Any] = field(default_factory=dict)  # numbers: margins, worst cases, counts, seeds
    counterexample: dict[str, Any] | None = None  # required when verdict == "fails": re-checkable data

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict {self.verdict!r} not in {VERDICTS}")
        if self.verdict == "fails" and not self.counterexample:
            raise ValueError(f"claim {self.id}: a 'fails' verdict needs a stored counterexample")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class Erratum:
    location: str  # where in the paper
    text_says: str  # what the paper says
    correct: str  # what is right
    evidence: str  # how we know (which claim id / computation)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
