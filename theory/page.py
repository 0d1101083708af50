"""The theory page: ``render_html(result)`` turns ``python -m theory``'s JSON into an HTML page that reads like a
paper's appendix.

Each claim's statement typeset as MathML (browser-native, no script or network) from the explicit table of
statements, its verdict, its key numbers printed to the precision that shows the margin (``margin_digits``), the
figures its evidence implies (matplotlib, inline SVG; the page says so when matplotlib is missing), and the raw
evidence folded away in collapsed <details>. Importing this module loads neither matplotlib nor torch.
"""
from __future__ import annotations

import html
import math
import re
from decimal import ROUND_HALF_EVEN, Decimal, localcontext
from pathlib import Path
from typing import Any

from markupsafe import Markup  # ships with jinja2

from mixacm.gitinfo import commit_label, git_commit  # stdlib only: the theory stays torch-free

TEMPLATE_DIR = Path(__file__).parent / "templates"
ROOT = Path(__file__).resolve().parent.parent  # the checkout whose commit the provenance names


def key_number(claim: dict) -> str:
    """The one number shown in the table: the evidence's 'key' entry if the module named one, else the first number."""
    ev = claim.get("evidence") or {}
    if "key" in ev:
        k = ev["key"]
        return f"{k}={_fmt(ev.get(k))}" if isinstance(k, str) and k in ev else _fmt(k)
    for k, v in ev.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return f"{k}={_fmt(v)}"
    if "error" in ev:
        return str(ev["error"])[:80]
    return ""


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _find(obj: Any, name: str) -> Any:
    """First value stored under key ``name`` anywhere in a nested evidence dict (depth first, in order)."""
    if isinstance(obj, dict):
        if name in obj and isinstance(obj[name], (int, float)) and not isinstance(obj[name], bool):
            return obj[name]
        for v in obj.values():
            got = _find(v, name)
            if got is not None:
                return got
    elif isinstance(obj, list):
        for v in obj:
            got = _find(v, name)
            if got is not None:
                return got
    return None


def deciding_number(claim: dict) -> str:
    """The number that decides the verdict, in words: a vacuous bound says so; else the evidence's ``key``
    (violations out of n, with the smallest margin when recorded); else the counterexample's margin."""
    ev = claim.get("evidence") or {}
    rhs, slack = ev.get("mean_rhs"), ev.get("min_slack")
    if ev.get("vacuous") and isinstance(rhs, (int, float)) and rhs >= 1:
        txt = f"vacuous: right side >= 1 (mean right side {_fmt(rhs)}"
        txt += f", min slack {_fmt(slack)})" if isinstance(slack, (int, float)) else ")"
        if "violations" in ev:
            txt += f"; violations {ev['violations']}"
        return txt
    k = ev.get("key")
    if isinstance(k, str) and k in ev:
        txt = f"{k.replace('_', ' ')} {_fmt(ev[k])}"
        mm = next((ev[m] for m in ("min_margin", "min_margin_screen", "verified_margin") if isinstance(ev.get(m), (int, float))), None)
        if k.startswith("violations") and mm is not None:
            txt += f" (smallest margin {_fmt(mm)})"
        if k == "min_certified_margin" and "violations" in ev:
            txt += f" (violations {ev['violations']}"
            dd = ev.get("detectable_deficit")
            txt += f", detectable deficit {_fmt(dd)})" if isinstance(dd, (int, float)) else ")"
        return txt
    margin = _find(ev, "margin")
    if margin is None:
        margin = _find(claim.get("counterexample"), "margin")
    if margin is not None:
        return f"margin {_fmt(margin)} (counterexample re-checked in float64)"
    if isinstance(ev.get("violations"), (int, str)) and isinstance(ev.get("random_instances"), int):
        return f"violations {ev['violations']}/{ev['random_instances']}"
    fam = ev.get("violating_cells_by_family")
    if isinstance(fam, dict) and all(isinstance(v, int) for v in fam.values()):
        return f"violating cells {sum(fam.values())}/{ev.get('cells', '?')}"
    if ev.get("sympy_proved") is True:
        return "proved symbolically (sympy)"
    cols, scan = ev.get("scan_columns"), ev.get("scan")
    if isinstance(cols, list) and isinstance(scan, list) and scan and len(cols) > 1:  # the last column is the claim's
        vals = [r[-1] for r in scan if isinstance(r, list) and isinstance(r[-1], (int, float))]
        if vals:
            return f"smallest {cols[-1]} {_fmt(min(vals))} ({len(vals)} points)"
    for k, v in ev.items():  # first number that is not a timing or a seed
        if isinstance(v, (int, float)) and not isinstance(v, bool) and not re.search(r"second|time|seed", k):
            return f"{k.replace('_', ' ')} {_fmt(v)}"
    if "error" in ev:
        return str(ev["error"])[:80]
    tables = [k for k, v in ev.items() if isinstance(v, (list, dict)) and v]
    return f"see the evidence ({', '.join(tables)})" if tables else key_number(claim)


# ============================================================================================ the page: numbers
def fmt_num(v: Any, sig: int = 4) -> str:
    """A value as prose prints it: None -> '–', booleans yes/no, integers as they are, floats to ``sig`` significant
    digits (scientific notation below 1e-3 and from 1e5, where fixed notation would hide the digits)."""
    if v is None:
        return "–"
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return str(v)
        if v == 0:
            return "0"
        if 1e-3 <= abs(v) < 1e5:
            return f"{v:.{sig}g}"
        return f"{v:.{max(sig - 1, 0)}e}"
    return str(v)


def margin_digits(lhs: float, rhs: float, margin: float | None = None, sig: int = 3,
                  value_sig: int = 4) -> tuple[str, str, str]:
    """Left side, right side and margin (default ``rhs - lhs``) printed with one number of decimals, the fewest that
    give the margin ``sig`` significant digits, the sides ``value_sig``, and make the printed right side minus the
    printed left side equal the printed margin exactly (so 2.068320 / 2.068112 / -0.000208, never 2.068 / 2.068 /
    -0.000208). The printed margin is always that difference; it is the margin rounded to the same decimals unless
    the given margin disagrees with ``rhs - lhs`` beyond float64 precision. Sides below 1e-4 or from 1e6 share one
    power of ten (2.068320e-07, 2.068112e-07, -0.000208e-07): still exact decimals, and differences of them."""
    def finite(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)

    if not (finite(lhs) and finite(rhs)):
        return fmt_num(lhs), fmt_num(rhs), fmt_num(margin)
    m = (rhs - lhs) if margin is None else margin
    if not finite(m):
        return fmt_num(lhs), fmt_num(rhs), fmt_num(m)

    def decimals(x: float, s: int) -> int:
        return 0 if x == 0 else max(0, s - 1 - math.floor(math.log10(abs(x))))

    big = max(abs(lhs), abs(rhs))
    e = 0 if big == 0 or 1e-4 <= big < 1e6 else math.floor(math.log10(big))
    with localcontext() as ctx:
        ctx.prec = 2000  # room for every float64 at any number of decimals asked for; exact, never rounded
        L, R, M = (Decimal(x).scaleb(-e) for x in (lhs, rhs, m))  # scaleb by a power of ten is exact
        d = max(decimals(float(M), sig), decimals(float(max(abs(L), abs(R))), value_sig))
        d_max = max(d, decimals(float(max(abs(L), abs(R))), 17))  # float64 carries no more digits than this
        suffix = f"e{e:+03d}" if e else ""
        while True:
            q = Decimal(1).scaleb(-d)
            lo = L.quantize(q, rounding=ROUND_HALF_EVEN)
            hi = R.quantize(q, rounding=ROUND_HALF_EVEN)
            diff = hi - lo
            if diff == M.quantize(q, rounding=ROUND_HALF_EVEN) or d >= d_max:
                return tuple(format(x, "f") + suffix for x in (lo, hi, diff))
            d += 1


def num_html(v: Any, sig: int = 4) -> Markup:
    """fmt_num typeset: a true minus sign and 1.2×10⁻⁵ instead of 1.2e-05."""
    return _num_markup(fmt_num(v, sig))


def _num_markup(s: str) -> Markup:
    m = re.fullmatch(r"(-?[\d.]+)e([+-])0*(\d+)", s)  # 1.2e-05 (fmt_num) or 1.20e-07 (margin_digits)
    if m:
        exp = ("−" if m.group(2) == "-" else "") + m.group(3)
        return Markup("{}×10<sup>{}</sup>").format(m.group(1).replace("-", "−"), exp)
    return Markup.escape(re.sub(r"(?<![\w.])-(?=[\d.])", "−", s))


