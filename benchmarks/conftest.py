"""Let ``python -m pytest benchmarks -m benchmark`` find the package-relative imports."""
