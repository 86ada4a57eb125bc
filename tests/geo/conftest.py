from .rasters import mosaic  # noqa: F401  (the session fixture)
