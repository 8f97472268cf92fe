"""A task function that jobs import by name (the bench puts this folder on the jobs' PYTHONPATH),
as a function of an installed package would be: nothing of it is pickled by value."""


def square(x: int) -> int:
    return x * x
