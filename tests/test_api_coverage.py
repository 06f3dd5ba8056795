"""bench/api_coverage.py: the committed torch name lists, the per-namespace count against fastnn's namespaces, and
the README table it generates (which must match what the script prints now, so it cannot go stale)."""
import importlib.util
import json
import pathlib

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "bench" / "api_coverage.py"
pytestmark = pytest.mark.skipif(not SCRIPT.is_file(), reason="bench/ is not in this checkout")


@pytest.fixture(scope="module")
def api():
    spec = importlib.util.spec_from_file_location("api_coverage", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def document(api):
    return json.loads(api.NAMES_FILE.read_text())


def test_name_lists_are_torchs_public_names_per_rule(api, document):
    assert document["torch_version"].startswith("2.13")
    assert list(document["names"]) == list(api.NAMESPACES) == list(document["rules"])
    for namespace, names in document["names"].items():
        assert names == sorted(set(names)) and names, namespace
        assert not any(name.startswith("_") for name in names), namespace
    names = document["names"]
    # facts about torch 2.13 the rules must keep: present, and filtered out
    assert {"add_", "view", "requires_grad", "grad", "shape"} <= set(names["Tensor"])
    assert {"einsum", "manual_seed", "no_grad"} <= set(names["torch"])
    assert not any(name.startswith(api.BACKEND_PREFIXES) for name in names["torch"])
    assert "Tensor" not in names["torch"] and "float32" not in names["torch"]  # a class, a dtype
    assert {"Conv2d", "Module", "Sequential"} <= set(names["torch.nn"]) and "Parameter" not in names["torch.nn"]
    assert "conv2d" in names["torch.nn.functional"]
    assert not set(names["torch.nn.functional"]) & (api.FUNCTIONAL_HELPERS | {"Callable", "Optional", "math"})
    assert "Optimizer" in names["torch.optim"] and "lr_scheduler" not in names["torch.optim"]
    assert "StepLR" in names["torch.optim.lr_scheduler"] and "DataLoader" in names["torch.utils.data"]


def test_coverage_splits_each_list_into_present_and_missing(api):
    rows = api.coverage({"names": {"torch.optim": ["Adadelta", "NotAnOptimizer", "SGD"],
                                   "Tensor": ["requires_grad", "grad", "no_such_method"]}})
    assert rows == [("torch.optim", 3, ["Adadelta", "SGD"], ["NotAnOptimizer"]),
                    # attributes set on an instance count, not only those of the class
                    ("Tensor", 3, ["requires_grad", "grad"], ["no_such_method"])]
    text = api.table(rows, "x")
    assert "| `torch.optim` | 3 | 2 | 67% |" in text and "| all | 6 | 4 | 67% |" in text


def test_readme_table_is_the_scripts_output(api, document):
    expected = api.table(api.coverage(document), document["torch_version"])
    assert api.readme_table(api.README.read_text()) == expected, \
        "README's coverage table is stale: run `python bench/api_coverage.py --readme`"


def test_update_readme_rewrites_only_the_marked_block(api, tmp_path):
    start, end = api.README_MARKERS
    path = tmp_path / "README.md"
    path.write_text(f"# x\n\nbefore\n{start}\nold table\n{end}\nafter\n")
    api.update_readme("| new |", path)
    assert path.read_text() == f"# x\n\nbefore\n{start}\n| new |\n{end}\nafter\n"
    path.write_text("no markers\n")
    with pytest.raises(ValueError, match="api-coverage"):
        api.update_readme("| new |", path)


@pytest.mark.slow
def test_generate_reproduces_the_committed_lists(api, document, tmp_path):
    torch = pytest.importorskip("torch")
    if torch.__version__ != document["torch_version"]:
        pytest.skip(f"lists were taken from torch {document['torch_version']}, installed is {torch.__version__}")
    assert api.generate(tmp_path / "names.json") == document
