"""`aerith align|sft` for the tests' subprocesses, with the tests' instruction function.

Usage: python tests/train/run_stage.py sft RECIPE [--resume] [--set key=value ...]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from aerith.train.commands import build_config  # noqa: E402
from aerith.train.loop import train  # noqa: E402
from tests.train.helpers import instruction_fn  # noqa: E402

parser = argparse.ArgumentParser()
parser.add_argument("stage")
parser.add_argument("recipe", type=Path)
parser.add_argument("--resume", action="store_true")
parser.add_argument("--set", dest="overrides", action="append", default=[])
args = parser.parse_args()
result = train(build_config(args.stage, args.recipe, args.overrides), resume=args.resume, instruction_fn=instruction_fn())
print(f"done {result.steps} steps; model in {result.final_dir}")