# ======================================================================== the page: TeX subset -> MathML Core
# A small, explicit converter for the TeX the statement table below uses (no MathJax, no network): letters, digits,
# operators, {groups}, ^ and _, \frac, \tfrac, \sqrt, \mathrm, \operatorname, \text, \mathbb, \mathcal, accents,
# Greek letters, relations, big operators with limits, \left/\right and spacing. Anything else is an error, so a
# typo in the table fails the tests instead of printing raw TeX.
_GREEK = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "epsilon": "ϵ", "varepsilon": "ε", "theta": "θ",
          "kappa": "κ", "lambda": "λ", "mu": "μ", "sigma": "σ", "phi": "φ", "varphi": "φ", "psi": "ψ", "pi": "π",
          "tau": "τ", "ell": "ℓ"}
_GREEK_UPRIGHT = {"Theta": "Θ", "Psi": "Ψ", "Delta": "Δ", "Phi": "Φ", "Gamma": "Γ", "Lambda": "Λ", "Sigma": "Σ"}
_RELATIONS = {"le": "≤", "leq": "≤", "ge": "≥", "geq": "≥", "ne": "≠", "neq": "≠", "sim": "∼", "approx": "≈",
              "Rightarrow": "⇒", "Leftrightarrow": "⇔", "to": "→", "in": "∈", "notin": "∉", "forall": "∀",
              "exists": "∃", "cdot": "⋅", "times": "×", "pm": "±", "mid": "∣", "ldots": "…", "cdots": "⋯",
              "lVert": "‖", "rVert": "‖", "lvert": "|", "rvert": "|", "langle": "⟨", "rangle": "⟩", "wedge": "∧",
              "setminus": "∖", "subseteq": "⊆", "|": "‖", "{": "{", "}": "}"}
_SYMBOLS = {"infty": "∞", "nabla": "∇", "top": "⊤", "star": "⋆", "partial": "∂", "emptyset": "∅"}
_BIG_OPERATORS = {"sum": "∑", "prod": "∏", "max": "max", "min": "min", "sup": "sup", "inf": "inf"}
_FUNCTIONS = {"log", "exp", "cos", "sin", "Pr", "softmax", "err", "arg", "sign", "diag"}
_FONTS = {"mathbb": {"E": "𝔼", "P": "ℙ", "R": "ℝ", "N": "ℕ", "1": "𝟙"},
          "mathcal": {"D": "𝒟", "L": "ℒ", "G": "𝒢", "F": "ℱ", "N": "𝒩"}}
_ACCENTS = {"tilde": "˜", "widetilde": "˜", "hat": "^", "widehat": "^", "bar": "¯", "overline": "¯"}
_SPACES = {",": "0.1667em", ":": "0.2222em", ";": "0.2778em", " ": "0.25em", "quad": "1em", "qquad": "2em"}
_SIZERS = {"left", "right", "big", "Big", "bigl", "bigr", "Bigl", "Bigr", "bigg", "Bigg"}
_TEX_TOKEN = re.compile(r"\\[A-Za-z]+|\\.|\d+(?:\.\d+)?|\s+|.", re.S)


def _x(s: str) -> str:
    return html.escape(s, quote=False)


def _mrow(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else "<mrow>" + "".join(parts) + "</mrow>"


class _TeX:
    def __init__(self, tex: str):
        self.tex = tex
        self.toks = _TEX_TOKEN.findall(tex)
        self.i = 0
        self.stretch = False  # set by \left/\right for the one delimiter that follows

    def _skip_space(self) -> None:
        while self.i < len(self.toks) and self.toks[self.i].isspace():
            self.i += 1

    def peek(self) -> str | None:
        self._skip_space()
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self) -> str:
        t = self.peek()
        if t is None:
            raise ValueError(f"unexpected end of TeX in {self.tex!r}")
        self.i += 1
        return t

    def seq(self, end: str | None) -> list[str]:
        out: list[str] = []
        while (t := self.peek()) is not None and t != end:
            out.append(self.scripted())
        if end is not None:
            if self.peek() != end:
                raise ValueError(f"missing {end!r} in {self.tex!r}")
            self.i += 1
        return out

    def raw_group(self) -> str:
        """The literal text of a {...} argument (spaces kept), for \\text and \\mathrm."""
        if self.take() != "{":
            raise ValueError(f"expected '{{' in {self.tex!r}")
        depth, out = 1, []
        while self.i < len(self.toks):
            t = self.toks[self.i]
            self.i += 1
            depth += (t == "{") - (t == "}")
            if depth == 0:
                return "".join(out)
            out.append(t)
        raise ValueError(f"unclosed group in {self.tex!r}")

    def group(self) -> str:
        """A {...} argument, or one token without scripts."""
        if self.peek() == "{":
            self.i += 1
            return _mrow(self.seq("}"))
        return self.atom()[0]

    def scripted(self) -> str:
        base, limits = self.atom()
        sub = sup = None
        while self.peek() in ("_", "^"):
            which = self.take()
            arg = self.group()
            if which == "_":
                sub = arg
            else:
                sup = arg
        if sub is None and sup is None:
            return base
        if limits:
            if sup is None:
                return f"<munder>{base}{sub}</munder>"
            if sub is None:
                return f"<mover>{base}{sup}</mover>"
            return f"<munderover>{base}{sub}{sup}</munderover>"
        if sup is None:
            return f"<msub>{base}{sub}</msub>"
        if sub is None:
            return f"<msup>{base}{sup}</msup>"
        return f"<msubsup>{base}{sub}{sup}</msubsup>"

    def atom(self) -> tuple[str, bool]:
        """(MathML, takes limits above/below) of the next atom."""
        t = self.take()
        if t == "{":
            return _mrow(self.seq("}")), False
        if t in ("}", "^", "_"):
            raise ValueError(f"unexpected {t!r} in {self.tex!r}")
        if t.startswith("\\"):
            return self.command(t[1:])
        if t[0].isdigit():
            return f"<mn>{t}</mn>", False
        if t.isalpha():
            return f"<mi>{_x(t)}</mi>", False
        op = {"-": "−", "*": "∗", "'": "′"}.get(t, t)
        return self.fence(op) if op in "()[]|" else f"<mo>{_x(op)}</mo>", False

    def fence(self, op: str) -> str:
        """A delimiter: its natural size, as in TeX, unless \\left/\\right asked it to stretch."""
        stretch, self.stretch = self.stretch, False
        return f"<mo>{_x(op)}</mo>" if stretch else f'<mo stretchy="false">{_x(op)}</mo>'

    def command(self, name: str) -> tuple[str, bool]:
        if name in _GREEK:
            return f"<mi>{_GREEK[name]}</mi>", False
        if name in _GREEK_UPRIGHT:
            return f'<mi mathvariant="normal">{_GREEK_UPRIGHT[name]}</mi>', False
        if name in _RELATIONS:
            op = _RELATIONS[name]
            return (self.fence(op) if op in "‖|{}⟨⟩" else f"<mo>{_x(op)}</mo>"), False
        if name in _SYMBOLS:
            return f'<mi mathvariant="normal">{_SYMBOLS[name]}</mi>', False
        if name in _BIG_OPERATORS:
            return f'<mo movablelimits="true">{_BIG_OPERATORS[name]}</mo>', True
        if name in _FUNCTIONS:
            return f"<mi>{name}</mi>", False
        if name in ("frac", "tfrac", "dfrac"):
            num, den = self.group(), self.group()
            style = {"tfrac": ' displaystyle="false"', "dfrac": ' displaystyle="true"'}.get(name, "")
            return f"<mfrac{style}>{num}{den}</mfrac>", False
        if name == "sqrt":
            return f"<msqrt>{self.group()}</msqrt>", False
        if name in ("mathrm", "operatorname"):
            return f'<mi mathvariant="normal">{_x(self.raw_group())}</mi>', False
        if name == "text":
            return f"<mtext>{_x(self.raw_group())}</mtext>", False
        if name in _FONTS:
            letters = self.raw_group()
            try:
                return "".join(f"<mi>{_FONTS[name][c]}</mi>" for c in letters), False
            except KeyError as e:
                raise ValueError(f"\\{name}{{{letters}}} not in the converter's table") from e
        if name in _ACCENTS:
            return f'<mover accent="true">{self.group()}<mo>{_ACCENTS[name]}</mo></mover>', False
        if name in _SPACES:
            return f'<mspace width="{_SPACES[name]}"></mspace>', False
        if name == "!":
            return "<mrow></mrow>", False
        if name in _SIZERS:  # delimiters stretch by themselves in MathML
            nxt = self.take()
            if nxt == ".":
                return "<mrow></mrow>", False
            self.i -= 1
            self.stretch = name in ("left", "right")
            return self.atom()
        raise ValueError(f"TeX command \\{name} not in the converter's table ({self.tex!r})")


