"""embed: the model.embedding_dim vector of every patient from each fold's model of each arch
(embed.aggregation over the patient's prepared images).

Each fold's model embeds every patient, so that the survival stage can cross-fit: a
classifier trained on fold k's training patients as CNN_k sees them predicts fold k's
validation patients and the test patients through the same CNN_k (embeddings of different
networks have different coordinates and are never pooled).

Writes data/embeddings/<arch>.parquet: one row per (fold, patient).
"""

import pandas as pd

from crlm.archs import ARCHS
from crlm.core.config import cli_params
from crlm.core.io import write_parquet
from crlm.core.logs import progress, stage_logger, stage_main
from crlm.core.paths import EMBEDDINGS, MODELS, SPLITS
from crlm.data.dataset import load_image_set
from crlm.data.splits import Splits
from crlm.embedding.config import EmbedConfig
from crlm.embedding.extract import patient_embeddings
from crlm.models.folds import FoldModels
from crlm.models.model_file import load_model

log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, EmbedConfig)
    data = load_image_set()
    folds = Splits.read(SPLITS).fold_names
    models = {arch: FoldModels.of(arch, folds, MODELS) for arch in ARCHS}
    frames: dict[str, list] = {arch: [] for arch in ARCHS}
    for arch, fold in progress([(a, f) for a in ARCHS for f in folds], "embed", unit="model"):
        frame = patient_embeddings(
            load_model(models[arch].model_path(fold), expected_arch=arch),
            data,
            params.embed.batch_size,
            params.embed.aggregation,
        )
        frames[arch].append(frame.assign(fold=fold)[["fold", *frame.columns]])
    for arch, per_fold in frames.items():
        write_parquet(EMBEDDINGS / f"{arch}.parquet", pd.concat(per_fold, ignore_index=True))
        dim = sum(c.startswith("emb_") for c in per_fold[0].columns)
        log.info(
            f"{arch}: {len(data.manifest)} images of {len(per_fold[0])} patients, {dim}-d, "
            f"by each of {len(folds)} fold models"
        )


if __name__ == "__main__":
    main()
