"""What the device check carries to a lent GPU machine, built here once: ``python -m verification.device_pack``.

Writes, under an ignored folder (default ``build/device/``; ``build/`` is in .gitignore), so that one ``carry`` entry
takes it along:

- ``cifar10-pack.npz``: the JPEG bytes of all 50,000 training images and a seeded, stratified 2,000 test images
  (200 per class, seed 0) of the CIFAR-10 JPEG copy (``../shared/data/cifar10-jpeg``, or ``--data-dir`` /
  ``$MIXACM_CIFAR10_JPEG``), about 50 MB, read by ``mixacm.data`` as the data set "cifar10-pack" and decoded in
  memory there (``mixacm.data.write_pack``);
- ``site/pyautoattack/``: the AutoAttack package's Python sources (about 140 kB, its examples left out), which the
  machine's image lacks; the device check puts ``site/`` on ``sys.path`` when the package is not installed.
  RobustBench is not carried: it needs packages the image lacks too (gdown and bs4, geotorch, setuptools'
  pkg_resources); the device check reports its cells "not available on the device".

Nothing is downloaded. Sizes are printed; the device check's own command (README of this module's caller,
``verification/device_check.py``) names this folder in ``carry``.
"""
from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "build" / "device"
PACK_NAME = "cifar10-pack.npz"
TEST_PER_CLASS = 200  # x 10 classes = the seeded 2,000 test images of the mini-reproduction


def vendor_pyautoattack(site: Path) -> Path | None:
    """Copy the installed pyautoattack's .py files (no examples, no caches) to site/pyautoattack; None if absent."""
    try:
        import pyautoattack
    except ImportError:
        return None
    src = Path(pyautoattack.__file__).resolve().parent
    dst = site / "pyautoattack"
    if dst.exists():
        shutil.rmtree(dst)
    for f in sorted(src.rglob("*.py")):
        rel = f.relative_to(src)
        if rel.parts[0] in ("examples", "__pycache__"):
            continue
        (dst / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(f, dst / rel)
    for lic in src.parent.glob("pyautoattack-*.dist-info/LICENSE*"):
        shutil.copy2(lic, dst / lic.name)
    return dst


def build(out: Path = DEFAULT_OUT, data_dir: str | None = None, *, test_per_class: int | None = TEST_PER_CLASS,
          vendor: bool = True) -> dict:
    from mixacm.data import write_pack
    from verification.plans import cifar_jpeg_root

    src = cifar_jpeg_root(data_dir)
    if src is None:
        raise SystemExit("device_pack: the CIFAR-10 JPEG copy was not found; pass --data-dir or set "
                         "$MIXACM_CIFAR10_JPEG")
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    pack = write_pack(src, out / PACK_NAME, test_per_class=test_per_class, seed=0)
    site = vendor_pyautoattack(out / "site") if vendor else None
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    return {"pack": str(pack), "pack_bytes": pack.stat().st_size, "site": str(site) if site else None,
            "folder": str(out), "folder_bytes": size, "seconds": round(time.time() - t0, 1)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m verification.device_pack", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default=str(DEFAULT_OUT), help="folder to write (an ignored one: it travels by carry)")
    p.add_argument("--data-dir", default=None, help="the CIFAR-10 JPEG copy (default: $MIXACM_CIFAR10_JPEG or "
                                                    "../shared/data/cifar10-jpeg)")
    p.add_argument("--no-vendor", action="store_true", help="do not copy pyautoattack's sources")
    args = p.parse_args(argv)
    info = build(Path(args.out), args.data_dir, vendor=not args.no_vendor)
    print(f"pack {info['pack']}: {info['pack_bytes'] / 2**20:.1f} MiB; pyautoattack sources: {info['site'] or 'not installed here'}; "
          f"{info['folder']} holds {info['folder_bytes'] / 2**20:.1f} MiB ({info['seconds']} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
