class TodoList:
    def __init__(self):
        self._tasks = []

    def add(self, title):
        if not title.strip():
            raise ValueError("empty title")
        self._tasks.append({"title": title})

    def titles(self):
        return [t["title"] for t in self._tasks]
