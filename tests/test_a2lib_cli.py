"""``python -m a2lib``: train, evaluate, and the clear errors."""
import subprocess
import sys

import yaml

from a2lib.cli import main


def test_train_then_evaluate(synthetic_root, tmp_path, capsys):
    config = tmp_path / "tiny.yaml"
    config.write_text(yaml.safe_dump({"model": "resnet32", "batch_size": 100, "learning_rate": 0.05, "epochs": 5,
                                      "steps": [3], "data": {"n_val": 100}}))
    out = tmp_path / "run"
    assert main(["train", str(config), "--data", str(synthetic_root), "--epochs", "1", "--out", str(out), "--quiet"]) == 0
    printed = capsys.readouterr().out
    assert "airplane" in printed and "overall" in printed and (out / "best.pt").exists()
    assert main(["evaluate", str(out / "best.pt"), "--data", str(synthetic_root)]) == 0
    table = capsys.readouterr().out
    assert "200" in table.splitlines()[-1]  # the overall row counts all 200 test images


def test_config_without_kit_model_is_refused(tmp_path, capsys):
    config = tmp_path / "student.yaml"
    config.write_text("batch_size: 10\n")
    assert main(["train", str(config)]) == 2
    assert "notebook" in capsys.readouterr().err


def test_missing_data_exits_with_message(tmp_path):
    config = tmp_path / "c.yaml"
    config.write_text("model: resnet32\n")
    proc = subprocess.run([sys.executable, "-m", "a2lib", "train", str(config), "--data", str(tmp_path / "none")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1
    assert "CIFAR-10 was not found" in proc.stderr and "Traceback" not in proc.stderr
