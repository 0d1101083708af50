"""The record tool: copies a plan's outputs without per-sample masks; the claims table renders as markdown."""
import json

from verification.record import _strip_masks, claims_markdown


def test_strip_masks_keeps_aggregates():
    ev = {"clean": {"accuracy": 0.5, "correct_mask": [1, 0]}, "indices": [3, 4],
          "attacks": {"pgd20": {"robust_accuracy": 0.25, "robust_mask": [1, 0]}}}
    out = _strip_masks(ev)
    assert out == {"clean": {"accuracy": 0.5}, "attacks": {"pgd20": {"robust_accuracy": 0.25}}}
    assert json.dumps(out)  # still JSON


def test_claims_markdown_shows_both_sides_and_verdicts():
    claims = [{"id": "x", "statement": "S.", "source": "Table 6", "verdict": "reproduced", "paper_verdict": "reproduced",
               "numbers": [{"condition": "a > b", "a": {"mean": 3.0, "std": 0.5}, "b": {"mean": 1.0, "std": None},
                            "status": "holds"}],
               "paper_numbers": [{"condition": "a > b", "a": {"mean": 48.38, "std": None}, "b": {"mean": 0.21},
                                  "status": "holds"}]}]
    md = claims_markdown(claims).splitlines()
    assert md[0].startswith("| claim |") and len(md) == 3
    assert "**reproduced**" in md[2] and "3.00 ± 0.50 vs 1.00" in md[2] and "48.38 vs 0.21" in md[2]
