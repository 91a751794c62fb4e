"""The README's first Keras example runs as written."""

import pathlib
import re

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- readme-example -->"


def _example():
    match = re.search(re.escape(MARKER) + r"\s*```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert match, f"README.md has no python block after {MARKER}"
    return match.group(1)


def test_the_readme_example_runs_and_matches_timm(capsys):
    namespace = {"__name__": "readme_example"}
    exec(compile(_example(), str(README), "exec"), namespace)
    assert float(abs(namespace["logits"] - namespace["timm_io"]["logits"]).max()) < 1e-6
    scores = namespace["trainer"].evaluate(namespace["images"], namespace["labels"], verbose=0, return_dict=True)
    assert {"top1_cls", "top1_dist", "top1_avg"} <= set(scores)
    assert "max |keras - timm| =" in capsys.readouterr().out
