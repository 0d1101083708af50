"""Robustness evaluation (main paper Sec. 6 "Evaluation of Robustness", Tables 1-5): clean accuracy, per-attack robust
accuracy, the per-sample worst case over the chosen attacks, and self-checks, as one JSON-able dict.

Per attack, every point the model classifies correctly is attacked (``individual=True``, the paper's per-column
numbers; with ``individual=False`` an attack only sees points all previous attacks failed on, cheaper, and its
number is then the cumulative robust accuracy). The worst case ANDs the per-sample robust masks. Each (attack,
batch) result is persisted in ``state_dir`` when given and skipped on a rerun; the random seed of every (attack,
batch) is derived from (seed, attack, batch index), so a resumed run gives the same numbers as an uninterrupted one.

CLI: ``mixacm evaluate CHECKPOINT --data NAME [--attacks fgsm,pgd20,autoattack] [--eps 8/255] [--n 500] [--seed 0]
[--out results.json]``.
"""
from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import torch
from torch import Tensor, nn

from mixacm import selfcheck
from mixacm.gitinfo import git_commit
from mixacm.machine import describe
from mixacm.attacks import ATTACKS, AttackSpec, BlockNoise, parse_attack, parse_eps, run_white_box

SCHEMA = "mixacm.evaluate/1"


class EvaluationWarning(UserWarning):
    """A self-check flagged the evaluation (also recorded in the result's "warnings")."""


def derived_seed(seed: int, attack: str, batch: int) -> int:
    digest = hashlib.sha256(f"{seed}:{attack}:{batch}".encode()).digest()
    return int.from_bytes(digest[:4], "little") & 0x7FFFFFFF


def subset_indices(n_total: int, n: int | None, seed: int) -> Tensor:
    """Seeded subset of n of n_total examples (sorted), or all of them."""
    if n is None or n == n_total:
        return torch.arange(n_total)
    if n < 1 or n > n_total:
        raise ValueError(f"n={n} but the test set has {n_total} examples; choose 1 <= n <= {n_total} or omit n")
    g = torch.Generator().manual_seed(seed)
    return torch.randperm(n_total, generator=g)[:n].sort().values


def model_fingerprint(model: nn.Module) -> str:
    h = hashlib.sha256()
    for name, t in model.state_dict().items():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _versions() -> dict:
    out = {"python": platform.python_version(), "torch": torch.__version__}
    try:
        import pyautoattack
        out["pyautoattack"] = pyautoattack.__version__
    except ImportError:
        out["pyautoattack"] = None
    return out


class _State:
    """Per-(attack, batch) results on disk: state_dir/manifest.json + state_dir/<attack>/batch_00000.json."""

    def __init__(self, state_dir: str | os.PathLike | None, manifest: dict):
        self.dir = Path(state_dir) if state_dir is not None else None
        if self.dir is None:
            return
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / "manifest.json"
        if path.exists():
            old = json.loads(path.read_text())
            diff = sorted(k for k in set(old) | set(manifest) if old.get(k) != manifest.get(k))
            if diff:
                raise ValueError(f"state_dir {self.dir} holds a different evaluation (differs in: {', '.join(diff)}); "
                                 "use a new state_dir or delete it")
        else:
            path.write_text(json.dumps(manifest, indent=1))

    def _path(self, attack: str, batch: int) -> Path:
        return self.dir / attack / f"batch_{batch:05d}.json"

    def load(self, attack: str, batch: int) -> dict | None:
        if self.dir is None or not self._path(attack, batch).exists():
            return None
        return json.loads(self._path(attack, batch).read_text())

    def save(self, attack: str, batch: int, record: dict) -> None:
        if self.dir is None:
            return
        path = self._path(attack, batch)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(record))
        tmp.replace(path)  # atomic: an interrupted write never leaves a half batch behind


CUDA_ATTACK_BATCH = 1024  # images per physical attack batch on CUDA (a multiple of the logical batch)


