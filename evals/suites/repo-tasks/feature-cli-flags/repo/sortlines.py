import sys


def main(argv):
    path = argv[0]
    with open(path, encoding="utf-8") as f:
        lines = f.read().splitlines()
    for line in sorted(lines):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