def tex_to_mathml(tex: str, display: bool = False) -> str:
    """MathML Core for a TeX formula of the subset above; the TeX rides along as an annotation (copyable source)."""
    body = _mrow(_TeX(tex).seq(None) or ["<mrow></mrow>"])
    attr = ' display="block"' if display else ""
    return (f"<math{attr}><semantics>{body if body.startswith('<mrow>') else '<mrow>' + body + '</mrow>'}"
            f'<annotation encoding="application/x-tex">{_x(tex)}</annotation></semantics></math>')


def prose_html(s: str) -> Markup:
    """Prose with inline $...$ math: the text escaped, each $...$ typeset."""
    parts = s.split("$")
    if len(parts) % 2 == 0:
        raise ValueError(f"unbalanced $ in {s!r}")
    return Markup("".join(_x(p) if k % 2 == 0 else tex_to_mathml(p) for k, p in enumerate(parts)))


# ============================================================================ the page: statements as math
# Each claim's statement as the paper would typeset it: (display formula, prose with inline math). The prose carries
# the qualifiers the formula cannot (which form, which data). A callable prose gets the claim's evidence.
_INEQ_42 = (r"L_{\mathrm{adv}}(\mathcal{D}) + w\,L_{\mathrm{adv}}(\mathcal{D}_{\mathrm{dis}}) \le "
            r"L_{\mathrm{mix}}(\mathcal{D}) + w\,L_{\mathrm{mix}}(\mathcal{D}_{\mathrm{dis}})")
_INEQ_42_TAYLOR = (r"\hat{L}_{\mathrm{adv}}(\mathcal{D}) + w\,\hat{L}_{\mathrm{adv}}(\mathcal{D}_{\mathrm{dis}}) \le "
                   r"\hat{L}_{\mathrm{mix}}(\mathcal{D}) + w\,\hat{L}_{\mathrm{mix}}(\mathcal{D}_{\mathrm{dis}})")
_EPS_PRINTED = r"\varepsilon = \frac{1 - w\kappa}{1 + \kappa}\,c_x R\,\mathbb{E}_{\tilde{P}}[1-\lambda]"
_EPS_CORRECTED = r"\varepsilon = \frac{1 - w\kappa}{1 + w\kappa}\,c_x R\,\mathbb{E}_{\tilde{P}}[1-\lambda]"
_CONFIDENCE = {"printed": r"6\sqrt{\frac{2/\delta}{2n}}",
               "standard": r"6\sqrt{\frac{\log(2/\delta)}{2n}}",
               "union": r"6\sqrt{\frac{\log(2\log_2 n/\delta)}{2n}}",
               "no_confidence_term": ""}
_FORM_WORDS = {"printed": "the last term as printed",
               "standard": r"the standard last term ($\log$ of $2/\delta$)",
               "union": r"the last term with the union over $j = 1, \ldots, \log_2 n$ paid for",
               "no_confidence_term": "no last term (the bound without its confidence term)"}
_RELU_GROUPS = {"bias-free-centred": ("bias-free", True), "bias-free-uncentred": ("bias-free", False),
                "biased-centred": ("biased", True), "biased-uncentred": ("biased", False)}


def _thm41_prose(form: str):
    def prose(ev: dict) -> str:
        runs = ev.get("R")
        reg = ev.get("regime") if isinstance(ev.get("regime"), dict) else {}
        where = f" of size $n = {reg['n']}$" if isinstance(reg.get("n"), int) else ""
        return (f"Eq. (1) with {_FORM_WORDS[form]}, by Monte Carlo over {runs if runs is not None else 'several'} "
                f"training sets{where}: certified per run (an upper bound on the left side below a lower bound on "
                "the right side).")
    return prose


def _statements() -> dict[str, tuple[str, Any]]:
    s: dict[str, tuple[str, Any]] = {
        "beta.joint_b1": (r"P(\lambda, B = 1) = \lambda\,\mathrm{Beta}(\lambda; a, b) = "
                          r"\frac{a}{a+b}\,\mathrm{Beta}(\lambda; a+1, b)",
                          r"Joint law of $\lambda \sim \mathrm{Beta}(a, b)$ and the label switch "
                          r"$B \mid \lambda \sim \mathrm{Bernoulli}(\lambda)$ (densities in $\lambda$)."),
        "beta.joint_b0": (r"P(\lambda, B = 0) = (1-\lambda)\,\mathrm{Beta}(\lambda; a, b) = "
                          r"\frac{b}{a+b}\,\mathrm{Beta}(\lambda; a, b+1)", ""),
        "beta.marginal_b": (r"P(B = 1) = \frac{a}{a+b}, \qquad P(B = 0) = \frac{b}{a+b}", ""),
        "beta.reflection": (r"\lambda \sim \mathrm{Beta}(a, b+1) \;\Rightarrow\; "
                            r"1 - \lambda \sim \mathrm{Beta}(b+1, a)",
                            "The two densities agree."),
        "beta.mixture_mean": (r"\mathbb{E}_{\tilde{P}}[1-\lambda] = \frac{2ab}{(a+b)(a+b+1)}", ""),
        "beta.mixture_second_moment": (r"\mathbb{E}_{\tilde{P}}[(1-\lambda)^2] = \frac{ab}{(a+b)(a+b+1)} = "
                                       r"\tfrac{1}{2}\,\mathbb{E}_{\tilde{P}}[1-\lambda]", ""),
        "beta.jensen_gap": (r"\mathbb{E}_{\tilde{P}}[(1-\lambda)^2] - \mathbb{E}_{\tilde{P}}[1-\lambda]^2 = "
                            r"\frac{ab\,((a-b)^2 + a + b)}{(a+b)^2 (a+b+1)^2} > 0",
                            r"The proof's step $\varepsilon^2 \le c_x^2 R^2\,\mathbb{E}[(1-\lambda)^2]$ needs it."),
        "beta.mixup_loss_identity": (
            r"\frac{1}{n^2} \sum_{i,j} \mathbb{E}_{\lambda \sim \mathrm{Beta}(a,b)}\, "
            r"\ell(\tilde{x}_{ij}(\lambda), \tilde{y}_{ij}(\lambda)) = "
            r"\frac{1}{n^2} \sum_{i,j} \mathbb{E}_{\lambda \sim \tilde{P}}\, \ell(\tilde{x}_{ij}(\lambda), y_i)",
            r"For losses linear in the label (random data; linear and tanh models; logistic and soft-label "
            r"cross-entropy losses)."),
        "thm42.logistic.taylor": (
            _INEQ_42_TAYLOR + r"\quad \forall \theta \in \Theta, \qquad " + _EPS_PRINTED,
            r"(i) Both sides replaced by the second-order Taylor forms $\hat{L}$ the proof uses; $\varepsilon$ as "
            r"printed (the paper's $\beta$ read as $\kappa$)."),
        "thm42.logistic.exact-l2": (
            _INEQ_42 + r"\quad \forall \theta \in \Theta, \qquad " + _EPS_PRINTED,
            r"(ii) Exact adversarial loss over $\|\delta\|_2 \le \varepsilon\sqrt{d}$ against the exact mixup loss; "
            r"$\varepsilon$ as printed."),
        "thm42.logistic.exact-linf": (
            _INEQ_42 + r"\quad \forall \theta \in \Theta, \qquad " + _EPS_PRINTED,
            r"(iii) Exact adversarial loss over $\|\delta\|_\infty \le \varepsilon$ (main-text form) against the exact "
            r"mixup loss; $\varepsilon$ as printed."),
        "thm42.logistic.exact-l2.corrected_eps": (
            _EPS_CORRECTED,
            r"With this $\varepsilon$ (the factor $w$ in the denominator) the centred $w > 1$ counterexample family "
            r"no longer violates (ii)."),
        "thm42.logistic.regime_map": (
            r"\{(\|\theta\|, a, b, n, d, c_x) : " + _INEQ_42.replace(r"\le", ">") + r"\}",
            r"Where (ii) fails at the printed $\varepsilon$: a grid over the data family, $\|\theta\|$, $(a, b)$, "
            r"$n$, $d$ and the fraction of the largest admissible $c_x$."),
        "thm42.relu.homogeneity.bias-free": (r"f(x) = \nabla f(x)^\top x",
                                             "For a fully connected ReLU network without biases."),
        "thm42.relu.homogeneity.biased": (r"f(x) = \nabla f(x)^\top x",
                                          "For a fully connected ReLU network with biases."),
        "thm42.relu.exact-l2.certified": (
            r"\overline{L}_{\mathrm{adv}}(\mathcal{D}) + w\,\overline{L}_{\mathrm{adv}}(\mathcal{D}_{\mathrm{dis}}) < "
            r"L_{\mathrm{mix}}(\mathcal{D}) + w\,L_{\mathrm{mix}}(\mathcal{D}_{\mathrm{dis}})",
            r"On the instances listed: $\overline{L}_{\mathrm{adv}}$, a certified upper bound (MILP) on the "
            r"adversarial loss over $\|\delta\|_2 \le \varepsilon\sqrt{d}$, lies below the exact mixup side."),
        "relu.milp.selfcheck": (
            r"f(x + \delta^\star) = \max_{\|\delta\|_\infty \le 0.4} f(x + \delta) \ge f(x + \delta_{\mathrm{PGD}})",
            r"Tooling check of the MILP on a 2-16-16-1 ReLU network at $\|x\| = 2$: re-evaluating $f$ at its "
            r"$\delta^\star$ agrees, PGD never beats it, and each solve takes under 1 s."),
        "thm41.step9": (
            r"2\,(1 - \mathrm{softmax}_\gamma(z)_y) \ge \mathbb{1}[z_y \le \max_{k \ne y} z_k] "
            r"\quad\Rightarrow\quad 2\tilde{L} \ge \text{adversarial 0-1 loss}",
            "For all logits $z$ (Supp. B.1, eq. (9)); equality at a tie of two classes."),
        "thm41.lipschitz": (
            r"|L(f, y) - L(g, y)| \le C_p \|f - g\|_p, \qquad C_1 = \frac{1}{4\gamma},\; "
            r"C_2 = \frac{\sqrt{2}}{4\gamma},\; C_\infty = \frac{1}{2\gamma} \;\le\; \frac{1}{\gamma}",
            r"The paper's constant $1/\gamma$ holds for every $p$-norm on the logits; $C_p$ are the tightest."),
    }
    for mode, words in (("taylor", "Taylor"), ("exact-l2", "exact-l2"), ("exact-linf", "exact-linf")):
        ineq = _INEQ_42_TAYLOR if mode == "taylor" else _INEQ_42
        s[f"thm42.logistic.{mode}.centred_w_le_1"] = (
            r"\sum_i x_i = 0,\; w \le 1 \;\Rightarrow\; " + ineq,
            f"Form {'(i)' if mode == 'taylor' else '(ii)' if mode == 'exact-l2' else '(iii)'} ({words}) restricted "
            r"to centred data (used implicitly by the proof) and $w \le 1$: no violation found.")
    for grp, (net, centred) in _RELU_GROUPS.items():
        data = r"centred data ($\sum_i x_i = 0$)" if centred else "uncentred data"
        scope = f"{net} ReLU network $f$, {data}, $\\varepsilon$ as printed"
        s[f"thm42.relu.taylor.{grp}"] = (
            _INEQ_42_TAYLOR, f"Second-order Taylor forms $\\hat{{L}}$ with $\\theta_i = \\nabla f(x_i)$; {scope}.")
        s[f"thm42.relu.exact-linf.{grp}"] = (
            _INEQ_42 + r",\qquad \|\delta\|_\infty \le \varepsilon",
            f"Exact adversarial loss over the $\\ell_\\infty$ ball (main text) against the exact mixup loss; {scope}.")
        s[f"thm42.relu.exact-l2.{grp}"] = (
            _INEQ_42 + r",\qquad \|\delta\|_2 \le \varepsilon\sqrt{d}",
            f"Exact adversarial loss over the $\\ell_2$ ball (Supp. B.2) against the exact mixup loss; {scope}.")
    lhs41 = (r"\mathrm{err}_{\mathrm{adv}}(f) \le 2\tilde{L}_{\mathrm{adv}} + \frac{8}{\gamma}\tilde{L}_{\mathrm{dis}}"
             r" + 4R_S + \frac{16}{n}")
    for form, term in _CONFIDENCE.items():
        s[f"thm41.bound.{form}"] = (lhs41 + (" + " + term if term else ""), _thm41_prose(form))
    return s


