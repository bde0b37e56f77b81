"""Packaged platform YAML files (installed as edgepose.platforms); see edgepose/platforms.py for the schema."""