def default_attack_batch(device: torch.device | str, batch_size: int) -> int:
    """Images per physical attack batch: the logical ``batch_size`` on the CPU (results bit-identical to a run that
    attacks one logical block at a time), the largest multiple of it up to CUDA_ATTACK_BATCH on CUDA (at least one
    block). Results do not depend on it: random starts are drawn per logical block (``mixacm.attacks.BlockNoise``)."""
    if torch.device(device).type != "cuda":
        return batch_size
    return max(1, CUDA_ATTACK_BATCH // batch_size) * batch_size


def _attack_batch(spec: AttackSpec, model: nn.Module, x: Tensor, y: Tensor, *, eps: float, seed: int,
                  device, aa_options: dict) -> tuple[Tensor, list[str]]:
    """Adversarial inputs for one batch of points to attack, plus AutoAttack flags (if any)."""
    if spec.kind == "aa":
        from mixacm.autoattack_runner import run_autoattack
        res = run_autoattack(model, x, y, eps=eps, parts=spec.aa_parts, seed=seed, device=device,
                             batch_size=max(1, len(x)), **aa_options)
        return res.x_adv, res.flags
    g = torch.Generator().manual_seed(seed)
    return run_white_box(spec, model, x, y, eps=eps, generator=g), []


def _chunks(blocks: list[int], sizes: dict[int, int], limit: int, merge: bool) -> list[list[int]]:
    """Consecutive logical blocks grouped into physical batches of at most ``limit`` points to attack (a block is
    never split; one block per batch when not ``merge``)."""
    out: list[list[int]] = []
    for b in blocks:
        if out and merge and sum(sizes[c] for c in out[-1]) + sizes[b] <= limit:
            out[-1].append(b)
        else:
            out.append([b])
    return out


@contextlib.contextmanager
def _attack_setup(model: nn.Module, channels_last: bool):
    """Parameters frozen (attacks need input gradients only; FAB's per-class backward passes would otherwise compute
    weight gradients too) and, with ``channels_last``, NHWC weights; both restored on exit."""
    flags = [(p, p.requires_grad) for p in model.parameters()]
    convs = [m for m in model.modules() if isinstance(m, nn.Conv2d)]
    was_cl = bool(convs) and convs[0].weight.is_contiguous(memory_format=torch.channels_last) \
        and not convs[0].weight.is_contiguous()
    for p, _ in flags:
        p.requires_grad_(False)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    try:
        yield
    finally:
        for p, flag in flags:
            p.requires_grad_(flag)
        if channels_last and not was_cl:
            model.to(memory_format=torch.contiguous_format)


def evaluate(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    attacks: list[str],
    eps: float | str = 8 / 255,
    n: int | None = None,
    seed: int = 0,
    batch_size: int = 128,
    device: str | torch.device | None = None,
    progress: bool = True,
    state_dir: str | os.PathLike | None = None,
    individual: bool = True,
    aa_options: dict | None = None,
    max_iterations: int | None = None,
    attack_batch_size: int | None = None,
    channels_last: bool | None = None,
) -> dict:
    """Clean and robust accuracy of ``model`` on (x, y) under ``attacks`` (names of mixacm.attacks.ATTACKS or
    pgd-K / cw-K), l-inf radius ``eps``; a JSON-able dict (schema in the module's SCHEMA / the closing report).

    batch_size: the logical block: the unit of the attacks' seeds and of the per-batch state in ``state_dir``
    (recorded). attack_batch_size: images per physical batch of the FGSM/PGD/CW attacks, consecutive logical blocks
    merged (None: ``default_attack_batch``, the logical block on CPU, 1024 on CUDA); AutoAttack runs one logical block
    at a time (its own seeding depends on the batch). channels_last: NHWC weights and inputs during the evaluation
    (None: on CUDA only). Neither changes a result. The model's parameters are frozen during the evaluation and
    their requires_grad flags restored after.

    aa_options: extra keywords for mixacm.autoattack_runner.run_autoattack (e.g. square_queries for tests).
    max_iterations: cap on every attack's iterations (PGD/CW steps, APGD/FAB iterations, Square queries; one target
    class for APGD-T/FAB-T), recorded
    in the result's config; None = each attack's own count. For rehearsals at toy cost, never for reported numbers.
    """
    t0 = time.time()
    eps = parse_eps(eps)
    specs = [parse_attack(a) for a in attacks]
    aa_options = dict(aa_options or {})
    if max_iterations is not None:
        if max_iterations < 1:
            raise ValueError(f"max_iterations={max_iterations} must be >= 1 (or None for the attacks' own counts)")
        specs = [dataclasses.replace(s, steps=min(s.steps, max_iterations)) if s.kind in ("pgd", "cw") else s
                 for s in specs]
        aa_options.setdefault("n_iter", max_iterations)
        aa_options.setdefault("square_queries", max_iterations)
        aa_options.setdefault("n_target_classes", 1)
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"attack list has duplicates: {names}")
    if x.dim() != 4 or len(x) != len(y):
        raise ValueError(f"need x (N, C, H, W) and y (N,), got {tuple(x.shape)} and {tuple(y.shape)}")
    idx = subset_indices(len(x), n, seed)
    x, y = x[idx], y[idx].long()
    device = torch.device(device) if device is not None else next(
        (p.device for p in model.parameters()), torch.device("cpu"))

    checks: list[dict] = []
    range_check = selfcheck.check_input_range(x)
    if range_check["status"] == selfcheck.FLAG:
        raise ValueError(range_check["detail"])
    checks.append(range_check)
    checks.append(selfcheck.check_eval_mode(model))
    if attack_batch_size is not None and attack_batch_size < 1:
        raise ValueError(f"attack_batch_size={attack_batch_size} must be >= 1 (or None for the device's default)")
    physical = default_attack_batch(device, batch_size) if attack_batch_size is None else attack_batch_size
    nhwc = device.type == "cuda" if channels_last is None else bool(channels_last)
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        with _attack_setup(model, nhwc):
            result = _run(model, x, y, idx, specs, eps=eps, seed=seed, batch_size=batch_size, device=device,
                          progress=progress, state_dir=state_dir, individual=individual, aa_options=aa_options,
                          checks=checks, attack_batch_size=physical, channels_last=nhwc)
    finally:
        for m, mode in modes.items():
            m.train(mode)
    result["wall_time_s"] = time.time() - t0
    for w in result["warnings"]:
        warnings.warn(w, EvaluationWarning, stacklevel=2)
    return result


