"""Host half of edgepose (needs torch: `pip install edgepose[train]`): models, data, training, export."""
