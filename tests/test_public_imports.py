"""The public names keep working after the move into layer packages (#27): `vdeval.evaluate`,
`vdeval.Evaluator`, and the old module paths as deprecated aliases of the new ones."""
import importlib
import sys

import pytest

import vdeval


def test_top_level_names():
    from vdeval.api import evaluate, evaluate_set
    from vdeval.training.evaluator import Evaluator

    assert vdeval.evaluate is evaluate and vdeval.evaluate_set is evaluate_set and vdeval.Evaluator is Evaluator


@pytest.mark.parametrize("old,new", [("vdeval.training_metrics", "vdeval.training.metrics"),
                                     ("vdeval.callbacks", "vdeval.training.callbacks")])
def test_old_module_paths_are_deprecated_aliases(old, new, monkeypatch):
    monkeypatch.delitem(sys.modules, old, raising=False)
    with pytest.warns(DeprecationWarning, match=new.replace(".", r"\.")):
        module = importlib.import_module(old)
    assert module is importlib.import_module(new)
