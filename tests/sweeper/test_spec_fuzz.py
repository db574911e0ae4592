"""Property: whatever a sweep file holds, load_spec returns a SweepSpec or raises UserError (one line).

The vocabulary covers W&B's keys and distributions, integers past Python's 4,300-digit limit, ranges too
long to list, and anchors/aliases (the alias bomb of the security review): each of these once gave a
traceback or exhausted memory, and these strategies would have found them."""
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers.fuzz import KEYS, documents, dump, grid_ranges, specish
from sweeper.errors import UserError
from sweeper.spec import SweepSpec, load_spec

FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def check(text: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "fuzz.yaml"
        path.write_bytes(text.encode("utf-8", "surrogatepass"))  # lone surrogates -> invalid UTF-8
        try:
            assert isinstance(load_spec(path), SweepSpec)
        except UserError as e:
            assert "\n" not in str(e) and str(e).startswith(str(path))


@FUZZ
@given(documents)
def test_arbitrary_documents_only_raise_user_error(doc):
    check(dump(doc))


@FUZZ
@given(specish)
def test_near_miss_specs_only_raise_user_error(doc):
    check(dump(doc))


@FUZZ
@given(grid_ranges)
def test_huge_ranges_are_counted_not_listed(doc):
    check(dump(doc))


@FUZZ
@given(documents, st.sampled_from(KEYS), st.sampled_from(KEYS))
def test_anchors_and_aliases_are_refused_in_one_line(doc, a, b):
    shared = [doc, doc]  # one object reached twice: the YAML dumper writes an anchor and an alias
    text = dump({a: shared, b: {"parameters": shared}, "x": shared})
    assert "&id" in text
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "alias.yaml"
        path.write_text(text)
        try:
            load_spec(path)
        except UserError as e:
            assert "anchors and aliases" in str(e) and "\n" not in str(e)
        else:
            raise AssertionError("an alias was accepted")


@FUZZ
@given(st.text(alphabet=st.sampled_from(list("abk:-[]{},'\"!&*#|>%@`\n\t .0123456789()")) | st.characters(), max_size=200))
def test_random_text_only_raises_user_error(text):
    check(text)