STATEMENTS: dict[str, tuple[str, Any]] = _statements()


# =================================================================== the page: the code's ASCII notation as text
# Sources, errata and evidence strings are written in the modules' ASCII notation (theta^T x, E_{P_n}, ||delta||_inf,
# eps sqrt(d)). Shown as HTML text: Greek letters, relations, sub- and superscripts; claim ids become links, and
# code names (module paths, quoted identifiers, snake_case words) stay literal in <code>.
_WORD_SYMBOLS = {"alpha": "α", "beta": "β", "gamma": "γ", "delta": "δ", "kappa": "κ", "theta": "θ", "Theta": "Θ",
                 "lambda": "λ", "lam": "λ", "eps": "ε", "epsilon": "ε", "Psi": "Ψ", "phi": "φ", "grad": "∇",
                 "sum": "∑", "inf": "∞", "sqrt": "√", "l1": "ℓ1", "l2": "ℓ2", "l-inf": "ℓ∞", "l_inf": "ℓ∞"}
_MATH_BASES = {"Psi", "max", "min", "sum", "sup", "inf", "log", "lam", "theta", "delta", "eps", "phi", "beta",
               "alpha", "kappa", "gamma", "grad", "softmax"}
_ASCII = re.compile(
    r"(?P<cid>(?<![\w.])(?:thm4[12]|beta|relu)\.[A-Za-z0-9_\-]+(?:\.(?:[A-Za-z0-9_\-]+\*?|\*|\{[A-Za-z0-9_\-,]+\}))*)"
    r"|(?P<mod>(?<![\w.])theory(?:\.\w+)+(?:\(\))?)"
    r"|(?P<quoted>'[A-Za-z]{2,}\w*_\w*')"
    r"|(?P<snake>(?<![\w.])(?!(?:" + "|".join(sorted(_MATH_BASES)) + r")_)[a-z][a-z0-9]+(?:_[a-z0-9]+)+(?![\w.]))"
    r"|(?P<sub>(?:(?<![\w.])(?P<base>[A-Za-z]+[*~]?)|(?P<fence>\|\||\)|\]))_(?P<s>\{[^{}]*\}|[A-Za-z0-9]+~?))"
    r"|(?P<sup>\^(?P<p>\{[^{}]*\}|[A-Za-z0-9*]))"
    r"|(?P<pow>\*\*(?P<q>[A-Za-z]?\([^()]*\)|[\w.+-]+))"
    r"|(?P<tilde>(?<=[A-Za-z])~)"
    r"|(?P<sym><=|>=|!=|=>|\+-|\|\||(?<=[\w)\]|]) - (?=[\w(|])|(?<![\w.])log2(?=\()|(?<=\) )sum(?![\w.]))"
    r"|(?P<word>(?<![\w.])(?:alpha|beta|gamma|delta|kappa|theta|Theta|lambda|lam|eps|epsilon|Psi|phi|grad|sqrt"
    r"|l1|l2|l-inf|l_inf)(?![\w.]))"
    r"|(?P<minus>(?<![\w.])-(?=\d))")
# "sum" is the sign only after a factor, as in "(1/n) sum (1 + k)"; elsewhere it is the English word
_SYM = {"<=": "≤", ">=": "≥", "!=": "≠", "=>": "⇒", "+-": "±", "||": "‖", " - ": " − ", "log2": "log<sub>2</sub>",
        "sum": "∑"}


