"""Survival prediction from image embeddings: features, the binary endpoint, classifiers, analysis."""
