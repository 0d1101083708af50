"""HTML report: the paper's tables beside reproduced results, claims, theory verdicts."""
