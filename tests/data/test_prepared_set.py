"""The prepared set on disk: written a block at a time (by one process or several, the same bytes), read
back through a memory map as exactly the arrays prepare computes in memory."""

import dataclasses
import io

import numpy as np
import pytest

from crlm.core.io import write_parquet
from crlm.data import phantom
from crlm.data import prepare as prepare_module
from crlm.data.dataset import load_image_set, load_liver
from crlm.data.prepare import kept_slices, prepare_slices, processed_manifest, write_prepared
from crlm.data.qc import run_qc
from crlm.data.slices import build_slices
from crlm.data.sources.phantom import volume_folder_cases
from crlm.params import params_from_dict
from tests.conftest import tiny_params_dict


@pytest.fixture(scope="module")
def tiny():
    return params_from_dict(tiny_params_dict())


@pytest.fixture(scope="module")
def kept(tmp_path_factory, tiny):
    root = tmp_path_factory.mktemp("prepared")
    cfg = dataclasses.replace(tiny.phantom, n_patients=4, n_slices=10, defect_rate=0.0)
    phantom.write_phantom(cfg, root / "raw")
    slices = build_slices(volume_folder_cases("phantom", root / "raw"), root / "slices", min_tumor_px=30)
    return kept_slices(slices, run_qc(slices, root / "slices", tiny.qc)), root / "slices"


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def test_the_prepared_files_are_np_save_of_the_in_memory_arrays_with_one_worker_or_two(
    tmp_path, kept, tiny, monkeypatch
):
    slices, slices_dir = kept
    cfg = tiny.prepare
    arrays, boxes = prepare_slices(slices, slices_dir, cfg)  # every image in memory at once
    monkeypatch.setattr(prepare_module, "BLOCK_ROWS", 7)  # several blocks, so that two workers share them
    assert len(slices) > 4 * 7
    for workers in (1, 2):
        out = tmp_path / str(workers)
        written_boxes = write_prepared(slices, slices_dir, cfg, out, workers=workers)
        assert written_boxes.equals(boxes)
        for name, file in (("images", "images.npy"), ("tumour", "tumour.npy"), ("liver", "liver.npy")):
            assert (out / file).read_bytes() == _npy_bytes(arrays[name]), (workers, name)
        assert sorted(p.name for p in out.iterdir()) == ["images.npy", "liver.npy", "tumour.npy"]  # no temporaries


def test_the_mapped_set_reads_as_the_float32_arrays_training_used_before(tmp_path, kept, tiny):
    slices, slices_dir = kept
    arrays, boxes = prepare_slices(slices, slices_dir, tiny.prepare)
    write_prepared(slices, slices_dir, tiny.prepare, tmp_path)
    write_parquet(tmp_path / "manifest.parquet", processed_manifest(slices, boxes))

    data = load_image_set(tmp_path)
    assert isinstance(data.images, np.memmap) and data.images.dtype == np.float16
    rows = np.array([5, 0, 3, len(slices) - 1])
    expected = arrays["images"].astype(np.float32)  # what the whole set was converted to in memory
    assert data.images_at(rows).dtype == np.float32
    assert data.images_at(rows).tobytes() == expected[rows].tobytes()
    assert data.images_at(slice(None)).tobytes() == expected.tobytes()
    np.testing.assert_array_equal(data.tumour_at(rows), arrays["tumour"][rows])
    np.testing.assert_array_equal(load_liver(tmp_path), arrays["liver"])
    assert data.image_shape == (tiny.prepare.image_size,) * 2
