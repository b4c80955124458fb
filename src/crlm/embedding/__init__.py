"""Patient embeddings of each fold model (the embed stage): extraction (torch) and the table they are kept in."""
