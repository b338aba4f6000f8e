"""The base of every flows.yaml model."""

from pydantic import BaseModel, ConfigDict


class Model(BaseModel):
    """Base for every schema model: unknown keys are errors, values are immutable."""

    model_config = ConfigDict(extra="forbid", frozen=True)
