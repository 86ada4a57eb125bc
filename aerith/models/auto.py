"""Aerith in transformers' Auto classes: ``AutoConfig``, ``AutoModelForImageTextToText``, ``AutoProcessor``.

Each class registers itself, with transformers' official ``register`` APIs, at the end
of the module that defines it, so the Auto classes know Aerith as soon as one of those
modules is imported. ``import aerith`` must stay light (the command line and the data
tools never load torch), so it does not import them; it asks for a post-import hook on
``transformers`` instead (:func:`register_when_transformers_loads`, through wrapt, a
library made for this): the first time transformers is imported, the three modules are
imported and register. Thus, after ``import aerith``::

    AutoModelForImageTextToText.from_pretrained(folder)   # AerithForConditionalGeneration
    AutoProcessor.from_pretrained(folder)                  # AerithProcessor

No ``trust_remote_code``: the classes are ordinary Python, installed with Aerith.
"""

from __future__ import annotations

import importlib
import logging
import sys

logger = logging.getLogger(__name__)

AUTO_MODULES = (
    "aerith.models.configuration_aerith",
    "aerith.models.modeling_aerith",
    "aerith.models.processing_aerith",
)


def register_auto_classes() -> None:
    """Import Aerith's config, model and processor modules, which register their classes (idempotent)."""
    for name in AUTO_MODULES:
        importlib.import_module(name)


def _on_transformers_import(_module) -> None:
    if any(name in sys.modules for name in AUTO_MODULES):
        # One of them is loading (it imported transformers first) or loaded: each registers itself when
        # it finishes, and importing the others now could meet it half-initialised.
        return
    for name in AUTO_MODULES:
        try:
            importlib.import_module(name)
        except ImportError as err:
            # transformers was first imported by another aerith module that is itself half-way through
            # its import; the module registers when it is next imported (load_vlm imports all three).
            logger.debug("deferred Auto registration of %s: %s", name, err)


def register_when_transformers_loads() -> None:
    """Register the Auto classes once transformers is imported (at once when it already is)."""
    import wrapt

    wrapt.register_post_import_hook(_on_transformers_import, "transformers")


__all__ = ["AUTO_MODULES", "register_auto_classes", "register_when_transformers_loads"]
