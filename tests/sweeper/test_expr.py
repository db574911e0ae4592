"""The resource-expression parser: the documented grammar works, everything else is refused."""
import pytest

from sweeper.spec.expr import ExprError, evaluate, parse


@pytest.mark.parametrize("text, expected", [
    ("0.125 * K", 0.5),
    ("1 + 2 * 3", 7.0),
    ("(1 + 2) * 3", 9.0),
    ("-K + 10", 6.0),
    ("- -2", 2.0),
    ("8 / K / 2", 1.0),
    ("min(1, 0.25 * K)", 1.0),
    ("max(0.1, model.k / 16, 0.2)", 0.25),
    ("1e-1 * K", 0.4),
    (".5", 0.5),
])
def test_grammar_is_accepted(text, expected):
    assert evaluate(text, {"K": 4, "model.k": 4}) == pytest.approx(expected)


def test_names_are_reported():
    assert parse("0.125 * K + model.k", {"K", "model.k", "other"}).names == {"K", "model.k"}


@pytest.mark.parametrize("text, fragment", [
    ("__import__('os')", "unexpected character"),
    ("__import__(1)", "only min() and max() may be called"),
    ("open(1)", "only min() and max() may be called"),
    ("K.__class__", "unknown name 'K.__class__'"),
    ("().__class__", "unexpected"),
    ("os.system", "unknown name 'os.system'"),
    ("kk * 2", "unknown name 'kk' (did you mean 'K'?)"),
    ("2 ** 3", "unexpected '*'"),
    ("K if 1 else 2", "unexpected 'if'"),
    ("lambda: 1", "unexpected character ':'"),
    ("[1]", "unexpected character '['"),
    ("1 +", "ends too early"),
    ("(1", "ends too early"),
    ("1 / (K - 4)", "division by zero"),
    ("", "empty expression"),
    ("(" * 50 + "1" + ")" * 50, "nested deeper"),
    ("-" * 100 + "1", "nested deeper"),
    ("1" * 300, "longer than"),
])
def test_anything_else_is_rejected_with_a_clear_message(text, fragment):
    with pytest.raises(ExprError) as err:
        evaluate(text, {"K": 4})
    assert fragment in str(err.value)
    assert "\n" not in str(err.value)


def test_non_string_input_is_rejected():
    with pytest.raises(ExprError, match="expected an arithmetic expression"):
        parse(3, {"K"})


def test_a_name_without_a_numeric_value_is_an_error_at_evaluation():
    expr = parse("2 * model.swiglu", {"model.swiglu"})
    with pytest.raises(ExprError, match="no numeric value"):
        expr.evaluate({"model.swiglu": "modified"})
