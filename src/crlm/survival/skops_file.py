"""A fitted survival classifier (crlm.survival.classifiers' pipeline) as a data-only file that cannot run code
when it is loaded.

The format is skops' (a zip of a JSON schema and .npy arrays): loading rebuilds the pipeline from its
attributes, and only the types listed in TRUSTED_TYPES may be named in the schema. A pickle or joblib file
would run whatever callable it names. ONNX (skl2onnx + onnxruntime) was the other candidate, and was checked
on random embeddings: its float32 graph put a few patients down another branch of one of a random forest's
trees (one tree's vote apart: far beyond 1e-6), and even its float64 graph was within float rounding, not
equal. skops keeps the scikit-learn objects themselves, so `crlm predict` computes exactly the probabilities
the survival stage computed.

Loading checks, in this order and before anything is built: the file's sha256 against the one recorded
beside it (a modified file is refused even when its types are all trusted); every type and node kind the
schema names against TRUSTED_TYPES and NODE_KINDS (this project's own list, not skops' broader defaults);
then skops itself loads with the same explicit trusted list, and the result must be a Pipeline.

skops names the zip's members after Python object ids and stamps them with the time, so the same pipeline
would give other bytes on every run; `dump_pipeline` renumbers the ids in the order the schema meets them and
fixes the time stamps, so a rerun of the survival stage writes the same bytes.
"""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import skops.io
from sklearn.pipeline import Pipeline

from crlm.core.errors import UserError

# every type a fitted pipeline of crlm.survival.classifiers names (logistic regression or random forest,
# either class weight); tests/survival/test_skops_file.py dumps each one and checks this list is enough
TRUSTED_TYPES = (
    "builtins.dict",
    "builtins.list",
    "builtins.str",
    "builtins.tuple",
    "numpy.float64",
    "numpy.int64",
    "numpy.ndarray",
    "sklearn.decomposition._pca.PCA",
    "sklearn.ensemble._forest.RandomForestClassifier",
    "sklearn.feature_selection._variance_threshold.VarianceThreshold",
    "sklearn.linear_model._logistic.LogisticRegression",
    "sklearn.pipeline.Pipeline",
    "sklearn.preprocessing._data.StandardScaler",
    "sklearn.tree._classes.DecisionTreeClassifier",
    "sklearn.tree._tree.Tree",
)
# the skops node kinds those types are stored as (a function, method or operator node is never one of ours)
NODE_KINDS = ("DictNode", "JsonNode", "ListNode", "NdArrayNode", "ObjectNode", "TreeNode", "TupleNode", "TypeNode")
SCHEMA = "schema.json"
ZIP_TIME = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can hold


class SkopsFileError(UserError, ValueError):
    """A survival classifier file that is refused: missing, modified, damaged or naming an untrusted type."""


def sha256(path: str | Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def dump_pipeline(path: str | Path, pipeline: Pipeline) -> str:
    """Write `pipeline` to `path` (byte-stable) and return the file's sha256; the file is read back by
    load_pipeline first, so a pipeline naming a type outside TRUSTED_TYPES fails here, not in predict."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_canonical(skops.io.dumps(pipeline)))
    digest = sha256(path)
    load_pipeline(path, digest)
    return digest


def load_pipeline(path: str | Path, expected_sha256: str) -> Pipeline:
    """The pipeline in `path`, after the checks in the module docstring; SkopsFileError names the file."""
    path = Path(path)
    if not path.is_file():
        raise SkopsFileError(f"{path}: survival classifier file not found")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != expected_sha256:
        raise SkopsFileError(
            f"{path}: its sha256 differs from the one recorded when the survival stage wrote it: the file was "
            "modified or replaced; refused (rerun the survival stage to write it again)"
        )
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            schema = json.loads(archive.read(SCHEMA))
    except (zipfile.BadZipFile, KeyError, ValueError) as exc:
        raise SkopsFileError(f"{path}: not a skops file ({exc})") from None
    types, kinds = named_in(schema)
    untrusted = sorted(types - set(TRUSTED_TYPES)) + sorted(kinds - set(NODE_KINDS))
    if untrusted:
        raise SkopsFileError(f"{path}: names untrusted type(s) {untrusted}; refused, nothing was loaded")
    try:
        pipeline = skops.io.loads(data, trusted=list(TRUSTED_TYPES))
    except Exception as exc:  # noqa: BLE001 - skops raises many kinds on a damaged file; one line naming it
        raise SkopsFileError(f"{path}: unreadable skops file ({type(exc).__name__}: {exc})") from None
    if not isinstance(pipeline, Pipeline):
        raise SkopsFileError(f"{path}: holds a {type(pipeline).__name__}, not a scikit-learn Pipeline")
    return pipeline


def named_in(schema) -> tuple[set[str], set[str]]:
    """Every `module.class` and every node kind (`__loader__`) anywhere in a skops schema."""
    types: set[str] = set()
    kinds: set[str] = set()
    stack = [schema]
    while stack:
        node = stack.pop()
        if isinstance(node, dict):
            if "__module__" in node or "__class__" in node:
                types.add(f"{node.get('__module__')}.{node.get('__class__')}")
            if "__loader__" in node:
                kinds.add(str(node["__loader__"]))
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)
    return types, kinds


def _canonical(data: bytes) -> bytes:
    """skops' zip with its object ids renumbered 0, 1, ... in schema order (the same bijection for `__id__`
    and the array files named after them) and fixed time stamps."""
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        schema = json.loads(archive.read(SCHEMA))
        ids: dict[int, int] = {}
        files: dict[str, str] = {}

        def renumber(node):
            if isinstance(node, dict):
                out = {key: renumber(value) for key, value in node.items()}
                if "__id__" in node:
                    out["__id__"] = ids.setdefault(node["__id__"], len(ids))
                if node.get("__loader__") == "NdArrayNode" and "file" in node:
                    out["file"] = files.setdefault(node["file"], f"{len(files)}.npy")
                return out
            return [renumber(value) for value in node] if isinstance(node, list) else node

        schema = renumber(schema)
        members = set(archive.namelist()) - {SCHEMA}
        if members != set(files):
            raise ValueError(f"skops file holds members the schema does not name: {sorted(members - set(files))}")
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_STORED) as out:
            for old, new in files.items():
                out.writestr(zipfile.ZipInfo(new, ZIP_TIME), archive.read(old))
            out.writestr(zipfile.ZipInfo(SCHEMA, ZIP_TIME), json.dumps(schema, indent=2))
    return buffer.getvalue()
