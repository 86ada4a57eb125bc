"""``aerith quickstart``: the whole pipeline on generated data, offline, in minutes on a CPU.

See :mod:`aerith.quickstart.pipeline` for the stages and the run folder,
:mod:`aerith.quickstart.baselines` for what each metric is compared with, and
:mod:`aerith.quickstart.report` for the report.
"""

from aerith.quickstart.pipeline import QuickstartResult, QuickstartSettings, run_quickstart

__all__ = ["QuickstartResult", "QuickstartSettings", "run_quickstart"]
