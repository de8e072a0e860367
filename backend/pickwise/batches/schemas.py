from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field


class BatchRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    filename: str
    sha256: str
    size_bytes: int
    source: str
    created_by_id: int | None
    created_at: datetime
    prompts_new: int
    prompts_unchanged: int
    responses_new: int
    pairs_new: int


class ImportResult(BaseModel):
    batch_id: int | None = Field(
        description="The new batch; null when nothing in the file was new (no batch is added)."
    )
    nothing_new: bool = Field(
        description="Every prompt of the file is already in the project, unchanged."
    )
    prompts_new: int
    prompts_unchanged: int
    responses_new: int
    pairs_new: int
    sha256: str
    summary: str
