"""Run, resume or aggregate a named experiment plan from the shell, e.g. the epoch-scaling study:

    python -m verification.study epoch-scaling --out runs/epoch-scaling                  # everything, resumable
    python -m verification.study epoch-scaling --out runs/epoch-scaling --only pgd_at_e12,pgd_at_e24   # one worker
    python -m verification.study epoch-scaling --out runs/epoch-scaling --only-finished  # aggregate what is done
    python -m verification.study digits-compared --out runs/digits-compared   # Table 1's methods on digits
    python -m verification.study cpu --out runs/cpu-ablations --kwargs '{"seeds": [0, 1, 2], "autoattack_n": 500,
        "alpha_acm_reference": "wrn-34-10", "only": ["mixacm", "wo_kd", "wo_mixup", "only_acm", "only_kd", "pgd_at"]}'
                                           # the cpu tier's plan (verification.plans.cpu_plan), any of its arguments
    python -m verification.study cpu --out runs/again --plan reports/recorded/cpu-ablations-paired/plan.json
                                           # a recorded set's plan again, with the arguments it was recorded with

Several workers may share one ``--out`` when their ``--only`` sets are disjoint (a run's teacher is trained by the
first worker that needs it; start the others after it exists, or give them runs without a teacher). The CIFAR-10
JPEG copy is found at ``--data-dir``, ``$MIXACM_CIFAR10_JPEG`` or ``../shared/data/cifar10-jpeg``.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from .runner import run_plan
from .plans import cifar_jpeg_root, cpu_plan, digits_compared_plan, epoch_scaling_plan

STUDIES = {"epoch-scaling": epoch_scaling_plan, "digits-compared": digits_compared_plan, "cpu": cpu_plan}
NEEDS_CIFAR = {"epoch-scaling", "cpu"}  # the others run on the embedded digits


def plan_kwargs(study: str, kwargs_json: str, plan_file: str | Path | None = None) -> dict:
    """The plan function's keyword arguments: a recorded ``plan.json`` (which names its study; it must be this one),
    then ``--kwargs`` on top; JSON lists become tuples."""
    kwargs = {}
    if plan_file is not None:
        recorded = json.loads(Path(plan_file).read_text())
        named = recorded.pop("study", study)
        if named != study:
            raise ValueError(f"{plan_file} is a plan of the {named} study, not of {study}: "
                             f"run python -m verification.study {named} --plan {plan_file}")
        kwargs.update(recorded)
    kwargs.update(json.loads(kwargs_json))
    return {k: tuple(v) if isinstance(v, list) else v for k, v in kwargs.items()}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m verification.study", description=__doc__.split("\n\n")[0])
    p.add_argument("study", choices=sorted(STUDIES))
    p.add_argument("--out", required=True, help="results directory (resumable; shared by workers)")
    p.add_argument("--data-dir", default=None, help="CIFAR-10 JPEG copy (default: $MIXACM_CIFAR10_JPEG or "
                                                    "../shared/data/cifar10-jpeg)")
    p.add_argument("--only", default=None, help="comma-separated run keys (and their teacher)")
    p.add_argument("--only-finished", action="store_true", help="train nothing: aggregate the finished runs")
    p.add_argument("--kwargs", default="{}", help="JSON keyword arguments of the plan function")
    p.add_argument("--plan", default=None, metavar="PLAN_JSON",
                   help="a recorded set's plan.json: rerun its study with the arguments it was recorded with "
                        "(--kwargs applies on top)")
    a = p.parse_args(argv)
    try:
        kwargs = plan_kwargs(a.study, a.kwargs, a.plan)
    except (OSError, ValueError) as e:
        print(f"python -m verification.study: error: {e}", file=sys.stderr)
        return 2
    root = cifar_jpeg_root(a.data_dir) if a.study in NEEDS_CIFAR else None
    if a.study in NEEDS_CIFAR and root is None:
        print("python -m verification.study: error: CIFAR-10 JPEG copy not found; pass --data-dir or set "
              "MIXACM_CIFAR10_JPEG", file=sys.stderr)
        return 2
    if a.only:
        kwargs["only"] = tuple(k for k in a.only.split(",") if k)
    try:
        plan = STUDIES[a.study](root, **kwargs) if a.study in NEEDS_CIFAR else STUDIES[a.study](**kwargs)
    except (TypeError, ValueError) as e:
        print(f"python -m verification.study: error: {e}", file=sys.stderr)
        return 2
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if not a.only:
        (out / "plan.json").write_text(json.dumps({"study": a.study, **kwargs}, indent=1))
    run_plan(plan, out, only_finished=a.only_finished)
    print(f"results -> {out / 'results.json'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
