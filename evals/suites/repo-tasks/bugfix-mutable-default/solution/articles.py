def add_tag(tag, tags=None):
    """Append tag to tags (a new list when none is given) unless present; return the list."""
    if tags is None:
        tags = []
    if tag not in tags:
        tags.append(tag)
    return tags


class Article:
    def __init__(self, title):
        self.title = title
        self.tags = []

    def tag(self, *names):
        for name in names:
            add_tag(name, self.tags)
        return self
