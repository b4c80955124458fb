"""fetch: write data/raw/<source>/ for every source in data.sources."""

import argparse
import shutil

from crlm.config import load_params
from crlm.data.sources import fetch
from crlm.paths import RAW


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = load_params(args.params)
    for source in params.data.sources:
        if source == "phantom":  # generated: always rebuilt from scratch
            shutil.rmtree(RAW / source, ignore_errors=True)
        fetch(source, RAW, params.phantom)
        print(f"fetch: {source} -> {RAW / source}")


if __name__ == "__main__":
    main()
