"""The CLI: every command has help; the README's cheap commands run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from garment.cli import app
from garment.data import DEBIAN_DIR

COMMANDS = sorted(c.name or c.callback.__name__ for c in app.registered_commands)  # type: ignore[union-attr]


def test_root_help(cli) -> None:  # type: ignore[no-untyped-def]
    result = cli("--help")
    assert result.exit_code == 0 and "Fashion-MNIST" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help(cli, command: str) -> None:  # type: ignore[no-untyped-def]
    result = cli(command, "--help")
    assert result.exit_code == 0
    assert len(result.output.strip().splitlines()) > 3


def test_python_dash_m_and_clean_errors(tmp_path: Path) -> None:
    out = subprocess.run([sys.executable, "-m", "garment", "data", "--data-dir", str(tmp_path)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 1  # a runtime failure, not a usage error
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: --data-dir") and "Traceback" not in out.stderr


@pytest.mark.skipif(not DEBIAN_DIR.is_dir(), reason="Fashion-MNIST not installed in /usr/share/datasets")
def test_evaluate_shipped_model_on_fashion_mnist(tmp_path: Path) -> None:
    out = tmp_path / "r.json"
    result = subprocess.run([sys.executable, "-m", "garment", "evaluate", "--fashion-mnist", "--json", str(out)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["accuracy"] >= 0.94
    assert set(report) >= {"accuracy", "per_class", "confusion"}


# -- conventions every command shares ------------------------------------------------------

#: command -> (bad input, exit status, start of the one line on stderr). {t} is a fresh folder.
BAD_INPUT: dict[str, tuple[list[str], int, str]] = {
    "adapt": (["--catalogue", "{t}/none"], 1, "error: no catalogue in"),
    "classify": (["--model", "nope", "{t}"], 2, "error: Invalid value for --model: 'nope' is neither"),
    "data": (["--data-dir", "{t}"], 1, "error: --data-dir"),
    "dataset": (["--catalogue", "{t}/none"], 1, "error: no catalogue in"),
    "demo": (["--products", "0"], 2, "error: Invalid value for '--products'"),
    "evaluate": (["{t}/labels.csv"], 1, "error: {t}/labels.csv: no such labels file"),
    "export": (["--catalogue", "{t}/none"], 1, "error: no catalogue in"),
    "extract": (["{t}/none.html"], 1, "error: cannot read page"),
    "report": (["--catalogue", "{t}/none"], 1, "error: no catalogue in"),
    "review": (["--catalogue", "{t}/none"], 1, "error: no catalogue in"),
    "scrape": (["--site", "{t}/none.toml"], 1, "error: site profile {t}/none.toml"),
    "shop": (["--images", "{t}/none"], 1, "error: --images"),
    "train": (["--out", "{t}/model"], 1, "error: {t}/model already holds a model; pass --force"),
}


def test_every_command_has_a_bad_input_case() -> None:
    assert sorted(BAD_INPUT) == COMMANDS


@pytest.mark.parametrize("command", COMMANDS)
def test_bad_input_is_one_line_and_the_documented_status(command: str, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "model.json").write_text("{}")
    args, status, start = BAD_INPUT[command]
    result = CliRunner().invoke(app, [command, *(a.format(t=tmp_path) for a in args)])
    assert result.exit_code == status, result.output
    assert isinstance(result.exception, SystemExit | None), result.exception  # no traceback
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(start.format(t=tmp_path)), result.stderr
    assert "Traceback" not in result.output


def test_exit_statuses_are_documented_in_help(cli) -> None:  # type: ignore[no-untyped-def]
    text = " ".join(cli("-h").output.split())
    assert "0 ok; 1 runtime failure" in text and "2 usage error" in text and "130 interrupted" in text


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_takes_the_shared_options(cli, command: str) -> None:  # type: ignore[no-untyped-def]
    text = cli(command, "-h").output
    for flag in ("-h, --help", "-v, --verbose", "-q, --quiet", "--log-level"):
        assert flag in text, (command, flag)
    assert "<bool>" not in text  # a flag takes no value


def test_log_options_before_or_after_the_command(tmp_path: Path) -> None:
    import logging

    from typer.testing import CliRunner

    logger = logging.getLogger("garment")
    try:
        for args in (["-v", "data", "--data-dir", str(tmp_path)],
                     ["data", "--data-dir", str(tmp_path), "--log-level", "debug"]):
            CliRunner().invoke(app, args)
            assert logger.getEffectiveLevel() <= logging.INFO, args
        CliRunner().invoke(app, ["-v", "data", "-q", "--data-dir", str(tmp_path)])
        assert logger.level == logging.ERROR  # the command's own -q after the root's -v
        result = CliRunner().invoke(app, ["data", "--log-level", "loud"])
        assert result.exit_code == 2 and "'loud' is not one of debug" in result.stderr
    finally:
        CliRunner().invoke(app, ["data", "--data-dir", str(tmp_path)])  # no flag: back to Python's default
    assert logger.level == logging.NOTSET and not logger.handlers


def test_ctrl_c_exits_130_with_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    import garment.data

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(garment.data, "locate", interrupted)
    result = CliRunner().invoke(app, ["data", "--data-dir", str(tmp_path)])
    assert result.exit_code == 130 and result.stderr.strip() == "interrupted"


def test_model_takes_a_shipped_name_or_a_folder() -> None:
    from garment.cli import model_option
    from garment.shipped import shipped_models

    default = shipped_models()["default"]
    assert model_option("default") == default and model_option(str(default)) == default
    assert model_option("default", stored=True) == str(default)
    assert model_option("shop-1234567890", stored=True) == "shop-1234567890"  # a stored model id
    assert model_option(None) is None


def test_download_offline_is_one_line(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import socket

    from typer.testing import CliRunner

    import garment.data

    with socket.socket() as s:  # a port nobody listens on: the download is refused at once
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    monkeypatch.setattr(garment.data, "BASE_URL", f"http://127.0.0.1:{port}/")
    result = CliRunner().invoke(app, ["data", "--download", "--data-dir", str(tmp_path)])
    assert result.exit_code == 1, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"error: cannot download http://127.0.0.1:{port}/")
    assert "--data-dir" in lines[0] and not list(tmp_path.glob("*.part"))


def test_cache_follows_xdg_cache_home(tmp_path: Path) -> None:
    code = "import garment.data as d; print(d.CACHE_DIR)"
    env = {"XDG_CACHE_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "home")}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, env=env)
    assert out.stdout.strip() == str(tmp_path / "garment" / "fashion-mnist"), out.stderr


def test_package_is_typed() -> None:
    import garment

    assert (Path(garment.__file__).parent / "py.typed").is_file()


def test_classify_json_summary_and_the_shipped_model_by_name(
        tmp_path: Path, make_photo, tiny_model: Path, onnx_cache: Path) -> None:  # type: ignore[no-untyped-def]
    from typer.testing import CliRunner

    photo = make_photo(tmp_path / "p.jpg", 0)
    out = tmp_path / "rows.csv"
    result = CliRunner().invoke(app, ["classify", str(photo), "--model", str(tiny_model), "--out", str(out),
                                      "--workers", "1", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["images"] == summary["classified"] == 1 and summary["out"] == str(out)
    assert len(out.read_text().splitlines()) == 2
    result = CliRunner().invoke(app, ["classify", str(photo), "--json"])  # rows and summary would mix
    assert result.exit_code == 2 and "--out" in result.stderr
    result = CliRunner().invoke(app, ["classify", str(photo), "--model", "default", "--workers", "1", "-q"])
    assert result.exit_code == 0, result.output
    assert result.stdout.splitlines()[0].startswith("path,label")


def test_scrape_json_summary_on_stdout(tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    from shopsite import ShopSite

    shop = ShopSite().start()
    try:
        result = cli("scrape", shop.url, "--out", str(tmp_path), "--delay", "0", "--concurrency", "4",
                     "--max-products", "3", "--json")
    finally:
        shop.stop()
    assert result.exit_code == 0, result.output
    stats = json.loads(result.stdout)  # the whole of stdout: one JSON object, no table
    assert stats["catalogue"] == str(tmp_path) and stats["products"] == 3 and stats["problem"] == ""
    assert stats["images"]["ok"] == 3 and stats["pages"] >= 3
