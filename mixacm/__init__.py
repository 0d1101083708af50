"""MixACM: Mixup-based robustness transfer via distillation of Activated Channel Maps (Awais et al., 2021)."""

__version__ = "0.1.0"
