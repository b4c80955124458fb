"""fetch: write data/raw/<source>/ for every source in data.sources.

--dry-run prints what would be fetched (for tcia: patients, series by modality
and size, from the index that ships with idc-index) and fetches nothing.
"""

import argparse
import shutil

from crlm.config import load_params
from crlm.data.sources import fetch
from crlm.paths import RAW


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dry-run", action="store_true", help="print the download plan only")
    parser.add_argument("--source", action="append", help="this source instead of data.sources (repeatable)")
    args = parser.parse_args()
    params = load_params(args.params)
    for source in args.source or params.data.sources:
        if source == "phantom" and not args.dry_run:  # generated: always rebuilt from scratch
            shutil.rmtree(RAW / source, ignore_errors=True)
        print(f"fetch: {fetch(source, RAW, params, dry_run=args.dry_run)} -> {RAW / source}")


if __name__ == "__main__":
    main()
