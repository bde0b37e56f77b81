"""Measuring models: accuracy on labelled datasets, metrics, latency per stage and per frame, `edgepose bench`, plots,
composed test frames and the model card. Device half (numpy, OpenCV, the engines); never torch."""
