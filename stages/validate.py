"""validate: the whole params.yaml, checked before any other stage runs.

Every stage is downstream of this one (fetch depends on its output), so DVC runs it first: a bad or misspelt
param (`dvc exp run -S model.arch=resnet`, `-S +trian.epochs=3`) fails here, before DVC has deleted any
stage's outputs. Its output, data/params.valid, has the same bytes whenever the params are valid, so a
valid change reruns nothing downstream because of it.
"""

from pathlib import Path

from crlm.core.config import ConfigError
from crlm.core.logs import stage_logger, stage_main
from crlm.params import load_params

PARAMS = "params.yaml"
VALID = Path("data/params.valid")
RESTORE = (
    "nothing was deleted (this stage runs before every other); correct the value, or restore the "
    "committed params with `git checkout params.yaml` (a failed `dvc exp run -S ...` leaves its value "
    "there), then rerun"
)

log = stage_logger(__file__)


@stage_main
def main() -> None:
    try:
        load_params(PARAMS)
    except ConfigError as exc:
        where = "" if str(exc).startswith(PARAMS) else f"{PARAMS}: "
        raise ConfigError(f"{where}{exc}; {RESTORE}") from None
    VALID.parent.mkdir(parents=True, exist_ok=True)
    VALID.write_text("params.yaml: every section and value valid\n")


if __name__ == "__main__":
    main()
