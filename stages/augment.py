"""augment: plots/augmentation.png, a few prepared images and their training augmentations."""

import numpy as np
import torch

from crlm.config import cli_params
from crlm.data.transforms import augment_pair, training_transform
from crlm.io import read_parquet
from crlm.paths import PLOTS, PROCESSED_ARRAYS, PROCESSED_MANIFEST
from crlm.plots import augmentation_grid

VARIANTS_PER_IMAGE = 3


def main() -> None:
    params = cli_params(__doc__)
    manifest = read_parquet(PROCESSED_MANIFEST)
    arrays = np.load(PROCESSED_ARRAYS)
    # show metastasis images first: their outlines make the geometry of each transform visible
    ranked = manifest.sort_values(["label", "tumour_area_px"], ascending=False, kind="stable")
    chosen = list(ranked.drop_duplicates("patient_id").index[: params.augment.preview_images])
    torch.manual_seed(params.augment.seed)
    transform = training_transform(params.augment, params.data.image_size)
    originals, augmented = [], []
    for i in chosen:
        image = torch.from_numpy(arrays["images"][i].astype(np.float32))[None]
        mask = torch.from_numpy(arrays["tumour"][i])[None]
        originals.append((image[0].numpy(), mask[0].numpy()))
        variants = [augment_pair(transform, image, mask) for _ in range(VARIANTS_PER_IMAGE)]
        augmented.append([(v[0][0].numpy(), v[1][0].numpy()) for v in variants])
    titles = [str(manifest.loc[i, "image_id"]) for i in chosen]
    augmentation_grid(PLOTS / "augmentation.png", originals, augmented, titles)
    print(f"augment: {len(chosen)} images x {VARIANTS_PER_IMAGE} augmentations -> {PLOTS / 'augmentation.png'}")


if __name__ == "__main__":
    main()
