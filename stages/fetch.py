"""fetch: write data/raw/<source>/ for every source in data.sources.

--dry-run prints what would be fetched (for tcia: patients, series by modality
and size, from the index that ships with idc-index) and fetches nothing.
"""

import argparse
import shutil

from crlm.config import load_params
from crlm.data.sources import SOURCES
from crlm.logs import stage_logger, stage_main
from crlm.options import look_up
from crlm.paths import RAW

log = stage_logger(__file__)


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dry-run", action="store_true", help="print the download plan only")
    parser.add_argument("--source", action="append", help="this source instead of data.sources (repeatable)")
    args = parser.parse_args()
    params = load_params(args.params)
    for name in args.source or params.data.sources:
        source = look_up("data.sources", name, SOURCES)
        if source.regenerate and not args.dry_run:
            shutil.rmtree(RAW / name, ignore_errors=True)
        log.info(f"{source.fetch(RAW, params, dry_run=args.dry_run)} -> {RAW / name}")


if __name__ == "__main__":
    main()
