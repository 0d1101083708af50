"""The epoch-scaling study's analysis: does MixACM close its gap to PGD-7 AT as training grows?

From the records of ``verification.plans.epoch_scaling_plan`` (table "epochs", rows "mixacm" / "pgd_at" /
"teacher", columns "clean" / "robust", ``setting.epochs``): per epoch count, the gap MixACM - PGD-7 AT in clean and
robust accuracy decided by the claims' rule (``verification.claims.condition``: paired on the same test images when
the records keep masks), each student's robust accuracy as a fraction of the teacher's (a student that passes its
teacher makes the comparison teacher-limited), and the gap's slope per doubling of epochs: weighted least squares of
the gaps on log2(epochs) with weights 1/se^2 of each gap (independent runs per epoch count), normal 95 % interval.
"""
from __future__ import annotations

import math
from typing import Any

from . import claims

METHOD = "weighted least squares on log2(epochs), weights 1/se^2 of each gap, normal 95 % interval"


def slope(xs: list[float], ys: list[float], ses: list[float]) -> dict[str, Any] | None:
    """WLS slope of ys on xs with known standard errors ses; None with fewer than 2 points or a zero se."""
    if len(xs) < 2 or any(not s or s <= 0 for s in ses):
        return None
    w = [1.0 / s ** 2 for s in ses]
    sw = sum(w)
    xm, ym = sum(wi * x for wi, x in zip(w, xs)) / sw, sum(wi * y for wi, y in zip(w, ys)) / sw
    sxx = sum(wi * (x - xm) ** 2 for wi, x in zip(w, xs))
    if sxx == 0:
        return None
    b = sum(wi * (x - xm) * (y - ym) for wi, x, y in zip(w, xs, ys)) / sxx
    se = math.sqrt(1.0 / sxx)
    return {"slope": round(b, 4), "se": round(se, 4), "ci95": [round(b - 1.959964 * se, 4), round(b + 1.959964 * se, 4)],
            "method": METHOD}


def analyse(records: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The study's table and slopes, or None when the records hold no MixACM / PGD-7 AT pair of table "epochs"."""
    v = claims.Values.from_records(records)
    eps = {r: {st.get("epochs") for rr, c, s, st in v.rows("epochs") if rr == r} for r in ("mixacm", "pgd_at")}
    epochs = sorted(e for e in eps["mixacm"] & eps["pgd_at"] if e is not None)
    if not epochs:
        return None
    teacher = next((s for r, c, s, st in v.rows("epochs") if r == "teacher" and c == "robust"), None)
    rows, tests = [], set()
    for e in epochs:
        row: dict[str, Any] = {"epochs": e}
        for m in ("clean", "robust"):
            a, b = v.get("epochs", "mixacm", m, epochs=e), v.get("epochs", "pgd_at", m, epochs=e)
            cond = claims.condition(a, b, paper=False, text=f"{m}(MixACM) - {m}(PGD-7 AT) at {e} epochs")
            tests.add(cond["test"])
            row[m] = {k: cond[k] for k in ("delta", "se", "ci95", "p_greater", "p_less", "status", "df")}
            row[m]["mixacm"], row[m]["pgd_at"] = cond["a"], cond["b"]
        if teacher is not None and teacher.mean > 0:
            row["mixacm_fraction_of_teacher"] = round(row["robust"]["mixacm"]["mean"] / teacher.mean, 4)
            row["at_fraction_of_teacher"] = round(row["robust"]["pgd_at"]["mean"] / teacher.mean, 4)
        rows.append(row)
    xs = [math.log2(e) for e in epochs]
    fit = {m: slope(xs, [r[m]["delta"] for r in rows], [r[m]["se"] for r in rows]) for m in ("clean", "robust")}
    test = "paired on the same test images" if tests == {claims.TEST_PAIRED} else \
        "unpaired" if tests == {claims.TEST} else "paired where masks allow"
    return {"epochs": epochs, "rows": rows, "slope": fit, "test": test,
            "teacher_robust": None if teacher is None else round(teacher.mean, 4)}
