"""Every registered model: shapes, finite outputs, learns, saves and loads exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from garment.errors import ModelFileError
from garment.models import InferenceHead, ModelCard, create_model, load_model, model_names, save_model

MODELS = model_names()


def test_registry_has_both_networks() -> None:
    assert {"classic", "default"} <= set(MODELS)


@pytest.mark.parametrize("name", MODELS)
def test_forward_shape_and_finite(name: str) -> None:
    out = create_model(name)(torch.rand(5, 1, 28, 28))
    assert out.shape == (5, 10) and torch.isfinite(out).all()


@pytest.mark.parametrize("name", MODELS)
def test_overfits_64_samples(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name)
    x, y = torch.rand(64, 1, 28, 28), torch.arange(64) % 10
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(150):
        loss = torch.nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        if loss.item() < 0.01:
            break
    assert loss.item() < 0.05
    with torch.no_grad():  # batch statistics: the 64 samples are the whole data set
        assert (model(x).argmax(1) == y).float().mean() == 1.0


@pytest.mark.parametrize("name", MODELS)
def test_save_load_gives_identical_logits(name: str, tmp_path: Path) -> None:
    model = create_model(name).eval()
    save_model(tmp_path, model, ModelCard(name, recipe={"name": "garment-fmnist", "version": 1, "params": {}}))
    loaded, card = load_model(tmp_path)
    x = torch.rand(7, 1, 28, 28)
    assert torch.equal(model(x), loaded(x))
    assert card.arch == name and len(card.classes) == 10
    assert (tmp_path / "model.json").is_file() and (tmp_path / "model.safetensors").is_file()


def test_inference_head_views_and_scores() -> None:
    model = create_model("default").eval()
    x = torch.rand(3, 1, 28, 28)
    probs, score = InferenceHead(model, ModelCard("default", other={"tta": ["identity"]}))(x)
    assert torch.allclose(probs, torch.softmax(model(x), 1))
    assert torch.allclose(score, probs.amax(1))
    probs2, energy = InferenceHead(model, ModelCard("default", other={"tta": ["identity", "hflip"],
                                                                      "score": "energy"}))(x)
    mean = (torch.softmax(model(x), 1) + torch.softmax(model(x.flip(3)), 1)) / 2
    assert torch.allclose(probs2, mean, atol=1e-6) and energy.shape == (3,)
    # Two framings of each photo: (N, 2, 28, 28); probabilities average over them too.
    x2 = torch.rand(3, 2, 28, 28)
    probs3, _ = InferenceHead(model, ModelCard("default", other={"tta": ["identity"]}))(x2)
    both = (torch.softmax(model(x2[:, :1]), 1) + torch.softmax(model(x2[:, 1:]), 1)) / 2
    assert torch.allclose(probs3, both, atol=1e-6)


def test_size_prior_lowers_the_score_of_small_products_only() -> None:
    model = create_model("default").eval()
    other = {"tta": ["identity"], "score": "energy"}
    plain = InferenceHead(model, ModelCard("default", other=other)).eval()
    prior = InferenceHead(model, ModelCard("default", other={**other, "size_prior": {"level": 32, "floor": 0.15}}))
    x = torch.zeros(2, 2, 28, 28)
    x[:, 0] = torch.rand(2, 28, 28)  # the crop view: anything
    x[0, 1, 2:26, 4:24] = 0.8  # frame view: covers 480/784 of the packshot
    x[1, 1, 12:16, 12:16] = 0.8  # frame view: a small object, 16/784
    with torch.no_grad():
        (p0, s0), (p1, s1) = plain(x), prior.eval()(x)
    assert torch.equal(p0, p1)  # the prior never changes the class probabilities
    assert torch.isclose(s1[0], s0[0])  # large enough: untouched
    want = s0[1] + torch.log(torch.tensor(16 / 784 + 1e-3) / 0.15)
    assert torch.isclose(s1[1], want, atol=1e-5)  # small: log(cover / floor) lower


def test_missing_or_bad_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="model.json"):
        load_model(tmp_path)
    (tmp_path / "model.json").write_text("{not json")
    with pytest.raises(ModelFileError, match="not a valid model card"):
        load_model(tmp_path)
    with pytest.raises(ModelFileError, match="unknown"):
        create_model("resnet9000")


def test_shipped_model_loads() -> None:
    model, card = load_model()
    assert card.arch == "default" and card.recipe["name"] == "garment-fmnist"
    assert card.metrics["fashion_mnist_test_accuracy"] >= 0.94
    assert card.other["score"] in ("energy", "msp") and "threshold" in card.other and card.other["how"]
    if card.other["score"] == "msp":
        assert 0.0 < card.other["threshold"] < 1.0
    real = card.metrics["real_photo"]  # recorded by `make model` (garment evaluate --record)
    assert real["in_scope_accuracy"] >= 0.75 and real["dataset"] == "realphotos-dev"
