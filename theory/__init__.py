"""Exact numerical and symbolic checks of MixACM's Theorems 4.1 and 4.2 (torch-free).

Each check module exposes ``checks() -> list[Claim]`` (and optionally ``errata() -> list[Erratum]``);
``python -m theory --out DIR`` runs them all and writes ``DIR/theory.json`` and ``DIR/theory.html``.
"""