def pretty(s: Any, ids: set[str] | None = None) -> Markup:
    """The modules' ASCII notation as readable HTML text (escaped); ``ids``: claim ids to link to."""
    if s is None:
        return Markup("–")
    s = str(s)
    out: list[str] = []
    pos = 0
    for m in _ASCII.finditer(s):
        out.append(_x(s[pos:m.start()]))
        pos = m.end()
        g = m.group(0)
        if m.group("cid"):
            out.append(_claim_refs(g, ids))
        elif m.group("mod") or m.group("quoted"):
            out.append(f"<code>{_x(g.strip(chr(39)))}</code>")
        elif m.group("sub"):
            base, sub = m.group("base") or m.group("fence"), m.group("s")
            if m.group("base") and len(base.rstrip("*~")) > 1 and base.rstrip("*~") not in _MATH_BASES:
                out.append(f"<code>{_x(g)}</code>")  # a code name such as no_confidence_term
                continue
            sub = sub[1:-1] if sub.startswith("{") else sub
            sub_html = "∞" if sub == "inf" and base in ("l", "||", ")", "]") else pretty(sub, ids)
            out.append(f"{_word_html(base)}<sub>{sub_html}</sub>")
        elif m.group("snake"):
            out.append(f"<code>{_x(g)}</code>")
        elif m.group("sup"):
            p = m.group("p")
            p = p[1:-1] if p.startswith("{") else p
            out.append(f"<sup>{'⊤' if p == 'T' else pretty(p, ids)}</sup>")
        elif m.group("pow"):
            out.append(f"<sup>{pretty(m.group('q'), ids)}</sup>")
        elif m.group("tilde"):
            out.append("\u0303")
        elif m.group("sym"):
            out.append(_SYM[g])
        elif m.group("word"):
            out.append(_WORD_SYMBOLS[g])
        elif m.group("minus"):
            out.append("−")
    out.append(_x(s[pos:]))
    return Markup("".join(out))


def _word_html(base: str) -> str:
    """The base of a subscripted ASCII name: Greek names as letters, l as ℓ, ||, max, inf and log as they are."""
    if base == "||":
        return "‖"
    star = base[-1] if base[-1] in "*~" else ""
    core = base[:-1] if star else base
    if core not in ("max", "min", "log", "sup", "inf", "softmax"):
        core = {"l": "ℓ"}.get(core, _WORD_SYMBOLS.get(core, core))
    return _x(core) + ("\u0303" if star == "~" else _x(star))


def anchor(cid: str) -> str:
    return "ev-" + re.sub(r"[^A-Za-z0-9]+", "-", cid)


def _claim_refs(ref: str, ids: set[str] | None) -> str:
    """thm42.logistic.{taylor,exact-l2} -> two linked ids; a wildcard (thm42.relu.taylor.biased-*) stays a name."""
    m = re.fullmatch(r"(.*)\.\{([^{}]*)\}", ref)
    names = [f"{m.group(1)}.{p.strip()}" for p in m.group(2).split(",")] if m else [ref]
    parts = []
    for n in names:
        if ids is not None and n in ids:
            parts.append(f'<a href="#{anchor(n)}"><code>{_x(n)}</code></a>')
        else:
            parts.append(f"<code>{_x(n)}</code>")
    return ", ".join(parts)


# =========================================================================== the page: key numbers per claim
def _num(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _triples(obj: Any, path: tuple[str, ...] = ()) -> list[tuple[tuple[str, ...], dict]]:
    """Every dict in the evidence that holds a left side and a right side (lhs/lhs_upper and rhs), depth first."""
    found = []
    if isinstance(obj, dict):
        if _num(obj.get("rhs")) and (_num(obj.get("lhs")) or _num(obj.get("lhs_upper"))):
            found.append((path, obj))
        for k, v in obj.items():
            found += _triples(v, path + (str(k),))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            found += _triples(v, path + (f"#{i + 1}",))
    return found


_PATH_WORDS = {"counterexample_noncentred": "non-centred counterexample",
               "counterexample_centred_w_gt_1": "centred counterexample, w > 1", "recheck": "",
               "float64_quad": "float64, QUADPACK", "mpmath": "mpmath", "instances": "instance"}


def _triple_label(path: tuple[str, ...], d: dict) -> str:
    words = [_PATH_WORDS.get(p, p.replace("_", " ")) for p in path]
    label = ", ".join(w for w in words if w) or "verified counterexample"
    if path and path[-1] == "mpmath" and _num(d.get("dps")):
        label += f" ({d['dps']} digits)"
    if isinstance(d.get("group"), str):
        label = f"{d['group']} (certified upper bound on the left)"
    return label


def margin_rows(claim: dict) -> list[dict[str, Any]]:
    """Left side, right side and right minus left of every such pair in the claim, printed by margin_digits."""
    ev = claim.get("evidence") or {}
    rows = []
    for path, d in _triples(ev):
        lhs = d["lhs"] if _num(d.get("lhs")) else d["lhs_upper"]
        given = next((d[k] for k in ("margin", "verified_margin") if _num(d.get(k))), None)
        rows.append(_margin_row(_triple_label(path, d), lhs, d["rhs"], given))
    if _num(ev.get("mean_lhs")) and _num(ev.get("mean_rhs")):
        rows.append(_margin_row("means over the runs", ev["mean_lhs"], ev["mean_rhs"], None))
    return rows


def _margin_row(label: str, lhs: float, rhs: float, margin: float | None) -> dict[str, Any]:
    lo, hi, mg = margin_digits(float(lhs), float(rhs), None if margin is None else float(margin))
    return {"label": label, "lhs": _num_markup(lo), "rhs": _num_markup(hi), "margin": _num_markup(mg),
            "negative": mg.startswith("-")}


def _by_scale(d: dict) -> Markup:
    parts = []
    for k, v in d.items():
        m = re.fullmatch(r"scale 10\^([+-]?\d+(?:\.\d+)?)", str(k))
        key = Markup("10<sup>{}</sup>").format(_num_markup(fmt_num(int(float(m.group(1)))))) if m else pretty(k)
        parts.append(Markup("{}: {}").format(key, str(v).replace(" violate", "")))
    return Markup("; ").join(parts)


def _deciding_keys(ev: dict) -> set[str]:
    """The evidence entries deciding_number already prints, so the key numbers do not repeat them."""
    k = ev.get("key")
    if isinstance(k, str) and k in ev:
        keys = {k}
        if k.startswith("violations"):
            keys |= {"violations", "violations_screen", "min_margin", "min_margin_screen", "verified_margin"}
        if k == "min_certified_margin":
            keys |= {"violations", "detectable_deficit"}
        return keys
    if ev.get("sympy_proved") is True:
        return {"sympy_proved"}
    keys = {"violations", "random_instances"} if _num(ev.get("random_instances")) else set()
    if isinstance(ev.get("violating_cells_by_family"), dict):
        keys.add("cells")
    first = next((k for k, v in ev.items() if _num(v) and not re.search(r"second|time|seed", k)), None)
    return keys | ({first} if first and not keys else set())


def key_numbers(claim: dict) -> list[tuple[str, Markup]]:
    """The few numbers a reader needs beside the verdict and the deciding number, in words; everything else stays in
    the folded evidence."""
    ev = claim.get("evidence") or {}
    skip = _deciding_keys(ev)
    out: list[tuple[str, Markup]] = []

    def add(key: str, label: str, value: Any) -> None:
        if key not in skip and key in ev:
            out.append((label, value if isinstance(value, Markup) else num_html(value)))

    def text(v: Any) -> Any:
        return v if _num(v) else Markup.escape(fmt_num(v))

    if "numeric_spot_check" in ev:
        sc = ev["numeric_spot_check"]
        add("numeric_spot_check", "numeric spot check", Markup("–") if sc is None else Markup(
            "largest gap {} ({} draws of a, b; tolerance {})").format(
            num_html(sc, 2), fmt_num(ev.get("spot_draws")), num_html(ev.get("spot_tolerance"), 2)))
    if _num(ev.get("max_rel_gap")) and _num(ev.get("tolerance")):
        add("tolerance", "tolerance", Markup("{} ({} cases)").format(num_html(ev["tolerance"], 2),
                                                                      len(ev.get("rows") or [])))
    if isinstance(ev.get("random_search"), dict):
        add("random_search", "random search", Markup("; ").join(
            Markup("{}: {}/{} violate").format(pretty(fam), v.get("violations"), v.get("count"))
            for fam, v in ev["random_search"].items() if isinstance(v, dict)))
    if _num(ev.get("worst_rel_margin_random")) or _num(ev.get("worst_rel_margin_optimiser")):
        add("worst_rel_margin_random", "worst relative margin", Markup("{} (random), {} (optimiser)").format(
            num_html(ev.get("worst_rel_margin_random")), num_html(ev.get("worst_rel_margin_optimiser"))))
    if isinstance(ev.get("scan"), list) and isinstance(ev.get("scan_columns"), list) and ev["scan"]:
        for j, c in enumerate(ev["scan_columns"][1:-1], start=1):
            vals = [r[j] for r in ev["scan"] if _num(r[j])]
            if vals:
                out.append((f"smallest {c}", num_html(min(vals))))
    if isinstance(ev.get("violating_cells_by_family"), dict):
        add("violating_cells_by_family", "by family", Markup("; ").join(
            Markup("{}: {}").format(pretty(k.replace(",", ", ")), v)
            for k, v in ev["violating_cells_by_family"].items()))
    add("n_instances", "instances", ev.get("n_instances"))
    for k, label in (("violations", "violations"), ("min_margin", "smallest margin"),
                     ("violations_screen", "violations (screen)"), ("min_margin_screen", "smallest margin (screen)")):
        add(k, label, text(ev.get(k)))
    if isinstance(ev.get("by_scale"), dict):
        add("by_scale", "violations by scale of the weights", _by_scale(ev["by_scale"]))
    if _num(ev.get("eps")):
        add("eps", "ε of the counterexample", ev["eps"])
    for k, label in (("max_time_s", "slowest solve (s)"), ("max_reeval_gap", "largest re-evaluation gap"),
                     ("max_pgd_excess", "largest excess of PGD over the MILP"),
                     ("min_2L_over_misclassified", "smallest 2L̃ over misclassified logits"),
                     ("tie_K2", "2L̃ at a two-class tie"), ("n_samples", "random logits"),
                     ("ratio_paper_to_tight_linf", "paper's constant / tightest ℓ∞ constant")):
        if _num(ev.get(k)):
            add(k, label, ev[k])
    if _num(ev.get("min_certified_margin")):
        for k, label in (("min_certified_margin", "smallest certified margin"),
                         ("violations", "certified violations (runs)"), ("held_certified", "runs certified"),
                         ("vacuous", "runs with a vacuous right side"),
                         ("detectable_deficit", "smallest detectable deficit")):
            add(k, label, text(ev.get(k)))
    if not out and not skip:  # a claim this function does not know: its first few plain numbers
        for k, v in ev.items():
            if _num(v) and not re.search(r"second|time|seed", k) and len(out) < 4:
                out.append((k.replace("_", " "), num_html(v)))
    return out


# ============================================================================ the page: raw evidence, readable
_KEY_WORDS = {"a_b_range": "range of (a, b)", "numeric_spot_check": "numeric spot check (largest gap)",
              "cp_99.9": "Clopper-Pearson 99.9 % interval", "R": "runs (training sets)", "theta_in_Theta": "θ ∈ Θ",
              "w_kappa_lt_1": "w κ < 1", "c_x_strict": "c_x strict", "soft_labels_in_01": "soft labels in [0, 1]",
              "grad_dot_x": "∇f(x)ᵀx"}
_MAX_ITEMS = 40


def _key_html(k: Any) -> Markup:
    k = str(k)
    if k in _KEY_WORDS:
        return pretty(_KEY_WORDS[k])
    if re.fullmatch(r"[A-Za-z0-9]+(_[A-Za-z0-9]+)+", k) and not re.fullmatch(r"[A-Za-z]_\w{1,3}", k):
        k = k.replace("_", " ")
    return pretty(k)


class _Printed(str):
    """A number already printed to the digits it needs (margin_digits); shown as it is, with a true minus sign."""


def _scalar_html(v: Any) -> Markup:
    if isinstance(v, _Printed):
        return _num_markup(v)
    if isinstance(v, str):
        return pretty(v)
    return num_html(v)


def _is_scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))  # _Printed is a str


