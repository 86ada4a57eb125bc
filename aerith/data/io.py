"""Image reading moved to :mod:`aerith.imageio` (models and serving read images too); re-exported here."""

from aerith.imageio import array_to_rgb, check_image, image_size, load_rgb, pixel_limit, read_array

__all__ = ["array_to_rgb", "check_image", "image_size", "load_rgb", "pixel_limit", "read_array"]
