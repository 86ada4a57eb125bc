import os

import pytest

# Tests never reach a hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    """GPU and real-weight tests run only when asked for with `-m gpu` / `-m real_weights`."""
    selected = config.getoption("-m") or ""
    for item in items:
        for mark in ("gpu", "real_weights"):
            if mark in item.keywords and mark not in selected:
                item.add_marker(pytest.mark.skip(reason=f"{mark} test: run with -m {mark}"))
