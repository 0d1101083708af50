"""Verification suite: the paper's tables as data, experiment specs, comparisons and claims."""
