def wrap_text(text, width):
    """Wrap text into lines of at most width characters."""
    lines = []
    line = ""
    for word in text.split(" "):
        line += word + " "
        if len(line) > width:
            lines.append(line)
            line = ""
    return lines
