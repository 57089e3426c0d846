"""docs/flags.md is what the parser and the config dataclasses say, regenerated and compared."""

from pathlib import Path

from charrnn.cli.flagdoc import flags_markdown

FLAGS_MD = Path(__file__).resolve().parents[1] / "docs" / "flags.md"


def test_flags_md_matches_the_parser():
    assert FLAGS_MD.read_text(encoding="utf-8") == flags_markdown(), "run `make docs` to regenerate docs/flags.md"


def test_every_train_flag_is_documented_with_its_dataclass_default():
    page = flags_markdown()
    assert "| `--hidden` HIDDEN | `512` |" in page and "| `--warmup-steps` WARMUP_STEPS | `300` |" in page
    assert "| `--checkpoint` CHECKPOINT | `best` |" in page
