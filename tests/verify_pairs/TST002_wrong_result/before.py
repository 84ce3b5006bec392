import random


def setup(size, device):
    rng = random.Random(0)
    haystack = [rng.randrange(4 * size) for _ in range(size)]
    needles = [rng.randrange(4 * size) for _ in range(size)]
    return haystack, needles


def run(inputs):
    haystack, needles = inputs
    return sum(1 for needle in needles if needle in haystack)
