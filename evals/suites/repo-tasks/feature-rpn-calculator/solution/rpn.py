import operator


class RPNError(ValueError):
    """An invalid RPN expression."""


_OPS = {
    "+": operator.add,
    "-": operator.sub,
    "*": operator.mul,
    "/": operator.truediv,
    "^": operator.pow,
}


def _number(token):
    try:
        return int(token)
    except ValueError:
        pass
    try:
        return float(token)
    except ValueError:
        raise RPNError(f"unknown token {token!r}") from None


def evaluate(expression: str):
    """Evaluate a Reverse Polish Notation expression."""
    stack = []
    tokens = expression.split()
    if not tokens:
        raise RPNError("empty expression")
    for token in tokens:
        if token in _OPS:
            if len(stack) < 2:
                raise RPNError(f"too few operands for {token}")
            b, a = stack.pop(), stack.pop()
            try:
                stack.append(_OPS[token](a, b))
            except ZeroDivisionError:
                raise RPNError("division by zero") from None
        else:
            stack.append(_number(token))
    if len(stack) != 1:
        raise RPNError("leftover operands")
    result = stack[0]
    if isinstance(result, float) and result.is_integer():
        return int(result)
    return result
