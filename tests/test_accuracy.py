"""Accuracy: datasets in their official layouts, mIoU equal to cityscapesscripts', both eval_at
protocols, the prediction export, and one-line errors for bad data."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from _fixtures import (CS_TRAIN_TO_ID, make_camvid, make_cityscapes,
                                oracle_checkpoint)
from benchbench.accuracy.datasets import IGNORE, Cityscapes, cityscapes_label_space
from benchbench.accuracy.evaluate import preprocess_image, resize_label
from benchbench.accuracy.metrics import ConfusionMatrix, scores_from_matrix
from benchbench.cli import main
from benchbench.zoo._preprocess import PTSEMSEG_CITYSCAPES


@pytest.fixture
def cityscapes(tmp_path):
    return make_cityscapes(tmp_path / "cityscapes")


@pytest.fixture
def oracle(tmp_path):
    return str(oracle_checkpoint(tmp_path / "oracle.pth"))


def eval_json(capsys, argv):
    code = main(["eval"] + argv + ["--json", "--no-progress"])
    captured = capsys.readouterr()
    return code, (json.loads(captured.out) if code == 0 else None), captured.err


def test_label_space_comes_from_cityscapesscripts():
    space = cityscapes_label_space()
    assert space.num_classes == 19
    assert space.class_names[:3] == ("road", "sidewalk", "building")
    assert space.class_names[-1] == "bicycle"
    assert list(space.train_to_raw) == CS_TRAIN_TO_ID
    assert space.lut[7] == 0 and space.lut[33] == 18
    assert space.lut[0] == IGNORE and space.lut[9] == IGNORE      # unlabeled, parking: ignored
    assert space.lut[34] == -1                                      # not a Cityscapes id


def test_confusion_matrix_and_miou_of_a_known_prediction():
    target = torch.tensor([[0, 0, 1, 1], [2, 2, IGNORE, IGNORE]])
    pred = torch.tensor([[0, 1, 1, 1], [2, 0, 3, 0]])
    cm = ConfusionMatrix(4)
    cm.update(target, pred)
    assert cm.matrix.tolist() == [[1, 1, 0, 0], [0, 2, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]]
    s = cm.scores()
    # class 0: tp 1, fn 1, fp 1 -> 1/3; class 1: tp 2, fp 1 -> 2/3; class 2: tp 1, fn 1 -> 1/2;
    # class 3: predicted only on an ignored pixel, no ground truth -> left out of the mean
    assert s.iou == (1 / 3, 2 / 3, 1 / 2, None)
    assert s.miou == (1 / 3 + 2 / 3 + 1 / 2) / 3
    assert s.pixel_acc == 4 / 6 and s.n_pixels == 6


def test_ptsemseg_preprocessing_of_a_known_pixel():
    img = Image.fromarray(np.full((32, 64, 3), (10, 20, 30), dtype=np.uint8))
    x = preprocess_image(img, (32, 64), PTSEMSEG_CITYSCAPES)
    # RGB -> BGR, then mean (0.406, 0.456, 0.485) * 255 and std (0.225, 0.224, 0.229) * 255
    expected = [(30 - 0.406 * 255) / (0.225 * 255), (20 - 0.456 * 255) / (0.224 * 255),
                (10 - 0.485 * 255) / (0.229 * 255)]
    assert x.shape == (3, 32, 64) and x.dtype == torch.float32
    assert x[:, 5, 7].tolist() == pytest.approx(expected, abs=1e-6)
    assert preprocess_image(img, (16, 32), PTSEMSEG_CITYSCAPES).shape == (3, 16, 32)


def test_label_nearest_resize_is_pil_nearest():
    label = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert resize_label(label, (2, 2)).tolist() == [[5, 7], [13, 15]]   # PIL samples centres


def test_cityscapes_eval_at_full_size_is_exact_with_the_oracle(capsys, cityscapes, oracle):
    code, out, _ = eval_json(capsys, ["color_oracle", "--data", str(cityscapes),
                                      "--weights", oracle])
    assert code == 0
    assert out["miou"] == 100.0 and out["pixel_acc"] == 100.0
    assert out["n_images"] == 4 and out["size"] == [128, 256] and out["eval_at"] == "full"
    assert out["n_pixels"] == 4 * (128 * 256 - 32 * 32)              # one ignored block each
    assert out["protocol"]["preprocess"]["name"] == "imagenet_rgb"
    present = [k for k, v in out["iou_per_class"].items() if v is not None]
    assert all(out["iou_per_class"][k] == 100.0 for k in present)
    assert "road" in out["iou_per_class"]


def test_eval_at_input_compares_at_the_input_size(capsys, cityscapes, oracle):
    base = ["color_oracle", "--data", str(cityscapes), "--weights", oracle, "--size", "64x128"]
    code, at_input, _ = eval_json(capsys, base + ["--eval-at", "input"])
    assert code == 0 and at_input["eval_at"] == "input"
    assert at_input["n_pixels"] == 4 * (64 * 128 - 16 * 16)          # labels resized to 64x128
    code, at_full, _ = eval_json(capsys, base + ["--eval-at", "full"])
    assert at_full["n_pixels"] == 4 * (128 * 256 - 32 * 32)
    assert 80 < at_full["miou"] < 100 and 80 < at_input["miou"] <= 100


def test_miou_equals_cityscapesscripts_on_the_exported_predictions(capsys, tmp_path, cityscapes,
                                                                   oracle):
    from cityscapesscripts.evaluation import evalPixelLevelSemanticLabeling as cs_eval

    pred_dir = tmp_path / "pred"
    code, out, _ = eval_json(capsys, ["color_oracle", "--data", str(cityscapes), "--weights",
                                      oracle, "--size", "64x128", "--save-predictions",
                                      str(pred_dir)])
    assert code == 0 and out["miou"] < 100                          # upsampling errs on edges
    gts = sorted((cityscapes / "gtFine" / "val").glob("*/*_gtFine_labelIds.png"))
    preds = []
    for gt in gts:
        city, seq, frame = gt.name.split("_")[:3]
        found = sorted(pred_dir.rglob(f"{city}_{seq}_{frame}*.png"))
        assert len(found) == 1
        pred = Image.open(found[0])
        assert pred.size == Image.open(gt).size and pred.mode == "L"
        assert set(np.unique(np.asarray(pred))) <= set(CS_TRAIN_TO_ID)   # label ids
        preds.append(str(found[0]))
    args = cs_eval.args
    args.evalInstLevelScore, args.JSONOutput, args.quiet = False, False, True
    ref = cs_eval.evaluateImgLists(preds, [str(g) for g in gts], args)
    ours = scores_from_matrix(np.array(out["confusion"]))
    names = list(out["iou_per_class"])
    for name, iou in zip(names, ours.iou):
        theirs = ref["classScores"][name]
        assert (iou is None and np.isnan(theirs)) or iou == theirs
    assert ours.miou == ref["averageScoreClasses"]                  # the same float
    assert out["miou"] == pytest.approx(100 * ref["averageScoreClasses"], rel=1e-12)
    conf = np.array(ref["confMatrix"])
    assert (conf[np.ix_(CS_TRAIN_TO_ID, CS_TRAIN_TO_ID)] == np.array(out["confusion"])).all()


def test_multi_scale_and_flip_are_marked(capsys, cityscapes, oracle):
    code, out, _ = eval_json(capsys, ["color_oracle", "--data", str(cityscapes), "--weights",
                                      oracle, "--scales", "0.5,1", "--flip", "--limit", "2"])
    assert code == 0 and out["multi_scale"] is True and out["n_images"] == 2
    assert out["protocol"]["scales"] == [0.5, 1.0] and out["protocol"]["flip"] is True
    assert out["miou"] > 90


def test_camvid_segnet_layout(capsys, tmp_path):
    root = make_camvid(tmp_path / "camvid")
    ckpt = oracle_checkpoint(tmp_path / "oracle11.pth", num_classes=11)
    pred_dir = tmp_path / "pred"
    code, out, _ = eval_json(capsys, ["color_oracle", "--dataset", "camvid", "--data", str(root),
                                      "--weights", str(ckpt), "--save-predictions",
                                      str(pred_dir)])
    assert code == 0 and out["miou"] == 100.0 and out["n_images"] == 3
    assert list(out["iou_per_class"])[:2] == ["sky", "building"] and len(out["iou_per_class"]) == 11
    assert out["n_pixels"] == 3 * (96 * 128 - 32 * 32)              # 11 = void never counts
    saved = np.asarray(Image.open(pred_dir / "0001TP_000000.png"))
    annot = np.asarray(Image.open(root / "valannot" / "0001TP_000000.png"))
    assert ((saved == annot) | (annot == 11)).all()                   # class indices


def test_cityscapes_root_defaults_to_the_environment(capsys, monkeypatch, cityscapes, oracle):
    monkeypatch.setenv("CITYSCAPES_DATASET", str(cityscapes))
    code, out, _ = eval_json(capsys, ["color_oracle", "--weights", oracle, "--limit", "1"])
    assert code == 0 and out["protocol"]["root"] == str(cityscapes) and out["n_images"] == 1


def _one_error_line(capsys, argv):
    code = main(["eval"] + argv + ["--no-progress"])
    err = capsys.readouterr().err.strip().splitlines()
    err = [line for line in err if not line.startswith("bench: warning")]
    assert code == 2 and len(err) == 1 and "Traceback" not in err[0], err
    return err[0]


def test_bad_datasets_are_one_line_naming_the_path(capsys, tmp_path, monkeypatch):
    monkeypatch.delenv("CITYSCAPES_DATASET", raising=False)
    assert "CITYSCAPES_DATASET" in _one_error_line(capsys, ["fassd_net_l2"])
    missing = tmp_path / "nowhere"
    assert str(missing) in _one_error_line(capsys, ["fassd_net_l2", "--data", str(missing)])
    root = make_cityscapes(tmp_path / "cs", per_city=1)
    line = _one_error_line(capsys, ["fassd_net_l2", "--data", str(root), "--split", "test"])
    assert "leftImg8bit/test" in line
    # an image without its label
    gt = next((root / "gtFine" / "val").glob("*/*_labelIds.png"))
    gt.rename(gt.with_name("moved.png"))
    line = _one_error_line(capsys, ["fassd_net_l2", "--data", str(root)])
    assert "no label file" in line and gt.name in line
    gt.with_name("moved.png").rename(gt)
    # a label with values outside Cityscapes' ids
    good = gt.read_bytes()
    Image.fromarray(np.full((128, 256), 200, dtype=np.uint8)).save(gt)
    line = _one_error_line(capsys, ["fassd_net_l2", "--data", str(root)])
    assert str(gt) in line and "200" in line and "label ids" in line
    gt.write_bytes(good)
    # a corrupt image
    img = next((root / "leftImg8bit" / "val").glob("*/*.png"))
    img.write_bytes(b"not a png")
    line = _one_error_line(capsys, ["fassd_net_l2", "--data", str(root), "--size", "128x256"])
    assert str(img) in line and "cannot read image" in line


def test_eval_rejects_bad_sizes_and_backends(capsys, cityscapes):
    line = _one_error_line(capsys, ["fassd_net_l2", "--data", str(cityscapes), "--size", "100x200"])
    assert "100x200 is not a multiple of 16" in line
    line = _one_error_line(capsys, ["fassd_net_l2", "--data", str(cityscapes), "--precision", "fp16",
                                    "--device", "cpu"])
    assert "fp16" in line
    line = _one_error_line(capsys, ["fassd_net_l2", "--data", str(cityscapes), "--limit", "0"])
    assert "--limit" in line


def test_dataset_lists_the_official_layout(cityscapes):
    ds = Cityscapes(cityscapes, "val")
    assert [s.group for s in ds.samples] == ["aachen", "aachen", "bremen", "bremen"]
    assert ds.samples[0].label.name == "aachen_000000_000019_gtFine_labelIds.png"
