"""The intake API, one module per topic; ``services/intake/api.py`` puts them together."""