def _run(model, x, y, idx, specs, *, eps, seed, batch_size, device, progress, state_dir, individual, aa_options,
         checks, attack_batch_size, channels_last) -> dict:
    n_eval = len(x)
    starts = list(range(0, n_eval, batch_size))

    def on_device(t: Tensor) -> Tensor:
        t = t.to(device)
        return t.contiguous(memory_format=torch.channels_last) if channels_last and t.dim() == 4 else t

    # clean pass: (N,) correctness; first-batch checks of the model's outputs and gradients
    correct = torch.zeros(n_eval, dtype=torch.bool)
    with torch.no_grad():
        for s in starts:
            logits = model(on_device(x[s:s + batch_size]))
            if s == 0:
                if logits.dim() != 2 or int(y.max()) >= logits.shape[1]:
                    raise ValueError(f"model outputs shape {tuple(logits.shape)} but labels go up to {int(y.max())}: "
                                     "checkpoint and data do not match (wrong num_classes or dataset?)")
                checks.append(selfcheck.check_logits(logits.cpu()))
            correct[s:s + batch_size] = (logits.argmax(1).cpu() == y[s:s + batch_size])
    xb, yb = on_device(x[:batch_size]), y[:batch_size].to(device)
    checks.append(selfcheck.check_deterministic(model, xb))
    checks.append(selfcheck.check_expects_normalised(model, xb, yb))
    checks.append(selfcheck.check_zero_gradients(model, xb[:64], yb[:64]))

    manifest = {"schema": SCHEMA, "eps": eps, "seed": seed, "batch_size": batch_size, "individual": individual,
                "indices_sha256": hashlib.sha256(idx.numpy().tobytes()).hexdigest(),
                "labels_sha256": hashlib.sha256(y.numpy().tobytes()).hexdigest(),
                "model_sha256": model_fingerprint(model), "aa_options": aa_options}
    state = _State(state_dir, manifest)

    worst = correct.clone()
    per_attack: dict[str, dict] = {}
    aa_flags: list[str] = []
    bar = None
    if progress:
        from tqdm import tqdm
        bar = tqdm(total=len(specs) * len(starts), desc="evaluate", file=sys.stderr)
    for spec in specs:
        robust = torch.zeros(n_eval, dtype=torch.bool)
        stats, seconds, resumed = [], 0.0, 0
        slices = [slice(s, min(s + batch_size, n_eval)) for s in starts]
        records: dict[int, dict] = {}
        for b in range(len(starts)):
            record = state.load(spec.name, b)
            if record is not None:
                records[b] = record
                resumed += 1
        todo_of = {b: (worst if not individual else correct)[sl] for b, sl in enumerate(slices) if b not in records}
        sizes = {b: int(t.sum()) for b, t in todo_of.items()}  # points of each block to attack
        for chunk in _chunks(sorted(todo_of), sizes, attack_batch_size, merge=spec.kind != "aa"):
            t = time.time()
            live = [b for b in chunk if sizes[b] > 0]
            adv: dict[int, tuple[Tensor, Tensor]] = {}  # block -> (robust mask of its todo points, x_adv on CPU)
            flags: list[str] = []
            if live:
                xs = on_device(torch.cat([x[slices[b]][todo_of[b]] for b in live]))
                ys = torch.cat([y[slices[b]][todo_of[b]] for b in live]).to(device)
                if len(live) == 1:  # one logical block (always on the CPU by default; AutoAttack everywhere)
                    x_adv, flags = _attack_batch(spec, model, xs, ys, eps=eps, device=device, aa_options=aa_options,
                                                 seed=derived_seed(seed, spec.name, live[0]))
                else:  # several blocks in one physical batch: each block's random starts from its own seed
                    noise = BlockNoise([torch.Generator().manual_seed(derived_seed(seed, spec.name, b)) for b in live],
                                       [sizes[b] for b in live])
                    x_adv = run_white_box(spec, model, xs, ys, eps=eps, noise=noise)
                with torch.no_grad():
                    hit = (model(on_device(x_adv)).argmax(1) == ys).cpu()
                x_adv, at = x_adv.cpu(), 0
                for b in live:
                    adv[b] = (hit[at:at + sizes[b]], x_adv[at:at + sizes[b]])
                    at += sizes[b]
            elapsed, n_live = time.time() - t, max(1, sum(sizes[b] for b in live))
            for b in chunk:
                sl, todo = slices[b], todo_of[b]
                rob = torch.zeros(sl.stop - sl.start, dtype=torch.bool)
                batch_stats = selfcheck.adversarial_stats(x[sl][:0], x[sl][:0])
                if b in adv:
                    rob[todo] = adv[b][0]
                    batch_stats = selfcheck.adversarial_stats(x[sl][todo], adv[b][1])
                # a batch's time split over its blocks by their points (one block: its own time, as before)
                records[b] = {"robust": rob.int().tolist(), "stats": batch_stats, "flags": flags if b in adv else [],
                              "seconds": elapsed * sizes[b] / n_live if len(chunk) > 1 else elapsed}
                state.save(spec.name, b, records[b])
        for b, sl in enumerate(slices):
            record = records[b]
            robust[sl] = torch.tensor(record["robust"], dtype=torch.bool)
            stats.append(record["stats"])
            aa_flags += record["flags"]
            seconds += record["seconds"]
            if bar is not None:
                bar.update(1)
        if individual:
            robust &= correct
        worst &= robust
        merged = selfcheck.merge_adversarial_stats(stats)
        checks.append(selfcheck.check_adversarial(spec.name, merged, eps))
        per_attack[spec.name] = {"robust_accuracy": float(robust.float().mean()), "robust": int(robust.sum()),
                                 "kind": spec.kind, "steps": spec.steps, "restarts": spec.restarts,
                                 "white_box": spec.white_box, "spec": spec.to_json(), "attack_seconds": seconds,
                                 "batches_resumed": resumed, "max_linf": merged["max_linf"],
                                 "robust_mask": robust.int().tolist()}
    if bar is not None:
        bar.close()

    if not individual:
        checks.append({"name": "pgd_monotone_in_steps", "status": selfcheck.SKIPPED,
                       "detail": "cascade mode: per-attack numbers are cumulative"})
    else:
        checks.append(selfcheck.check_pgd_monotone(per_attack, n_eval))
        checks.append(selfcheck.check_gradient_masking(per_attack, n_eval))
    if any(s.kind == "aa" for s in specs):
        checks.append(selfcheck.check_autoattack_flags(aa_flags))

    return {
        "schema": SCHEMA,
        "config": {"attacks": [s.name for s in specs], "eps": eps, "eps_255": eps * 255, "n": n_eval, "seed": seed,
                   "batch_size": batch_size, "device": str(device), "individual": individual,
                   "aa_options": aa_options},
        "seed": seed,
        "n_eval": n_eval,
        "indices": idx.tolist(),
        "indices_sha256": manifest["indices_sha256"],  # = mixacm.masks.indices_sha256(indices): pairs masks
        "model_sha256": manifest["model_sha256"],
        "clean": {"accuracy": float(correct.float().mean()), "correct": int(correct.sum()),
                  "correct_mask": correct.int().tolist()},
        "attacks": per_attack,
        "worst_case": {"robust_accuracy": float(worst.float().mean()), "robust": int(worst.sum()),
                       "attacks": [s.name for s in specs], "robust_mask": worst.int().tolist()},
        "self_checks": checks,
        # how, not what: neither changes a result (random starts are drawn per logical block of batch_size)
        "runtime": {"attack_batch_size": attack_batch_size, "channels_last": channels_last,
                    "parameters_frozen": True},
        "warnings": [c["detail"] for c in checks if c["status"] == selfcheck.FLAG],
        "versions": _versions(),
    }


