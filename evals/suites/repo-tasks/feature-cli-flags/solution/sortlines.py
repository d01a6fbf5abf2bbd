import argparse
import re
import sys

_NUMBER = re.compile(r"^\s*(-?\d+(?:\.\d+)?)")


def _numeric_key(indexed):
    index, line = indexed
    m = _NUMBER.match(line)
    if m:
        return (0, float(m.group(1)), index)
    return (1, 0.0, index)


def main(argv):
    parser = argparse.ArgumentParser(prog="sortlines")
    parser.add_argument("path")
    parser.add_argument("--reverse", action="store_true")
    parser.add_argument("--unique", action="store_true")
    parser.add_argument("--numeric", action="store_true")
    args = parser.parse_args(argv)
    try:
        with open(args.path, encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        print(f"sortlines: no such file: {args.path}", file=sys.stderr)
        return 2
    if args.unique:
        lines = list(dict.fromkeys(lines))
    if args.numeric:
        numbered = [(i, l) for i, l in enumerate(lines) if _NUMBER.match(l)]
        others = [l for l in lines if not _NUMBER.match(l)]
        numbered.sort(key=_numeric_key, reverse=args.reverse)
        lines = [l for _, l in numbered] + others
    else:
        lines = sorted(lines, reverse=args.reverse)
    for line in lines:
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
