"""What a vendor ranking answers: a vendor's row (:class:`VendorRank`), its fields in order, the
score's description, and a page of rows (``services.ranking`` computes them)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.records import frozen_from

SCORE_DESCRIPTION = (
    "median, over the vendor's models with a current measured label in the group, of the upper "
    "bound of the 95% confidence interval of gross energy per functional unit "
    "(energy_ci95_high_wh, Wh; one figure per model: the median of its current labels when no "
    "hardware class is given); lower is better; ties share a rank; vendors with only estimated "
    "labels have no score and are listed last"
)

FIELDS = (
    "rank",
    "vendor",
    "display_name",
    "score_wh",
    "models",
    "labels",
    "measured",
    "estimated",
    "measured_share",
    "best_grade",
    "worst_grade",
    "median_quality",
)


@dataclass(frozen=True)
class VendorRank:
    rank: int  # 1 = best (lowest score); ties share a rank
    vendor: str  # slug
    display_name: str
    # the documented score (SCORE_DESCRIPTION); None when the vendor has no measured current
    # label in the group
    score_wh: float | None
    models: int  # distinct models with a current label in the group
    labels: int  # current labels in the group (measured + estimated)
    measured: int
    estimated: int
    measured_share: float  # measured / labels (0..1)
    best_grade: str | None
    worst_grade: str | None
    # median over the vendor's models of their current labels' measured quality (0..1); None
    # when none of them has a measured figure
    median_quality: float | None

    @classmethod
    def of(cls, fields: dict[str, Any]) -> VendorRank:
        """A row from every field by name (:data:`FIELDS`, in order), without the frozen
        dataclass's ``__init__`` (:func:`registry.records.frozen_from`)."""
        return frozen_from(cls, fields)

    def as_dict(self) -> dict[str, Any]:
        """The fields by name, in :data:`FIELDS` order (``dataclasses.asdict`` without its deep
        copies)."""
        return self.__dict__.copy()


@dataclass(frozen=True)
class RankingPage:
    """One page of a ranking: its vendors in rank order, how many the group ranks in all, and
    the cursor of the next page (None at the end)."""

    vendors: list[VendorRank]
    total: int
    next_cursor: str | None