# ----------------------------------------------------------------------------------------------------------- CLI

def _sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _parser() -> argparse.ArgumentParser:
    from mixacm.cli_parsers import parser

    p = parser("mixacm evaluate", "Attack a checkpoint (l-inf): clean accuracy, each attack, the per-image worst "
                                  "case, self-checks.")
    p.add_argument("checkpoint", help="a .pt checkpoint of this package or a run dir (its selected checkpoint)")
    p.add_argument("--data", required=True, help="dataset name of mixacm.data (e.g. cifar10-jpeg, digits)")
    p.add_argument("--data-root", default=None, help="data directory (default: the data set's own default)")
    p.add_argument("--attacks", default="fgsm,pgd20,autoattack",
                   help=f"comma-separated: {', '.join(ATTACKS)}, pgd-K, pgdKxR, cw-K")
    p.add_argument("--eps", default="8/255", help="l-inf radius, e.g. 8/255")
    p.add_argument("--n", type=int, default=None, help="seeded subset size (default: whole test set)")
    p.add_argument("--seed", type=int, default=0, help="seed of the test subset and the attacks' starts")
    p.add_argument("--batch-size", type=int, default=128,
                   help="images per logical block (the unit of the attacks' seeds and of --state-dir)")
    p.add_argument("--attack-batch-size", type=int, default=None,
                   help="images per physical attack batch (default: the logical block on CPU, 1024 on CUDA); "
                        "results do not depend on it")
    p.add_argument("--device", default=None, help="cpu or cuda (default: where the model is)")
    p.add_argument("--state-dir", default=None, help="persist per-batch results here; a rerun resumes")
    p.add_argument("--cascade", action="store_true", help="attack only points still robust (cumulative numbers)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument("--out", default=None, help="write the full results JSON here (default: print a summary only)")
    return p


def summary_lines(res: dict) -> list[str]:
    """A readable summary of an evaluate() result: clean, each attack, the worst case, and every self-check that
    is not ok."""
    n = res["n_eval"]
    lines = [f"clean accuracy      {100 * res['clean']['accuracy']:6.2f} %  ({res['clean']['correct']}/{n})"]
    for name, a in res["attacks"].items():
        lines.append(f"{name:<19} {100 * a['robust_accuracy']:6.2f} %  ({a['robust']}/{n}, {a['attack_seconds']:.1f} s)")
    w = res["worst_case"]
    lines.append(f"{'worst case':<19} {100 * w['robust_accuracy']:6.2f} %  ({w['robust']}/{n}; per sample over "
                 f"{', '.join(w['attacks']) or 'no attack'})")
    flagged = [c for c in res.get("self_checks", []) if c.get("status") not in ("ok", "skipped")]
    lines.append("self-checks: " + ("all ok" if not flagged else
                                    "; ".join(f"{c['name']} {c['status'].upper()}: {c.get('detail', '')}"
                                              for c in flagged)))
    return lines


def main(argv: list[str] | None = None) -> int:
    from mixacm.checkpoint import CheckpointError
    from mixacm.paths import OutputPathError, portable, writable_file
    from mixacm.teachers import TeacherError

    args = _parser().parse_args(argv)

    def fail(msg: str) -> int:
        print(f"mixacm evaluate: error: {msg}", file=sys.stderr)
        return 2

    try:
        eps = parse_eps(args.eps)
        attacks = [a for a in args.attacks.split(",") if a.strip()]
        for a in attacks:
            parse_attack(a)
        if args.out:
            writable_file(args.out, "--out")  # before the (long) evaluation, so its results are never lost
        if not Path(args.checkpoint).exists():
            return fail(f"checkpoint {args.checkpoint} not found; pass a .pt file or a run directory")
        from mixacm.data import is_streamed, load_split
        from mixacm.train import load_checkpoint_model

        ckpt_file = Path(args.checkpoint)
        if ckpt_file.is_dir():  # a run dir: its selected checkpoint is what gets loaded, and hashed
            from mixacm.teachers import _resolve_run_dir
            ckpt_file = _resolve_run_dir(ckpt_file)
        ckpt_sha = _sha256_file(ckpt_file)  # before the (long) evaluation, so a bad path fails fast
        model = load_checkpoint_model(args.checkpoint)
        try:
            if is_streamed(args.data, args.data_root):  # never held whole: decode only the seeded subset
                x, y = load_split(args.data, "test", root=args.data_root, limit=args.n, seed=args.seed)
            else:
                x, y = load_split(args.data, "test", root=args.data_root)
        except FileNotFoundError as e:
            return fail(f"--data {args.data}: {str(e).splitlines()[0]}; pass --data-root")
        except ValueError as e:
            return fail(f"--data {args.data}: {e}")
        in_ch = getattr(model, "mean", None)
        if in_ch is not None and x.shape[1] != in_ch.shape[0]:
            return fail(f"--data {args.data} has {x.shape[1]}-channel images but the checkpoint's model takes "
                        f"{in_ch.shape[0]}; evaluate on the data set it was trained on")
        res = evaluate(model, x, y, attacks=attacks, eps=eps, n=args.n, seed=args.seed, batch_size=args.batch_size,
                       device=args.device, progress=not args.no_progress, state_dir=args.state_dir,
                       individual=not args.cascade, attack_batch_size=args.attack_batch_size)
    except (ValueError, CheckpointError, TeacherError, OutputPathError) as e:
        return fail(str(e).splitlines()[0])
    res["checkpoint"] = {"path": str(args.checkpoint), "file": str(ckpt_file), "sha256": ckpt_sha}
    res["data"] = {"name": args.data, "root": args.data_root, "split": "test", "n_total": len(y)}
    res["git_commit"] = git_commit()["commit"]
    res["machine"] = {**describe(), "torch_threads": torch.get_num_threads()}
    res["argv"] = list(argv) if argv is not None else sys.argv[1:]
    res = portable(res, Path(args.out).parent if args.out else None)  # no directory of this machine in the record
    print("\n".join(summary_lines(res)))
    if args.out:
        tmp = Path(str(args.out) + ".tmp")
        tmp.write_text(json.dumps(res, indent=1))
        os.replace(tmp, args.out)
        print(f"results JSON (per-sample masks included) -> {args.out}")
    for w in res["warnings"]:
        print(f"warning: {w}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
