"""Explanations: class activation maps (Grad-CAM) of every arch's image-level output, and how much of
them falls on the true tumour."""
