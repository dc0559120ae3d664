"""The success-expression evaluator: what it allows, what it refuses, and that it never evals."""

from __future__ import annotations

import pytest

from runner._expr import ExpressionError, compile_expression


@pytest.mark.parametrize(
    "text, result, expected",
    [
        ("result >= 0.5", 0.7, True),
        ("result >= 0.5", 0.2, False),
        ("0.1 < result <= 1", 1, True),
        ("0.1 < result <= 1 < 0", 1, False),  # chained: every link must hold
        ('result["acc"] >= 0.5 and result["loss"] < 1', {"acc": 0.6, "loss": 0.3}, True),
        ('result["acc"] >= 0.5 or not result["ok"]', {"acc": 0.1, "ok": False}, True),
        ("result[0] * 2 + result[1] ** 2 == 10", [3, 2], True),
        ("abs(result - 1) < 1e-9", 1.0, True),
        ("max(result) - min(result) // 2 % 3", [1, 5], 5),
        ("result is not None and result > 1", None, False),  # short-circuit, no TypeError
        ('"nan" not in result', "ok", True),
        ("result.real > 0", 2, True),
        ("-result", 3, -3),
        ("result[1:]", [1, 2, 3], [2, 3]),
        ("len(result) == 2", (1, 2), True),
    ],
)
def test_allowed_expressions(text: str, result: object, expected: object) -> None:
    assert compile_expression(text).evaluate({"result": result}) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("__import__('os')", "may be called"),
        ("open('/etc/passwd')", "may be called"),
        ("result.__class__", "private names"),
        ("result._secret", "private names"),
        ("lambda: 1", "Lambda is not allowed"),
        ("[x for x in result]", "not allowed"),
        ("x > 1", "unknown name 'x'"),
        ("resul > 1", "did you mean 'result'"),
        ("max(result, key=abs)", "without keywords"),
        ("result >", "not a valid expression"),
        ("(yield)", "not allowed"),
        ("f'{result}'", "not allowed"),
    ],
)
def test_refused_expressions(text: str, message: str) -> None:
    with pytest.raises(ExpressionError, match=message.replace("(", r"\(")):
        compile_expression(text)


def test_evaluation_errors_are_expression_errors() -> None:
    expr = compile_expression('result["acc"] > 0')
    with pytest.raises(ExpressionError, match="KeyError"):
        expr.evaluate({"result": {"loss": 1}})
    with pytest.raises(ExpressionError, match="too large"):
        compile_expression("result ** 100000").evaluate({"result": 10})
