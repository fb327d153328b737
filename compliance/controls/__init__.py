"""The control registry (`compliance.controls.registry`) and the controls, one module per
subject. Importing the package registers every control, in the order the report lists them."""

# Each subject module registers its controls when imported: this order is the report's.
# isort: off
from compliance.controls import buckets  # noqa: F401
from compliance.controls import documents  # noqa: F401
from compliance.controls import roles  # noqa: F401
from compliance.controls import topic  # noqa: F401
from compliance.controls import guard  # noqa: F401
from compliance.controls import keys  # noqa: F401
from compliance.controls import containers  # noqa: F401
from compliance.controls import ecs  # noqa: F401
# isort: on
from compliance.controls.documents import lint
from compliance.controls.registry import (
    REGISTRY,
    Control,
    ControlResult,
    controls_by_id,
    run_control,
    run_controls,
)

__all__ = ["REGISTRY", "Control", "ControlResult", "controls_by_id", "lint", "run_control",
           "run_controls"]
