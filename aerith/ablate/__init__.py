"""``aerith ablate``: variants of the quickstart recipe trained and evaluated on SynthRS over seeds.

See :mod:`aerith.ablate.grid` for the variants, :mod:`aerith.ablate.runner` for the
output folder and :mod:`aerith.ablate.table` for the table and plot.
"""

from aerith.ablate.grid import Variant
from aerith.ablate.runner import AblationResult, AblationSettings, run_ablation

__all__ = ["AblationResult", "AblationSettings", "Variant", "run_ablation"]
