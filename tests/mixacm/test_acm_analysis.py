"""ACM analysis (Supp. A.2, Fig. 4): sorted profiles, distance to the teacher, the plot renders from JSON only."""
from __future__ import annotations

import json
import xml.etree.ElementTree as ET

import pytest
import torch
from torch import nn

from mixacm.acm_analysis import SCHEMA, acm_profiles, profile_distance, render_acm_plot


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


class Tiny(nn.Module):
    """Three conv blocks honouring the models contract (forward_intermediates, feature_info)."""

    def __init__(self, ch=(4, 6, 8), seed=0, scale=1.0):
        super().__init__()
        torch.manual_seed(seed)
        cin, layers = 3, []
        for c in ch:
            layers.append(nn.Conv2d(cin, c, 3, padding=1))
            cin = c
        self.convs = nn.ModuleList(layers)
        self.fc = nn.Linear(cin, 10)
        self.scale = scale
        self.feature_info = [dict(num_chs=c, reduction=1, module=f"convs.{i}") for i, c in enumerate(ch)]

    def forward_intermediates(self, x):
        feats, h = [], x
        for conv in self.convs:
            h = torch.relu(conv(h))
            feats.append(self.scale * h)
        return self.fc(h.mean((2, 3))), feats

    def forward(self, x):
        return self.forward_intermediates(x)[0]


def test_profiles_sorted_distances_and_invariances():
    x = torch.rand(40, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    models = {"teacher": Tiny(), "scaled": Tiny(scale=7.0), "other": Tiny(seed=5), "narrow": Tiny(ch=(2, 3, 4))}
    models["teacher"].train()
    data = acm_profiles(models, x, n=32, teacher="teacher", batch_size=10)
    data = json.loads(json.dumps(data))  # JSON-able
    assert data["schema"] == SCHEMA and data["n_images"] == 32
    assert models["teacher"].training, "the caller's train/eval mode must be restored"
    for name, m in data["models"].items():
        assert [b["channels"] for b in m["blocks"]] == [f["num_chs"] for f in models[name].feature_info]
        for b in m["blocks"]:
            assert len(b["profile"]) == b["channels"] and b["profile"] == sorted(b["profile"])
            assert all(0 <= f <= 1 for f in b["frequency"])
    d = data["distances"]
    assert "teacher" not in d
    # per-image L2 normalisation: a model whose features are the teacher's times 7 has the same profile
    assert d["scaled"]["mean"] == pytest.approx(0, abs=1e-6)  # float32 features
    assert d["other"]["mean"] > 1e-3 and d["narrow"]["mean"] > 1e-3
    assert set(d["narrow"]["per_block"]) == {"1", "2", "3"}


def test_profile_distance_properties():
    p = [0.1, 0.2, 0.4, 0.8]
    assert profile_distance(p, p) == 0
    assert profile_distance(p, [2 * v for v in p]) == pytest.approx(0, abs=1e-12)  # max-normalised
    assert profile_distance(p, [0.1, 0.3, 0.5, 0.7, 0.9, 1.0]) > 0  # different lengths are resampled
    assert profile_distance(p, [0.8, 0.8, 0.8, 0.8]) == pytest.approx(profile_distance([0.8] * 4, p))


def test_plot_renders_from_json_only(tmp_path):
    x = torch.rand(16, 3, 8, 8, generator=torch.Generator().manual_seed(1))
    data = acm_profiles({"natural": Tiny(seed=2), "teacher": Tiny(), "mixacm": Tiny(seed=3)}, x, n=None)
    src = tmp_path / "acm.json"
    src.write_text(json.dumps(data))
    out = render_acm_plot(json.loads(src.read_text()), tmp_path / "fig4.svg")
    root = ET.parse(out).getroot()  # well-formed XML
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}polyline")) == 3 * 3  # models x blocks
    text = out.read_text()
    assert "distance to teacher" in text and "block 3" in text
    freq = render_acm_plot(data, tmp_path / "freq.svg", view="frequency")
    assert len(ET.parse(freq).getroot().findall(f"{ns}polyline")) == 9
    with pytest.raises(ValueError, match="schema"):
        render_acm_plot({"models": {}}, tmp_path / "bad.svg")


def test_unknown_teacher_is_rejected():
    with pytest.raises(ValueError, match="teacher 'robust'"):
        acm_profiles({"a": Tiny()}, torch.rand(4, 3, 8, 8), teacher="robust")


def test_works_with_package_model():
    models = pytest.importorskip("mixacm.models")
    m = models.build_model("smallcnn", width=4)
    data = acm_profiles({"teacher": m, "student": models.build_model("smallcnn", width=2)},
                        torch.rand(8, 3, 8, 8), n=None)
    assert [b["channels"] for b in data["models"]["teacher"]["blocks"]] == [f["num_chs"] for f in m.feature_info]
    assert data["distances"]["student"]["mean"] >= 0