def evidence_html(obj: Any, depth: int = 0) -> Markup:
    """Nested evidence as HTML: dicts as key/value tables, {columns, rows} (or X_columns, X) and lists of equal
    dicts as tables, matrices as grids, long lists folded; None shows as '–'. No Python or JSON syntax."""
    if _is_scalar(obj):
        return _scalar_html(obj)
    if isinstance(obj, dict):
        obj = dict(obj)
        if _num(obj.get("lhs")) and _num(obj.get("rhs")):  # both sides and the margin to the same digits
            given = next((k for k in ("margin", "verified_margin") if _num(obj.get(k))), None)
            lo, hi, mg = margin_digits(float(obj["lhs"]), float(obj["rhs"]),
                                       float(obj[given]) if given else None)
            obj["lhs"], obj["rhs"] = _Printed(lo), _Printed(hi)
            if given:
                obj[given] = _Printed(mg)
        tables: list[Markup] = []
        for ck in [k for k in obj if k == "columns" or str(k).endswith("_columns")]:
            rk = "rows" if ck == "columns" else str(ck)[: -len("_columns")]
            if isinstance(obj.get(ck), list) and isinstance(obj.get(rk), list):
                tables.append(_table_html(obj.pop(ck), obj.pop(rk), rk.replace("_", " ")))
        rows = Markup("").join(Markup('<tr><th scope="row">{}</th><td>{}</td></tr>').format(
            _key_html(k), evidence_html(v, depth + 1)) for k, v in obj.items() if k != "key")
        body = Markup('<table class="kv"><tbody>{}</tbody></table>').format(rows) if rows else Markup("")
        return body + Markup("").join(tables)
    if isinstance(obj, list):
        if not obj:
            return Markup("(none)")
        if all(_is_scalar(v) for v in obj):
            shown = Markup(", ").join(_scalar_html(v) for v in obj[:_MAX_ITEMS])
            more = Markup(" … ({} values; all in theory.json)").format(len(obj)) if len(obj) > _MAX_ITEMS else ""
            return shown + more
        if all(isinstance(v, list) and all(_is_scalar(x) for x in v) for v in obj):
            return _grid_html(obj)
        if all(isinstance(v, dict) for v in obj) and len({tuple(v) for v in obj}) == 1:
            cols = list(obj[0])
            return _table_html(cols, [[v[c] for c in cols] for v in obj], "items")
        return Markup("").join(Markup('<div class="item"><span class="idx">{}.</span> {}</div>').format(
            i + 1, evidence_html(v, depth + 1)) for i, v in enumerate(obj[:_MAX_ITEMS]))
    return pretty(obj)


def _grid_html(rows: list[list[Any]]) -> Markup:
    body = Markup("").join(Markup("<tr>{}</tr>").format(Markup("").join(
        Markup("<td>{}</td>").format(_scalar_html(x)) for x in r)) for r in rows[:_MAX_ITEMS])
    more = (Markup('<p class="small">{} rows; all in theory.json</p>').format(len(rows))
            if len(rows) > _MAX_ITEMS else "")
    return Markup('<table class="grid"><tbody>{}</tbody></table>{}').format(body, more)


def _table_html(columns: list[Any], rows: list[Any], title: str) -> Markup:
    head = Markup("").join(Markup("<th>{}</th>").format(pretty(c)) for c in columns)
    body = Markup("").join(Markup("<tr>{}</tr>").format(Markup("").join(
        Markup("<td>{}</td>").format(evidence_html(x, 9) if not _is_scalar(x) else _scalar_html(x))
        for x in (r if isinstance(r, list) else [r]))) for r in rows)
    table = Markup('<div class="scroll"><table class="data"><thead><tr>{}</tr></thead><tbody>{}</tbody></table></div>'
                   ).format(head, body)
    if len(rows) > 12:  # a long table gets its own fold inside the evidence
        return Markup("<details><summary>{} ({} rows)</summary>{}</details>").format(title, len(rows), table)
    return table


# ================================================================================ the page: figures (matplotlib)
def _matplotlib():
    """matplotlib, imported only when a figure is drawn (the theory tier does not need it); None when missing."""
    try:
        import matplotlib
        from matplotlib.figure import Figure
    except ImportError:
        return None
    return matplotlib, Figure


def _svg(fig, salt: str) -> str:
    """A matplotlib figure as inline SVG: text kept as text, ids made unique per figure, no XML prolog or metadata."""
    import io

    import matplotlib

    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": salt}):
        fig.savefig(buf, format="svg", bbox_inches="tight", metadata={"Date": None, "Creator": None})
    svg = buf.getvalue()
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<metadata>.*?</metadata>\s*", "", svg, flags=re.S)
    # matplotlib numbers its element ids per figure (axes_1, patch_1, ...): prefix them so figures on one page differ
    for gid in set(re.findall(r'\bid="([^"]+)"', svg)):
        svg = re.sub(rf'(\bid="|#){re.escape(gid)}(?=[")])', rf"\g<1>{salt}-{gid}", svg)
    # drawn at 1.2 times its natural size where the page is wide enough, shrunk to the column where it is not
    m = re.search(r'<svg[^>]*? width="([\d.]+)pt" height="[\d.]+pt"', svg)
    if m:
        px = float(m.group(1)) * 4 / 3 * 1.2
        svg = svg.replace(m.group(0), m.group(0).replace(f'width="{m.group(1)}pt"', f'style="width: {px:.0f}px"', 1)
                          .split(' height="')[0], 1)
    return svg.replace("<svg ", '<svg class="fig" ', 1)


