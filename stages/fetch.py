"""fetch: each source of data.sources into its folder of the raw store, listed in data/raw.json.

The raw store is $CRLM_RAW_DIR (an absolute path: several workspaces and queued
experiments can share it), else data/raw. Downloads resume there; the phantom is
generated once per (params, code) into phantom-<hash>/ and then kept. data/raw.json
(the DVC output) lists each source's folder and every file's path, size and md5,
never where the store lies, so it is the same on every machine.

--dry-run prints what would be fetched (for tcia: patients, series by modality
and size, from the index that ships with idc-index) and fetches nothing.
--source fetches these sources instead of data.sources and adds them to data/raw.json.
"""

import argparse
import json

from crlm.core.config import load_sections
from crlm.core.logs import stage_logger, stage_main
from crlm.core.options import look_up
from crlm.core.paths import RAW_MANIFEST, raw_dir
from crlm.data.config import DataConfig, PhantomConfig
from crlm.data.pool import WorkersConfig, cpu_budget
from crlm.data.sources import SOURCES
from crlm.data.sources.store import describe, locked, read_manifest, write_manifest

log = stage_logger(__file__)


@stage_main
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--params", default="params.yaml")
    parser.add_argument("--dry-run", action="store_true", help="print the download plan only")
    parser.add_argument("--source", action="append", help="this source instead of data.sources (repeatable)")
    args = parser.parse_args()
    params = load_sections(args.params, DataConfig, PhantomConfig, WorkersConfig)
    workers = cpu_budget(params.train.workers)
    store = raw_dir()
    listed = read_manifest(RAW_MANIFEST) if args.source and RAW_MANIFEST.is_file() else {}
    for name in args.source or params.data.sources:
        source = look_up("data.sources", name, SOURCES)
        folder = source.folder(params)
        if args.dry_run:
            log.info(source.fetch(store / folder, params, dry_run=True).summary)
            continue
        # one fetch of a folder at a time: queued experiments may share the store
        with locked(store / f".{folder}.lock"):
            fetched = source.fetch(store / folder, params, workers=workers)
            listed[name] = {"folder": folder, "files": describe(store / folder, fetched.files)}
        log.info(f"{fetched.summary} -> {store / folder} ({len(fetched.files)} files)")
    if not args.dry_run:
        write_manifest(RAW_MANIFEST, listed)
        log.info(f"{RAW_MANIFEST}: {json.dumps({n: s['folder'] for n, s in listed.items()})} in {store}")


if __name__ == "__main__":
    main()
