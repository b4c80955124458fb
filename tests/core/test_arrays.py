"""Large arrays a block of rows at a time: the streamed .npz is np.savez_compressed's file, byte for byte, and
reads back exactly; a damaged one is an error naming the file and the stage."""

import numpy as np
import pytest

from crlm.core.arrays import NpzStreamWriter, RowBlocks, blocks, npz_rows, npz_shape
from crlm.core.io import DataFileError


def _arrays(n=50):
    rng = np.random.default_rng(3)
    return {
        "image_id": np.array([f"p-s{i:03d}" for i in range(n)]),
        "seg_prob": rng.random((n, 12, 10)).astype(np.float16),
        "prob": rng.random(n).astype(np.float32),
    }


def test_a_streamed_npz_is_the_file_savez_compressed_writes(tmp_path):
    arrays = _arrays()
    np.savez_compressed(tmp_path / "whole.npz", **arrays)
    with NpzStreamWriter(tmp_path / "streamed.npz") as npz:
        npz.add("image_id", arrays["image_id"])
        seg = arrays["seg_prob"]
        npz.add_rows("seg_prob", np.float16, seg.shape, (seg[b] for b in blocks(len(seg), 7)))
        npz.add("prob", arrays["prob"])
    assert (tmp_path / "streamed.npz").read_bytes() == (tmp_path / "whole.npz").read_bytes()


def test_rows_read_back_a_block_at_a_time(tmp_path):
    arrays = _arrays()
    np.savez_compressed(tmp_path / "a.npz", **arrays)
    read = list(npz_rows(tmp_path / "a.npz", "train@unet", "seg_prob", rows=16))
    assert [len(block) for block in read] == [16, 16, 16, 2]
    assert np.concatenate(read).tobytes() == arrays["seg_prob"].tobytes()
    assert npz_shape(tmp_path / "a.npz", "train@unet", "seg_prob") == ((50, 12, 10), np.dtype(np.float16))
    assert npz_shape(tmp_path / "a.npz", "train@unet", "nothing") is None
    blocked = RowBlocks.of(arrays["seg_prob"], rows=20)
    assert len(blocked) == 50 and [len(b) for b in blocked] == [20, 20, 10]  # each iteration from the start
    assert blocked.gather().tobytes() == arrays["seg_prob"].tobytes()


def test_a_damaged_npz_read_by_rows_names_the_file_and_the_stage(tmp_path):
    path = tmp_path / "a.npz"
    np.savez_compressed(path, **_arrays())
    content = bytearray(path.read_bytes())
    content[len(content) // 2] ^= 0xFF  # one flipped byte inside the compressed maps
    path.write_bytes(bytes(content))
    with pytest.raises(DataFileError) as caught:
        list(npz_rows(path, "train@unet", "seg_prob"))
    assert str(caught.value).startswith(f"{path}: unreadable .npz file (truncated or damaged: ")
    assert str(caught.value).endswith("rerun the stage that writes it (dvc repro -f train@unet)")
    with pytest.raises(DataFileError, match=r"no array \['maps'\]"):
        list(npz_rows(tmp_path / "a.npz", "train@unet", "maps"))


def test_rows_of_another_shape_or_count_are_refused(tmp_path):
    with NpzStreamWriter(tmp_path / "a.npz") as npz:
        with pytest.raises(ValueError, match="rows of shape"):
            npz.add_rows("seg_prob", np.float16, (4, 3, 3), [np.zeros((4, 3, 2))])
    with NpzStreamWriter(tmp_path / "b.npz") as npz:
        with pytest.raises(ValueError, match="3 rows written of 4"):
            npz.add_rows("seg_prob", np.float16, (4, 3, 3), [np.zeros((3, 3, 3))])


def test_a_faster_compression_level_reads_back_the_same_arrays(tmp_path):
    arrays = _arrays()
    with NpzStreamWriter(tmp_path / "fast.npz", level=1) as npz:
        for name, array in arrays.items():
            npz.add(name, array)
    np.savez_compressed(tmp_path / "default.npz", **arrays)
    assert (tmp_path / "fast.npz").read_bytes() != (tmp_path / "default.npz").read_bytes()
    with np.load(tmp_path / "fast.npz") as read:
        assert all(read[name].tobytes() == array.tobytes() for name, array in arrays.items())