def _style(matplotlib) -> dict:
    return {"font.size": 9.5, "axes.titlesize": 10, "axes.labelsize": 9.5, "legend.fontsize": 8.5,
            "font.family": "DejaVu Sans", "axes.spines.top": False, "axes.spines.right": False}


def _fig_regime_map(claim: dict, mpl) -> str:
    matplotlib, Figure = mpl
    import numpy as np

    ev = claim["evidence"]
    cols, rows = ev["columns"], ev["rows"]
    ix = {c: cols.index(c) for c in ("family", "||theta||", "a", "b", "violations", "instances")}
    fams = list(dict.fromkeys(r[ix["family"]] for r in rows))
    thetas = sorted({r[ix["||theta||"]] for r in rows})
    abs_ = sorted({(r[ix["a"]], r[ix["b"]]) for r in rows})
    with matplotlib.rc_context(_style(matplotlib)):
        fig = Figure(figsize=(7.4, 2.75))
        axes = fig.subplots(1, len(fams), sharey=True)
        axes = np.atleast_1d(axes)
        for ax, fam in zip(axes, fams):
            v = np.zeros((len(abs_), len(thetas)))
            n = np.zeros_like(v)
            for r in rows:
                if r[ix["family"]] == fam:
                    i, j = abs_.index((r[ix["a"]], r[ix["b"]])), thetas.index(r[ix["||theta||"]])
                    v[i, j] += r[ix["violations"]]
                    n[i, j] += r[ix["instances"]]
            frac = np.divide(v, n, out=np.zeros_like(v), where=n > 0)
            im = ax.imshow(frac, cmap="Reds", vmin=0, vmax=1, aspect="auto", origin="lower")
            for i in range(len(abs_)):
                for j in range(len(thetas)):
                    ax.text(j, i, f"{int(v[i, j])}/{int(n[i, j])}", ha="center", va="center", fontsize=6.5,
                            color="white" if frac[i, j] > 0.55 else "#333")
            ax.set_xticks(range(len(thetas)), [f"{t:g}" for t in thetas])
            ax.set_xlabel("‖θ‖")
            ax.set_title(fam.replace("<=", " ≤ ").replace(">", " > ").replace(",", ", "))
            ax.spines[:].set_visible(False)
            ax.tick_params(left=False)
        axes[0].set_yticks(range(len(abs_)), [f"({a:g}, {b:g})" for a, b in abs_])
        axes[0].set_ylabel("Beta parameters (a, b)")
        cb = fig.colorbar(im, ax=list(axes), fraction=0.025, pad=0.02)
        cb.set_label("fraction of instances violating")
    return _svg(fig, "regime-map")


def _fig_corrected_eps(claim: dict, mpl) -> str:
    matplotlib, Figure = mpl
    ev = claim["evidence"]
    cols, scan = ev["scan_columns"], ev["scan"]
    s = [r[0] for r in scan]
    with matplotlib.rc_context(_style(matplotlib)):
        fig = Figure(figsize=(6.2, 2.6))
        ax = fig.subplots()
        styles = ["-o", "--s", ":^", "-D"]
        for j, c in enumerate(cols[1:], start=1):
            ax.plot(s, [r[j] for r in scan], styles[(j - 1) % 4], ms=3.5, lw=1.2,
                    label=c.replace("margin ", "").replace("exact-l2 corrected eps", "exact-l2, corrected ε"),
                    color="#1b7f3b" if "corrected" in c else None)
        ax.axhline(0, color="#b3261e", lw=0.8)
        ax.set_xscale("log")
        ax.set_yscale("symlog", linthresh=1e-5)
        # 0 and every other decade from the linear threshold out: on a 2.6 in axis each decade's label (and those
        # inside the linear band) would overlap their neighbours'
        import math

        from matplotlib.ticker import FixedLocator
        vals = [abs(r[j]) for r in scan for j in range(1, len(cols)) if r[j] is not None]
        top = max([v for v in vals if v > 0] or [1e-5])
        decades = [10.0 ** k for k in range(-5, math.ceil(math.log10(top)) + 1, 2)]
        lo, hi = ax.get_ylim()
        ax.yaxis.set_major_locator(FixedLocator([t for t in [0.0, *decades, *(-d for d in decades)] if lo <= t <= hi]))
        ax.yaxis.set_minor_locator(FixedLocator([]))
        ax.set_xlabel("‖θ‖ (centred counterexample family, w > 1)")
        ax.set_ylabel("margin (right − left)")
        ax.legend(frameon=False, ncol=2, loc="upper left")
    return _svg(fig, "corrected-eps")


