from typing import Literal

from pydantic import BaseModel, Field

from pickwise.exports.dataset.aggregation import AggregationMode, AggregationOptions
from pickwise.exports.dataset.formats import ExportFormat
from pickwise.exports.dataset.manifest import SelectionRecord
from pickwise.exports.dataset.pipeline import ExportOptions
from pickwise.exports.dataset.splits import Split
from pickwise.review.schemas import PairFilter


class ExportQuery(PairFilter):
    """Options shared by the CLI, the API and the admin page: the pairs explorer's filter
    (so a filtered view becomes a dataset) and the export's own options."""

    format: ExportFormat = ExportFormat.TRL
    aggregation: AggregationMode = AggregationMode.MAJORITY
    min_votes: int = Field(1, ge=1, le=1000)
    min_agreement: float = Field(0.0, ge=0.0, le=1.0)
    test_fraction: float = Field(0.1, ge=0.0, le=1.0)
    seed: int = 0
    batch_id: list[int] = Field(default_factory=list, description="Only these batches.")
    include_gold: bool = False
    include_excluded: bool = Field(False, description="Keep votes of excluded raters.")
    split: Literal["all", "train", "test"] = "all"

    def options(self) -> ExportOptions:
        return ExportOptions(
            format=self.format,
            aggregation=AggregationOptions(
                mode=self.aggregation, min_votes=self.min_votes, min_agreement=self.min_agreement
            ),
            test_fraction=self.test_fraction,
            seed=self.seed,
        )

    def pair_filter(self) -> PairFilter:
        """The explorer's filter; `batch_id` (the export's older name) adds to `batch`."""
        fields = self.model_dump(include=set(PairFilter.model_fields))
        fields["batch"] = sorted({*self.batch, *self.batch_id})
        return PairFilter.model_validate(fields)

    def record(self) -> SelectionRecord:
        """What the manifest says was selected."""
        return SelectionRecord(
            filter=self.pair_filter().as_record(),
            include_gold=self.include_gold,
            include_excluded=self.include_excluded,
        )

    def only_split(self) -> Split | None:
        return None if self.split == "all" else Split(self.split)


class PreviewRead(BaseModel):
    votes: int
    kept: int
    unit: str
    dropped: dict[str, int]
    conversational: bool
    summary: str
