"""embed: the model.embedding_dim vector of every prepared image from each arch's fold-0 model,
and one vector per patient (embed.aggregation over its images).

One model embeds every patient, so that all vectors share one coordinate system (a survival
classifier cannot pool embeddings of different networks). Fold 0's model was trained on the
images of most development patients: their embeddings are in-sample for the image label (not
for survival); cross-fitting by fold replaces this in a later issue.

Writes data/embeddings/<arch>.parquet (rows with level "image" and level "patient").
"""

from crlm.config import cli_params
from crlm.data.dataset import load_image_set
from crlm.io import write_parquet
from crlm.models.model_file import load_model
from crlm.models.registry import ARCHS
from crlm.paths import EMBEDDINGS, MODELS, PROCESSED_ARRAYS, PROCESSED_MANIFEST
from crlm.survival.embeddings import embedding_frame


EMBEDDING_FOLD = "0"


def main() -> None:
    params = cli_params(__doc__)
    data = load_image_set(PROCESSED_ARRAYS, PROCESSED_MANIFEST)
    for arch in ARCHS:
        model = load_model(MODELS / arch / EMBEDDING_FOLD / "model.pt")
        frame = embedding_frame(model, data, params.embed.batch_size, params.embed.aggregation)
        write_parquet(EMBEDDINGS / f"{arch}.parquet", frame)
        n_patients = int((frame["level"] == "patient").sum())
        print(f"embed {arch}: {len(data.manifest)} images, {n_patients} patients, "
              f"{sum(c.startswith('emb_') for c in frame.columns)}-d")


if __name__ == "__main__":
    main()
