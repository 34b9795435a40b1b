"""A long fuzzing run: the strategies and checks of tests/test_fuzz.py, for many more examples.

    python benchmarks/fuzz_long.py                 # 20000 parses, 3000 CLI runs, 10000 per reader
    python benchmarks/fuzz_long.py --parse 200 --cli 30 --reader 200 --out /tmp/fuzz.md

Unlike the tests, a failing example does not stop the run: every example is tried, failures are
counted, grouped by their first line and reported with the shortest example of each group in
reports/fuzz.md.  The seed is fixed (and different from the tests' derandomized one), so a run
is reproducible and explores examples the tests do not.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import sys
import time
import traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "tests")]

import test_fuzz as F  # noqa: E402
from hypothesis import HealthCheck, Phase, given, reject, seed, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

SEED = 20240611

FIXED = [
    "`-mosaic_seed 1e300` (any integer beyond 64 bits, e.g. `-roi 0 1e20 0 8`): OverflowError/TypingError "
    "-> `expects a 64-bit integer` (options.py `_integer`).",
    "`-cell 1e300 1 1 90 90 90`, `-cell 5e-324 ...`: ZeroDivisionError; a `-mat` with a 1e300 element ran "
    "with a NaN cell and numpy warnings -> `the unit cell is degenerate or too extreme` (simulation.py).",
    "`-samplesize 1e308`: OverflowError (ceil of infinity) -> `holds too many unit cells` (simulation.py).",
    "`-distance 1e-320`, `-pixel 1e308`: OverflowError in the automatic oversample -> an error when it is "
    "automatic, the reference's value 1 when `-oversample` is given (simulation.py).",
    "`-detector_abs 1e-320`: ZeroDivisionError -> `is too small` (options.py `_detector_abs`).",
    "an argument or file name holding a newline gave a two-line error -> printed on one line (cli.py).",
    "`-twotheta_axis 1e300 1 1`, `-Xbeam 1e308`: numpy RuntimeWarnings on stderr -> silenced (cli.py).",
]


class Campaign:
    def __init__(self, name: str, what: str):
        self.name, self.what = name, what
        self.outcomes: collections.Counter = collections.Counter()
        self.failures: dict[str, list] = {}
        self.seconds = 0.0

    @property
    def tried(self) -> int:
        return sum(self.outcomes.values())

    @property
    def failed(self) -> int:
        return self.outcomes["FAIL"]

    def record_failure(self, example, err: BaseException) -> None:
        text = f"{type(err).__name__}: {err}".strip()
        lines = [ln for ln in text.splitlines() if ln.strip()]
        key = next((ln for ln in lines if "nbnumba:" in ln), lines[0] if lines else type(err).__name__)[:200]
        group = self.failures.setdefault(key, [0, example, "".join(traceback.format_exception(err))[-1500:]])
        group[0] += 1
        if len(repr(example)) < len(repr(group[1])):
            group[1] = example


def run_campaign(campaign: Campaign, strategy, check, examples: int) -> Campaign:
    @seed(SEED)
    @settings(max_examples=examples, deadline=None, database=None, phases=[Phase.generate],
              suppress_health_check=list(HealthCheck))
    @given(strategy)
    def fuzz(example):
        try:
            outcome = check(example)
        except Exception as err:  # noqa: BLE001 - every failure is recorded, none stops the run
            campaign.record_failure(example, err)
            outcome = "FAIL"
        if outcome is None:
            campaign.outcomes["skipped (too much work)"] += 1
            reject()
        campaign.outcomes[str(outcome)] += 1

    start = time.perf_counter()
    fuzz()
    campaign.seconds = time.perf_counter() - start
    print(f"{campaign.name}: {campaign.tried} tried, {campaign.failed} failed, {campaign.seconds:.0f} s",
          flush=True)
    return campaign


def reader_check(kind: str, directory: Path):
    def check(example):
        data, extra = example
        return F.check_reader(kind, data, extra, directory)

    return check


def report(campaigns: list[Campaign], total: float) -> str:
    lines = [
        "# Fuzzing report",
        "",
        "Written by `benchmarks/fuzz_long.py`: the strategies and checks of `tests/test_fuzz.py`, run for many",
        "more examples with a fixed seed. The properties checked are:",
        "",
        "- `parse_args`: returns `Params` or raises `UserError`, nothing else.",
        "- `nbnumba run` (in-process, tiny detector forced last: `-detpixels 4 -oversample 1 -nonoise -nopgm",
        "  -noprogress`): exit code 0, 1 or 2, no traceback and no internal error; a failed run prints exactly",
        "  one `nbnumba: error:` line and leaves the directory as it was; no temporary file is ever left and",
        "  no Python warning (e.g. numpy's overflow warnings) reaches stderr.",
        "  Valid commands whose render would exceed "
        f"{F.MAX_WORK:,} evaluations (huge step counts, which the reference also grinds through) are skipped.",
        f"- each reader, on random bytes, token soups and damaged valid files: returns or raises `UserError`, "
        f"within {F.READ_LIMIT_S:g} s per call.",
        "",
        f"Seed {SEED}; Python {platform.python_version()}, {os.cpu_count()} CPUs; {total:.0f} s in all.",
        "",
        "| campaign | what | examples tried | outcomes | failures | time (s) |",
        "| --- | --- | ---: | --- | ---: | ---: |",
    ]
    for c in campaigns:
        outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(c.outcomes.items()) if k != "FAIL") or "-"
        lines.append(f"| {c.name} | {c.what} | {c.tried} | {outcomes} | {c.failed} | {c.seconds:.0f} |")
    lines += ["", "Examples tried include the skipped ones. While the harness was written, it and probes built",
              "on its flag table (every flag with extreme values) found the following, all fixed since: each",
              "was an internal error, a two-line message or warnings on stderr. Most are now rows of",
              "reports/bad_inputs.md.", ""]
    lines += [f"- {item}" for item in FIXED]
    failed = [c for c in campaigns if c.failures]
    lines += ["", f"**Failures: {sum(c.failed for c in campaigns)}.**", ""]
    for c in failed:
        lines += [f"## {c.name}", ""]
        for key, (count, example, tb) in sorted(c.failures.items(), key=lambda kv: -kv[1][0]):
            shown = repr(example)
            if len(shown) > 600:
                shown = shown[:600] + "..."
            lines += [f"- {count}x `{key}`", "", "  ```", f"  {shown}", "  ```", ""]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parse", type=int, default=20000, help="command lines through parse_args")
    parser.add_argument("--cli", type=int, default=3000, help="command lines through nbnumba run")
    parser.add_argument("--reader", type=int, default=10000, help="files per reader")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "fuzz.md")
    args = parser.parse_args()

    import tempfile

    start = time.perf_counter()
    campaigns = [run_campaign(Campaign("parse_args", "random command lines from the flag table"),
                              F.command_line(), F.check_parse, args.parse)]
    with tempfile.TemporaryDirectory() as name:
        for kind, reader in [("hkl", "read_hkl"), ("fdump", "read_fdump"), ("matrix", "read_mosflm_matrix"),
                             ("smv", "read_smv"), ("columns", "read_columns")]:
            strategy = st.tuples(F.file_bytes(kind), F.EXTRA.get(kind, st.just(None)))
            campaigns.append(run_campaign(Campaign(reader, "random bytes, token soups, damaged valid files"),
                                          strategy, reader_check(kind, Path(name)), args.reader))
    campaigns.append(run_campaign(Campaign("nbnumba run", "random command lines, tiny detector, in-process"),
                                  F.cli_command_line(), F.check_cli, args.cli))
    text = report(campaigns, time.perf_counter() - start)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")
    return 1 if any(c.failed for c in campaigns) else 0


if __name__ == "__main__":
    sys.exit(main())
