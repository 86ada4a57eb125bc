"""One module per dataset; see :mod:`aerith.data.registry` for the names."""
