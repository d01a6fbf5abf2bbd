def add_tag(tag, tags=[]):
    """Append tag to tags (a new list when none is given) unless present; return the list."""
    if tag not in tags:
        tags.append(tag)
    return tags


class Article:
    tags = []

    def __init__(self, title):
        self.title = title

    def tag(self, *names):
        for name in names:
            add_tag(name, self.tags)
        return self
