"""CRLM: reproducible recognition, segmentation and survival pipeline for colorectal liver metastases."""

__version__ = "0.1.0"
