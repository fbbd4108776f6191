"""Conditioning images from a sidecar or a folder (prompts.source: images)."""
import json

import numpy as np
import pytest
from PIL import Image

from vdeval.errors import VdevalError
from vdeval.video.conditioning import read_conditioning


def _png(path, value):
    Image.fromarray(np.full((8, 10, 3), value, np.uint8)).save(path)


def test_csv_json_and_folder(tmp_path):
    (tmp_path / "img").mkdir()
    _png(tmp_path / "img" / "a_red-ball.png", 10)
    _png(tmp_path / "img" / "b.png", 20)
    (tmp_path / "c.csv").write_text('image,prompt\nimg/b.png,"a cat, sleeping"\nimg/a_red-ball.png,\n')
    rows = read_conditioning(tmp_path / "c.csv")
    assert [r[0] for r in rows] == ["a cat, sleeping", ""] and rows[0][1].shape == (8, 10, 3)
    assert rows[0][1][0, 0, 0] == 20 and rows[1][1].dtype == np.uint8
    (tmp_path / "c.json").write_text(json.dumps([{"image": "img/a_red-ball.png", "prompt": "x"}]))
    assert read_conditioning(tmp_path / "c.json")[0][0] == "x"
    assert [r[0] for r in read_conditioning(tmp_path / "img")] == ["a red ball", "b"]  # name order, stems
    (tmp_path / "img" / "prompts.json").write_text(json.dumps([{"image": "b.png", "prompt": "only b"}]))
    assert [r[0] for r in read_conditioning(tmp_path / "img")] == ["only b"]


@pytest.mark.parametrize("content,needle", [
    ("image,prompt\nmissing.png,x\n", "row 1: image"),
    ("file,text\na.png,x\n", "must name the columns image and prompt"),
    ("image,prompt\n", "lists no images"),
])
def test_bad_sidecars_name_file_and_row(tmp_path, content, needle):
    (tmp_path / "s.csv").write_text(content)
    with pytest.raises(VdevalError, match=needle) as e:
        read_conditioning(tmp_path / "s.csv")
    assert "s.csv" in str(e.value)


def test_unreadable_image_and_empty_folder(tmp_path):
    (tmp_path / "bad.png").write_bytes(b"not a png")
    (tmp_path / "s.csv").write_text("image,prompt\nbad.png,x\n")
    with pytest.raises(VdevalError, match="cannot read image"):
        read_conditioning(tmp_path / "s.csv")
    (tmp_path / "empty").mkdir()
    with pytest.raises(VdevalError, match="no PNG"):
        read_conditioning(tmp_path / "empty")
