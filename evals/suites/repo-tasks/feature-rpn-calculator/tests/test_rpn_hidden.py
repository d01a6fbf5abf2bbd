import pytest

from rpn import RPNError, evaluate


@pytest.mark.parametrize(
    "expr, value",
    [
        ("3 4 +", 7),
        ("3 4 + 2 *", 14),
        ("5 1 2 + 4 * + 3 -", 14),
        ("2 3 ^", 8),
        ("7 2 /", 3.5),
        ("6 3 /", 2),
        ("-3 4 *", -12),
        ("1.5 2 *", 3),
        ("42", 42),
    ],
)
def test_values(expr, value):
    result = evaluate(expr)
    assert result == value
    assert type(result) is type(value)


@pytest.mark.parametrize("expr", ["", "   ", "1 +", "1 2", "1 2 x", "4 0 /", "+"])
def test_errors(expr):
    with pytest.raises(RPNError):
        evaluate(expr)
