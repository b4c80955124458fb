"""Image-level classification and segmentation metrics, with patient-level bootstrap CIs."""
