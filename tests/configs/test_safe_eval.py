"""The --eval arithmetic evaluator computes numbers and refuses everything else."""

from __future__ import annotations

import pytest

from configs._safe_eval import eval_arithmetic


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2**8", 256),
        ("-3", -3),
        ("+3", 3),
        ("(1 + 2) * 3", 9),
        ("7 // 2", 3),
        ("7 % 4", 3),
        ("1 / 4", 0.25),
        ("1e-3 * 2", 0.002),
        ("2**-1", 0.5),
        ("[2**6, 2**7]", [64, 128]),
        ("(1, 2 + 3)", (1, 5)),
    ],
)
def test_arithmetic(text: str, expected: object) -> None:
    assert eval_arithmetic(text) == expected


@pytest.mark.parametrize(
    ("text", "what"),
    [
        ("__import__('os').system('true')", "Call"),
        ("open", "Name"),
        ("(1).real", "Attribute"),
        ("[1][0]", "Subscript"),
        ("'a' * 3", "Constant"),
        ("lambda: 1", "Lambda"),
        ("True + 1", "Constant"),
    ],
)
def test_anything_else_is_refused(text: str, what: str) -> None:
    with pytest.raises(ValueError, match=f"{what} is not allowed"):
        eval_arithmetic(text)


@pytest.mark.parametrize("text", ["9**9**9", "(10**1000)**1000", "1/0", "1 +"])
def test_runaway_or_broken_expressions_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        eval_arithmetic(text)
