"""The data sources, one object each (crlm.data.sources.base.Source): phantom, tcia, lits.

fetch writes each source into its folder of the raw store (crlm.core.paths.raw_dir():
$CRLM_RAW_DIR, else data/raw) exactly as the source gives it, and lists the folder
and its files in data/raw.json (store.py); the slices stage checks the store
against that list, lists each source's cases (volume + label map), reads them
with the source's reader, and takes its clinical table. Adding a source takes one module
here with its Source class, one entry in SOURCES, and its name in
crlm.data.config.SourceName (tests/core/test_options.py ties the two).
"""

from __future__ import annotations

from crlm.data.sources.base import Case, CaseError, Fetched, Source, patient_id
from crlm.data.sources.lits import LitsSource
from crlm.data.sources.phantom import PhantomSource
from crlm.data.sources.store import Listing, RawStoreError
from crlm.data.sources.tcia import TciaSource

# data.sources -> the source
SOURCES: dict[str, Source] = {"phantom": PhantomSource(), "tcia": TciaSource(), "lits": LitsSource()}

__all__ = ["SOURCES", "Case", "CaseError", "Fetched", "Listing", "RawStoreError", "Source", "patient_id"]
