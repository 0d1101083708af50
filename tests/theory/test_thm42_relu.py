"""Stored counterexamples of Theorem 4.2 for ReLU nets re-verify in float64 from their lists alone."""
import json

import numpy as np

from theory import thm42_relu
from theory.relu_net import ReluNet


def test_stored_counterexamples_recheck():
    claims = thm42_relu.checks(quick=True)
    fails = [c for c in claims if c.verdict == "fails"]
    assert fails, "the quick search should still find the non-centred / biased counterexamples"
    for c in fails:
        ce = json.loads(json.dumps(c.counterexample))  # through JSON: lists only
        if "deltas" in ce:
            r = thm42_relu.recheck_counterexample(ce)
            assert r["violated"] and r["deltas_inside_ball"], (c.id, r)
        elif ce.get("form") == "taylor":
            t = thm42_relu.taylor_sides(ce["instance"])
            assert t["lhs"] > t["rhs"], (c.id, t)
        else:
            net = ReluNet.from_dict(ce["net"])
            x = np.array(ce["x"])
            assert abs(net.forward(x)[0] - net.grad(x) @ x) > 1e-6
