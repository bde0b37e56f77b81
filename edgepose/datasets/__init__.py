"""Dataset readers: each converts labels into the edgepose angle convention (see edgepose.angles) at the door."""
