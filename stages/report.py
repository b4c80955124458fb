"""report: reports/report.md, the paper's tables and figures with our numbers beside the paper's."""

from crlm.core.config import cli_params
from crlm.core.io import read_json
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import METRICS, REPORTS
from crlm.data.config import DataConfig, PrepareConfig
from crlm.data.split_making import SplitConfig
from crlm.models.config import ModelConfig
from crlm.report import render
from crlm.stats.config import StatsConfig
from crlm.survival.config import SurvivalConfig
from crlm.training.config import TrainConfig

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(
        __doc__, DataConfig, PrepareConfig, SplitConfig, ModelConfig, TrainConfig, StatsConfig, SurvivalConfig
    )
    text = render(
        params,
        *(
            read_json(METRICS / f"{name}.json")
            for name in ("classification", "segmentation", "survival", "compare", "stability")
        ),
        beyond={name: read_json(METRICS / f"{name}.json") for name in ("lesions", "cam", "calibration")},
    )
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "report.md").write_text(text + "\n")
    log.info(f"wrote {REPORTS / 'report.md'}")


if __name__ == "__main__":
    main()
