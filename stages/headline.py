"""headline: the numbers a reviewer decides on (crlm.headline.REVIEW), from the detailed metrics files.

Writes metrics/headline.json, the one file dvc.yaml declares as metrics: `dvc metrics diff`, `dvc exp show`
and `crlm review` read it; the detailed files it reads stay git-tracked outputs of their stages.
"""

from crlm.core.io import read_json, write_json
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import METRICS
from crlm.headline import REVIEW_FILES, review_numbers

log = stage_logger(__file__)


@stage_main
def main() -> None:
    numbers = review_numbers({name: read_json(METRICS / f"{name}.json") for name in REVIEW_FILES})
    write_json(METRICS / "headline.json", numbers)
    log.info(f"{sum(len(group) for group in numbers.values())} headline numbers")


if __name__ == "__main__":
    main()
