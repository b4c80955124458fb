"""embed: the model.embedding_dim vector of every prepared image from each arch's final model,
and one vector per patient (embed.aggregation over its images).

Writes data/embeddings/<arch>.parquet (rows with level "image" and level "patient").
"""

from crlm.config import cli_params
from crlm.data.dataset import load_image_set
from crlm.data.splits import FINAL
from crlm.io import write_parquet
from crlm.models.model_file import load_model
from crlm.models.registry import ARCHS
from crlm.paths import EMBEDDINGS, MODELS, PROCESSED_ARRAYS, PROCESSED_MANIFEST
from crlm.survival.embeddings import embedding_frame


def main() -> None:
    params = cli_params(__doc__)
    data = load_image_set(PROCESSED_ARRAYS, PROCESSED_MANIFEST)
    for arch in ARCHS:
        model = load_model(MODELS / arch / FINAL / "model.pt")
        frame = embedding_frame(model, data, params.embed.batch_size, params.embed.aggregation)
        write_parquet(EMBEDDINGS / f"{arch}.parquet", frame)
        n_patients = int((frame["level"] == "patient").sum())
        print(f"embed {arch}: {len(data.manifest)} images, {n_patients} patients, "
              f"{sum(c.startswith('emb_') for c in frame.columns)}-d")


if __name__ == "__main__":
    main()
