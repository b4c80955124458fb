"""report: reports/report.md, the paper's tables and figures with our numbers beside the paper's."""

from crlm.config import cli_params
from crlm.io import read_json
from crlm.logs import stage_logger, stage_main
from crlm.paths import METRICS, REPORTS
from crlm.report import render

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__)
    text = render(params, *(read_json(METRICS / f"{name}.json")
                            for name in ("classification", "segmentation", "survival", "compare", "stability")),
                  beyond={name: read_json(METRICS / f"{name}.json") for name in ("lesions", "cam", "calibration")})
    REPORTS.mkdir(parents=True, exist_ok=True)
    (REPORTS / "report.md").write_text(text + "\n")
    log.info(f"wrote {REPORTS / 'report.md'}")


if __name__ == "__main__":
    main()
