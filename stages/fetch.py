"""fetch: write data/raw/<source>/ for every source in data.sources."""

import shutil

from crlm.config import cli_params
from crlm.data.sources import fetch
from crlm.paths import RAW


def main() -> None:
    params = cli_params(__doc__)
    for source in params.data.sources:
        if source == "phantom":  # generated: always rebuilt from scratch
            shutil.rmtree(RAW / source, ignore_errors=True)
        fetch(source, RAW, params.phantom)
        print(f"fetch: {source} -> {RAW / source}")


if __name__ == "__main__":
    main()
