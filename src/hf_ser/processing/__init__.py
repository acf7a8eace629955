"""From raw inputs to model inputs: feature extraction, the multimodal processor, collators and the embedding cache."""
