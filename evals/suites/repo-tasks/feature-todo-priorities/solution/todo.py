PRIORITIES = {"high": 0, "normal": 1, "low": 2}


class TodoList:
    def __init__(self):
        self._tasks = []

    def add(self, title, priority="normal"):
        if not title.strip():
            raise ValueError("empty title")
        if priority not in PRIORITIES:
            raise ValueError(f"unknown priority {priority!r}")
        self._tasks.append({"title": title, "priority": priority, "done": False})

    def complete(self, title):
        for task in self._tasks:
            if task["title"] == title:
                task["done"] = True
                return
        raise KeyError(title)

    def pending(self):
        open_tasks = [t for t in self._tasks if not t["done"]]
        open_tasks.sort(key=lambda t: PRIORITIES[t["priority"]])
        return [t["title"] for t in open_tasks]

    def titles(self):
        return [t["title"] for t in self._tasks]
