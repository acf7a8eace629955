"""Publishing: model cards, the Hub and the Space, and conversion of the papers' released checkpoints."""
