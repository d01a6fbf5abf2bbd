class RPNError(ValueError):
    """An invalid RPN expression."""


def evaluate(expression: str):
    """Evaluate a Reverse Polish Notation expression."""
    raise NotImplementedError
