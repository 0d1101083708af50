"""Every bad input a user was seen to make ends in one line on stderr naming the fix, exit status 2, and nothing
lost or written: one table, run through the `mixacm` console entry point exactly as a user calls it."""
from __future__ import annotations

import pytest
import torch

from mixacm_suite.cli import main

CFG = ('method = "natural"\nmodel = "smallcnn"\ndataset = "digits"\naugment = "none"\ndata_fraction = 0.25\n'
       'batch_size = 32\nepochs = 1\nmax_steps_per_epoch = 2\nval_n = 20\nprogress = false\n')


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A config, a trained digits teacher, an RGB teacher, an ImageFolder of mixed sizes, a plain file."""
    import numpy as np
    from PIL import Image

    from mixacm.checkpoint import FORMAT, save_checkpoint
    from mixacm.models import build_model

    torch.set_num_threads(1)
    d = tmp_path_factory.mktemp("bad")
    (d / "c.toml").write_text(CFG)
    assert main(["train", str(d / "c.toml"), "--run-dir", str(d / "teacher")]) == 0
    m = build_model("smallcnn", num_classes=10, in_channels=3)
    save_checkpoint({"format": FORMAT, "model": "smallcnn", "num_classes": 10, "in_channels": 3,
                     "feature_point": "pre", "model_state": m.state_dict(), "config": {}}, d / "rgb.pt")
    for cls, side in (("a", 8), ("b", 9)):
        (d / "mixed" / "train" / cls).mkdir(parents=True)
        Image.fromarray(np.zeros((side, side, 3), np.uint8)).save(d / "mixed" / "train" / cls / "1.png")
    (d / "afile").write_text("not a directory")
    (d / "empty").mkdir()
    return d


CASES = [
    # (id, argv with {d} for the fixture dir, what the one line must say, a path that must not appear)
    ("train eps of 8", "train {d}/c.toml --set eps=8 --run-dir {d}/r", "did you mean 8/255?", "{d}/r"),
    ("train unknown key", "train {d}/c.toml --set lrr=0.1 --run-dir {d}/r", "unknown config key 'lrr'", "{d}/r"),
    ("train blocks out of range", "train {d}/c.toml --set method=mixacm --set teacher={d}/teacher --set blocks=[7] "
     "--run-dir {d}/r", "feature blocks 1..4", "{d}/r"),
    ("train unknown dataset", "train {d}/c.toml --set dataset=digitz --run-dir {d}/r", "unknown dataset 'digitz'",
     "{d}/r"),
    ("train run dir is a file", "train {d}/c.toml --run-dir {d}/afile", "is a file", None),
    ("train mixed image sizes", "train {d}/c.toml --set dataset=imagefolder:{d}/mixed --run-dir {d}/r",
     "equal-sized images", None),
    ("train teacher channels", "train {d}/c.toml --set method=mixacm --set teacher={d}/rgb.pt --run-dir {d}/r",
     "3-channel images but dataset 'digits' has 1", None),
    ("train missing teacher", "train {d}/c.toml --set method=mixacm --set teacher={d}/nope.pt --run-dir {d}/r",
     "neither an existing path", None),
    ("train missing config", "train {d}/nope.toml", "not found", None),
    ("train resume without checkpoint", "train {d}/c.toml --run-dir {d}/empty --resume", "no checkpoint", None),
    ("train resume finished run", "train {d}/c.toml --run-dir {d}/teacher --resume", "--extend", None),
    ("evaluate empty run dir", "evaluate {d}/empty --data digits", "holds no best.pt/last.pt", None),
    ("evaluate unknown data", "evaluate {d}/teacher --data digitz --attacks fgsm", "unknown dataset 'digitz'", None),
    ("evaluate out under a file", "evaluate {d}/teacher --data digits --attacks fgsm --out {d}/afile/e.json",
     "is a file", None),
    ("evaluate channels", "evaluate {d}/rgb.pt --data digits --attacks fgsm", "1-channel images", None),
    ("evaluate unknown attack", "evaluate {d}/teacher --data digits --attacks pgdd", "unknown attack", None),
    ("report nothing found", "report --results {d}/empty --out {d}/rep.html", "no results", "{d}/rep.html"),
    ("report no inputs", "report --out {d}/rep.html", "no --results given", "{d}/rep.html"),
    ("theory out under a file", "theory --quick --out {d}/afile/t", "not writable", None),
]


@pytest.mark.parametrize("argv,says,absent", [pytest.param(a, s, x, id=i) for i, a, s, x in CASES])
def test_bad_input_is_one_line_and_exit_2(world, capsys, argv, says, absent):
    capsys.readouterr()
    code = main(argv.format(d=world).split())
    err = capsys.readouterr().err
    assert code == 2, err
    assert says in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    if absent:
        from pathlib import Path
        assert not Path(absent.format(d=world)).exists()


def test_a_collapsed_or_dwarfed_run_warns_in_the_log_and_the_summary(world, capsys):
    import json

    run = world / "dwarfed"
    assert main(["train", str(world / "c.toml"), "--set", "method=mixacm", "--set", f"teacher={world}/teacher",
                 "--set", "alpha_acm=1e12", "--run-dir", str(run)]) == 0
    err = capsys.readouterr().err
    warnings = json.loads((run / "summary.json").read_text())["warnings"]
    assert any("'acm'" in w and "dwarfs" in w for w in warnings), warnings
    assert all(f"warning ({run}): {w}" in err for w in warnings)  # a plan trains many runs: each names its own


def test_version_and_help_with_defaults(capsys):
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("mixacm 0.")
    for cmd in ("train", "evaluate", "report"):
        with pytest.raises(SystemExit) as e:
            main([cmd, "--help"])
        assert e.value.code == 0
        out = capsys.readouterr().out
        assert "(default:" in out, f"mixacm {cmd} --help shows no defaults"


@pytest.mark.parametrize("cmd", ["train", "evaluate", "report", "demo", "theory"])
def test_help_reads_cleanly(cmd, capsys):
    """Each default once, none for required or unset options, every option explained, no RST markup, the prog
    name a user typed; `mixacm help CMD` says the same."""
    import re

    outs = []
    for argv in ([cmd, "--help"], ["help", cmd]):
        with pytest.raises(SystemExit) as e:
            main(argv)
        assert e.value.code == 0
        outs.append(capsys.readouterr().out)
    out = outs[0]
    assert outs[0] == outs[1]
    assert out.startswith(f"usage: mixacm {cmd} ")
    assert "(default: None)" not in out and "`" not in out
    assert not re.search(r"\(default: [^)]*\)\s*\(default:", out), out
    lines = out.splitlines()
    for i, line in enumerate(lines):  # every option has help: on its line after two spaces, or on the next line
        if re.match(r"^  -", line) and not line.strip().startswith("-h,"):
            same = re.search(r"\S  +\S", line.strip())
            nxt = lines[i + 1] if i + 1 < len(lines) else ""
            assert same or re.match(r"^ {10,}\S", nxt), f"mixacm {cmd}: no help for {line.strip()!r}"
    if cmd == "demo":
        assert "minute" in out and "--quick" in out


def test_plain_help_and_train_help_without_torch(capsys):
    import subprocess
    import sys

    assert main(["help"]) == 0 and "commands:" in capsys.readouterr().out
    code = ("import sys\nfrom mixacm_suite.cli import main\ntry:\n    main(['train', '--help'])\nexcept SystemExit:\n    pass\n"
            "assert 'torch' not in sys.modules, 'mixacm train --help imported torch'\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-2000:]
