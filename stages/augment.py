"""augment: plots/augmentation.png, a few prepared images and their training augmentations."""

import torch

from crlm.core.config import cli_params
from crlm.core.logs import stage_logger, stage_main
from crlm.core.paths import PLOTS
from crlm.data.dataset import load_image_set
from crlm.data.transforms import AugmentConfig, augment_batch
from crlm.plots import augmentation_grid

VARIANTS_PER_IMAGE = 3
log = stage_logger(__file__)


@stage_main
def main() -> None:
    params = cli_params(__doc__, AugmentConfig)
    data = load_image_set()
    manifest = data.manifest
    # show metastasis images first: their outlines make the geometry of each transform visible
    ranked = manifest.sort_values(["label", "tumour_area_px"], ascending=False, kind="stable")
    chosen = list(ranked.drop_duplicates("patient_id").index[: params.augment.preview_images])
    torch.manual_seed(params.augment.seed)
    images = torch.from_numpy(data.images_at(chosen))[:, None]
    masks = torch.from_numpy(data.tumour_at(chosen))[:, None]
    out_images, out_masks = augment_batch(
        images.repeat_interleave(VARIANTS_PER_IMAGE, dim=0),
        masks.repeat_interleave(VARIANTS_PER_IMAGE, dim=0),
        params.augment,
    )  # each copy its own draw
    originals = [(images[k, 0].numpy(), masks[k, 0].numpy()) for k in range(len(chosen))]
    augmented = [
        [
            (out_images[k * VARIANTS_PER_IMAGE + v, 0].numpy(), out_masks[k * VARIANTS_PER_IMAGE + v, 0].numpy())
            for v in range(VARIANTS_PER_IMAGE)
        ]
        for k in range(len(chosen))
    ]
    titles = [str(manifest.loc[i, "image_id"]) for i in chosen]
    augmentation_grid(PLOTS / "augmentation.png", originals, augmented, titles)
    log.info(f"{len(chosen)} images x {VARIANTS_PER_IMAGE} augmentations -> {PLOTS / 'augmentation.png'}")


if __name__ == "__main__":
    main()
