"""Host-side exporters (torch): checkpoint -> bundle (model file + manifest) per format."""
