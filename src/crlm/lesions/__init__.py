"""Lesion-level evaluation of the segmenting archs on the independent test set (the lesions stage).

`matching`: connected components of predicted and true masks, matched by overlap (sensitivity, false
positives, per-lesion Dice); `size`: the prepared images' pixel size in mm (from prepare's crop box) and the
lesions' equivalent diameters and size bands; `volumes`: each test patient's slices back in the original
slice geometry, stacked by slice_index, for 3-D lesions; `run`: every segmenting arch as the stage writes
it (metrics/lesions.json, the FROC points); `report`: the report's section.
"""