def _fig_thm41_n(claim: dict, mpl) -> str:
    matplotlib, Figure = mpl
    import numpy as np

    bd = claim["evidence"]["old_setting_breakdown"]
    cols, rows = bd["columns"], bd["rows"]
    col = {c: [r[i] for r in rows] for i, c in enumerate(cols)}
    n = np.asarray(col["n"], float)
    lhs = np.asarray(col["lhs"], float)
    forms = [f for f in ("printed", "standard", "union", "no_confidence_term") if f"rhs {f}" in col]
    colours = {"printed": "#b3261e", "standard": "#1f5fa8", "union": "#6a3d9a", "no_confidence_term": "#4d7f1b"}
    with matplotlib.rc_context(_style(matplotlib)):
        fig = Figure(figsize=(7.4, 2.7))
        ax1, ax2 = fig.subplots(1, 2)
        for f in forms:
            ax1.plot(n, np.asarray(col[f"rhs {f}"], float) - lhs, "-o", ms=3.5, lw=1.2, color=colours[f],
                     label=f.replace("_", " "))
        ax1.plot(n, 1 - lhs, "k--", lw=0.9, label="1 − left side (vacuous above)")
        ax1.set_xscale("log", base=2)
        ax1.set_xlabel("n")
        ax1.set_ylabel("margin: right − left side")
        ax1.set_title("(a) margin of eq. (1) against n")
        ax1.legend(frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2)
        terms = [c for c in ("2 L_adv", "(8/gamma) L_dis", "4 R_S", "16/n", "conf printed") if c in col]
        bottom = np.zeros_like(n)
        x = np.arange(len(n))
        palette = ["#4c72b0", "#dd8452", "#55a868", "#8172b3", "#c44e52"]
        for k, t in enumerate(terms):
            h = np.asarray(col[t], float)
            ax2.bar(x, h, 0.6, bottom=bottom, color=palette[k % 5], label=_TERM_WORDS.get(t, t))
            bottom += h
        ax2.plot(x, lhs, "k_", ms=14, mew=2, label="left side")
        ax2.axhline(1, color="#555", lw=0.8, ls="--")
        ax2.set_xticks(x, [f"{int(v)}" for v in n])
        ax2.set_xlabel("n")
        ax2.set_ylabel("right side (printed), by term")
        ax2.set_title("(b) terms of the right side")
        ax2.legend(frameon=False, fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    return _svg(fig, "thm41-n")


_TERM_WORDS = {"2 L_adv": "2 L̃ adversarial", "(8/gamma) L_dis": "(8/γ) L̃ distillation", "4 R_S": "4 R_S Rademacher",
               "16/n": "16/n", "conf printed": "confidence (printed)"}


# claim id -> (figure function, evidence keys it needs, caption); drawn only when the claim carries the data
FIGURES: dict[str, tuple[Any, tuple[str, ...], str]] = {
    "thm42.logistic.regime_map": (
        _fig_regime_map, ("columns", "rows"),
        "Regime map of (ii), the exact ℓ2 inequality at the printed ε: fraction of random instances that violate "
        "it, per data family, ‖θ‖ and Beta parameters (pooled over n, d and the c_x fraction; cell text: violating "
        "/ instances). Only non-centred data violate."),
    "thm42.logistic.exact-l2.corrected_eps": (
        _fig_corrected_eps, ("scan_columns", "scan"),
        "Margin (right side minus left side) of the centred w > 1 counterexample family against ‖θ‖, symmetric-log "
        "scale: negative (below the red line) is a violation. The three forms at the printed ε go negative at small "
        "‖θ‖; with the corrected ε the margin stays positive."),
    "thm41.bound.printed": (
        _fig_thm41_n, ("old_setting_breakdown",),
        "Theorem 4.1 in the earlier setting (d = 5, m = 3) as n grows: (a) margin of eq. (1), right side minus the "
        "exact left side, for each reading of the last term; above the dashed line the right side exceeds 1 and the "
        "bound says nothing. (b) The right side (printed last term) term by term, with the left side."),
}


def figures_for(claim: dict, number: int) -> list[dict[str, Any]]:
    """The figure a claim's evidence implies: {number, caption, svg} or, without matplotlib, {number, caption,
    missing} so the page says why it is absent; [] when the claim has no such data."""
    spec = FIGURES.get(claim.get("id", ""))
    ev = claim.get("evidence") or {}
    if spec is None or not all(isinstance(ev.get(k), (dict, list)) and ev.get(k) for k in spec[1]):
        return []
    fn, keys, caption = spec
    fig: dict[str, Any] = {"number": number, "caption": caption, "keys": ", ".join(keys)}
    mpl = _matplotlib()
    if mpl is None:
        fig["missing"] = "matplotlib is not installed in this environment"
        return [fig]
    try:
        fig["svg"] = Markup(fn(claim, mpl))
    except Exception as exc:  # noqa: BLE001 - a figure never takes the page down; the page says what went wrong
        fig["missing"] = f"drawing it failed ({type(exc).__name__}: {exc})"
    return [fig]


# ============================================================================================= the page itself
VERDICT_COLOURS = {"holds-exact": "#1b7f3b", "holds-certified": "#1b7f3b", "holds-approximately": "#4d7f1b",
                   "fails": "#b3261e", "inconclusive": "#9a6700"}
SECTIONS = [  # (claim-id prefixes, title, introduction with inline math)
    (("beta.",), "The mixup distribution P\u0303",
     r"Supp. B.2 rewrites the mixup loss with $\tilde{P} = \frac{a}{a+b}\mathrm{Beta}(a+1, b) + "
     r"\frac{b}{a+b}\mathrm{Beta}(b+1, a)$. Each identity is proved symbolically and spot-checked numerically."),
    (("thm42.logistic.",), "Theorem 4.2 for logistic regression",
     r"$f_\theta(x) = \theta^\top x$; the paper's $\alpha$ and $\beta$ are split into the Beta parameters $a, b$, "
     r"the distillation weight $w$ and the constant $\kappa$ of $\Theta$. Three forms: (i) the proof's Taylor "
     r"expansions, (ii) exact losses over the $\ell_2$ ball, (iii) over the $\ell_\infty$ ball."),
    (("thm42.relu.", "relu."), "Theorem 4.2 for ReLU networks",
     r"Fully connected ReLU networks, with and without biases, on centred and uncentred data, at the printed "
     r"$\varepsilon$ with $R = \min_i |\cos(\nabla f(x_i), x_i)|$; exact adversarial sides by MILP."),
    (("thm41.",), "Theorem 4.1",
     r"$L = 1 - \mathrm{softmax}_\gamma$; the pointwise steps of the proof, then the bound of eq. (1) by Monte "
     r"Carlo with every quantity certified (an upper bound on the left against a lower bound on the right)."),
]


def _section_of(cid: str) -> int:
    for i, (prefixes, _, _) in enumerate(SECTIONS):
        if cid.startswith(prefixes):
            return i
    return len(SECTIONS)


def _commit_line(prov: dict) -> Markup:
    """The commit the results come from, read by mixacm.gitinfo when the run was made (provenance) or, for a result
    without it, now."""
    label, g = prov.get("git_commit"), prov.get("git")
    when = "of the run"
    if not label:
        g = git_commit(ROOT)
        label, when = commit_label(ROOT), "read at rendering (the results carry none)"
    sha = str(label).removesuffix("+dirty")
    g = g if isinstance(g, dict) else {}
    notes = []
    if str(label).endswith("+dirty") or g.get("dirty"):
        notes.append("tracked files modified")
    if g.get("source") == "MIXACM_COMMIT":
        notes.append("from $MIXACM_COMMIT, no git")
    if sha == "unknown":
        notes.append("no git and no $MIXACM_COMMIT")
    short = sha[:12] if re.fullmatch(r"[0-9a-f]{40}", sha) else sha
    return Markup('commit <code title="{}">{}</code>{} <span class="small">({})</span>').format(
        sha, short, Markup(" ({})").format("; ".join(notes)) if notes else "", when)


def render_html(result: dict[str, Any]) -> str:
    import jinja2

    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATE_DIR)), autoescape=True,
                             trim_blocks=True, lstrip_blocks=True)
    ids = {c["id"] for c in result["claims"]}
    sections: list[dict[str, Any]] = [{"title": t, "intro": prose_html(p), "claims": [], "counts": {}}
                                      for _, t, p in SECTIONS]
    sections.append({"title": "Other checks", "intro": Markup(""), "claims": [], "counts": {}})
    n_fig = 0
    for c in result["claims"]:
        sec = sections[_section_of(c["id"])]
        ev = c.get("evidence") or {}
        tex, prose = STATEMENTS.get(c["id"], (None, None))
        if callable(prose):
            prose = prose(ev)
        figs = figures_for(c, n_fig + 1)
        n_fig += len(figs)
        raw = {"evidence": ev}
        if c.get("counterexample"):
            raw["counterexample"] = c["counterexample"]
        sec["claims"].append({
            "id": c["id"], "anchor": anchor(c["id"]), "verdict": c["verdict"],
            "colour": VERDICT_COLOURS.get(c["verdict"], "#6b6b6b"),
            "math": Markup(tex_to_mathml(tex, display=True)) if tex else None,
            "prose": prose_html(prose) if prose else None,
            "statement_text": pretty(c.get("statement"), ids), "source": pretty(c.get("source"), ids),
            "deciding": _num_text(deciding_number(c)), "key_numbers": key_numbers(c), "margins": margin_rows(c),
            "figures": figs, "module": c.get("module", ""),
            "counterexample": evidence_html(c["counterexample"]) if c.get("counterexample") else None,
            "evidence": evidence_html(ev)})
        sec["counts"][c["verdict"]] = sec["counts"].get(c["verdict"], 0) + 1
    sections = [s for s in sections if s["claims"]]
    for k, s in enumerate(sections, start=1):
        s["number"] = f"A.{k}"
        s["anchor"] = f"sec-{k}"
        s["counts"] = [{"verdict": v, "n": n, "colour": VERDICT_COLOURS.get(v, "#6b6b6b")}
                       for v, n in s["counts"].items()]
        for j, c in enumerate(s["claims"], start=1):
            c["number"] = f"{s['number']}.{j}"
    counts: dict[str, int] = {}
    for c in result["claims"]:
        counts[c["verdict"]] = counts.get(c["verdict"], 0) + 1
    prov = result.get("provenance") or {}
    return env.get_template("theory.html.j2").render(
        sections=sections, n_claims=len(result["claims"]), n_figures=n_fig,
        errata=[{"location": pretty(e.get("location"), ids), "text_says": pretty(e.get("text_says"), ids),
                 "correct": pretty(e.get("correct"), ids), "evidence": pretty(e.get("evidence"), ids)}
                for e in result["errata"]],
        commit=_commit_line(prov), provenance=_provenance_view(prov),
        counts=[{"verdict": k, "n": v, "colour": VERDICT_COLOURS.get(k, "#6b6b6b")} for k, v in counts.items()])


def _num_text(s: str) -> Markup:
    """A sentence with numbers in it (the deciding number): true minus signs and ×10^k for e-notation."""
    out, pos = [], 0
    for m in re.finditer(r"(?<![\w.])-?\d+(?:\.\d+)?(?:e[+-]\d+)?(?![\w.])", s):
        out.append(_x(s[pos:m.start()]))
        out.append(str(_num_markup(m.group(0))))
        pos = m.end()
    out.append(_x(s[pos:]))
    return Markup("".join(out).replace("&gt;=", "≥").replace("&lt;=", "≤"))


def _provenance_view(prov: dict) -> dict[str, Any]:
    versions = prov.get("versions") if isinstance(prov.get("versions"), dict) else {}
    machine = prov.get("machine") if isinstance(prov.get("machine"), dict) else {}
    times = prov.get("wall_time_s") if isinstance(prov.get("wall_time_s"), dict) else {}
    seeds = prov.get("seeds") if isinstance(prov.get("seeds"), dict) else {}
    return {
        "versions": ", ".join(f"{k} {v}" for k, v in versions.items()),
        "machine": ", ".join(str(v) for v in (machine.get("platform"), machine.get("processor")) if v),
        "total": fmt_num(prov.get("wall_time_total_s"), 3) if prov.get("wall_time_total_s") is not None else None,
        "times": [(k, fmt_num(v, 3)) for k, v in times.items()],
        "seeds": [(k, fmt_num(v)) for k, v in seeds.items()],
        "quick": prov.get("quick"),
    }
